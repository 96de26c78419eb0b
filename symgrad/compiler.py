"""The pipeline, stage by stage: trace -> key -> (cache hit) load, or (miss) differentiate ->
lower -> render -> write -> load. SymPy and jinja2 are imported only on a miss.
"""
from __future__ import annotations

import builtins
import contextlib
import gc
import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator, Sequence

from . import __version__
from . import primitives as prim
from .backends import backend_module, choose_backend
from .cache import DiskCache, import_source
from .errors import (ArgumentError, GeneratedCodeError, NonScalarOutputError,
                     NotDifferentiableError)
from .graph import Builder, Graph, Node
from .key import key_parts
from .progress import Progress
from .sanitise import MODULE_NAMES, is_safe_identifier
from .specs import format_spec
from .trace import ArgSpec, trace_function, user_site


KINDS = ("jit", "grad", "value_and_grad", "vjp", "jvp", "hvp")


@dataclass(frozen=True)
class Transform:
    """What to compute from the traced function, with respect to the inputs at `wrt`.

    kind: 'jit' (the value), 'grad', 'value_and_grad', 'vjp' (value and cotangent @ Jacobian,
    the cotangents are extra parameters), 'jvp' (value and Jacobian @ tangent, the tangents
    are extra parameters) or 'hvp' (Hessian @ tangent of a scalar function).
    `wrt` lists input positions (leaves). `groups` says how the leaves form the differentiated
    arguments (None: each is a bare array; else per argument None or its number of leaves);
    `single`: one argument, so one result rather than a tuple. `out` and `aux` are the
    traced outputs' layout (nested tuples of output indices) when the function returned a
    pytree or, with `has_aux`, an auxiliary value; None: the traced structure, no aux.
    """

    kind: str
    wrt: tuple[int, ...] = ()
    single: bool = True
    groups: tuple[int | None, ...] | None = None
    out: Any = None
    aux: Any = None
    split: str | None = None  # vjp only: 'forward' or 'backward' part (residuals.py)

    @property
    def order(self) -> int:
        return 2 if self.kind == "hvp" else 1

    def __repr__(self) -> str:
        # Part of the cache key: the form of the first release while nothing new is set.
        kind = "grad" if self.kind == "hvp" else self.kind
        text = (f"Transform(kind={kind!r}, wrt={self.wrt!r}, single={self.single!r}, "
                f"order={self.order!r}")
        for name in ("groups", "out", "aux", "split"):
            if getattr(self, name) is not None:
                text += f", {name}={getattr(self, name)!r}"
        return text + ")"

    def describe(self, params: Sequence[str]) -> str:
        if self.kind == "jit":
            return "jit (value only)"
        names = ", ".join(params[i] for i in self.wrt)
        kind = "grad of the gradient" if self.kind == "hvp" else self.kind
        return f"{kind}, wrt=({names})"


@dataclass
class Compiled:
    """One compiled signature: the generated function and where it came from."""

    function: Callable
    source: str
    path: Path | None
    key: str
    graph: Graph
    module: ModuleType
    from_cache: bool
    details: dict[str, Any] = field(default_factory=dict)
    transform: Transform | None = None


def signature_text(specs: Sequence[ArgSpec]) -> str:
    """`x=f64[5], w=f64[5,3], n=3`: the compact form used by the CLI and `sg.spec`."""
    parts = []
    for spec in specs:
        if spec.shape is None:
            parts.append(f"{spec.name}={spec.static_value!r}")
        else:
            parts.append(f"{spec.name}={format_spec(spec.shape, spec.dtype)}")
    return ", ".join(parts)


def generated_name(fn: Callable, transform: Transform) -> str:
    """A valid identifier after the user's function: `loss_value_and_grad`, `f_3d_grad`."""
    base = re.sub(r"\W", "_", getattr(fn, "__name__", "function"), flags=re.ASCII).strip("_")
    base = (base or "function")[:60]
    if base[0].isdigit():
        base = "f_" + base
    suffix = {"jit": "", "grad": "_grad", "value_and_grad": "_value_and_grad", "vjp": "_vjp",
              "jvp": "_jvp", "hvp": "_hvp"}
    name = base + suffix[transform.kind] + {None: "", "forward": "_forward",
                                            "backward": "_pullback"}[transform.split]
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) or hasattr(builtins, name) \
            or name in MODULE_NAMES:
        name += "_fn"  # `lambda`, `sum`, `np` would not parse or would shadow what code uses
    return name


def function_id(fn: Callable) -> str:
    """Which user function an entry belongs to (file and qualified name), for `cache why`."""
    code = getattr(fn, "__code__", None)
    filename = code.co_filename if code is not None else getattr(fn, "__module__", "?")
    return f"{filename}:{getattr(fn, '__qualname__', getattr(fn, '__name__', '?'))}"


def compile_function(fn: Callable, specs: Sequence[ArgSpec], transform: Transform,
                     cache: DiskCache, backend: str = "numpy", *,
                     trace: Callable[[], tuple[Graph, Any, Transform]] | None = None,
                     extra_specs: Sequence[ArgSpec] | None = None) -> Compiled:
    """Trace, then load from the disk cache or generate; one `Compiled` per signature.

    `trace` (default: `fn` on `specs`) gives the graph, its output structure and the
    transform of this signature; `extra_specs`, the cotangents or tangents the caller passes,
    are checked against what the transform expects."""
    name = generated_name(fn, transform)
    progress = Progress(f"{name}({signature_text(specs)})")
    try:
        progress.stage("trace")
        if trace is None:
            graph, structure = trace_function(fn, specs)
        else:
            graph, structure, transform = trace()
        _check_transform(graph, structure, specs, transform)
        if extra_specs is not None:
            from .arguments import check_extras

            check_extras(_Named(name, transform.kind),
                         extra_parameters(graph, structure, specs, transform), extra_specs)
        backend = choose_backend(backend, graph)
        parts = key_parts(graph, f"{name}:{transform!r}", backend)
        other = backend_module(backend)
        if other is not None:  # a backend of backends/ (the numpy pipeline is this module)
            return other.compile_signature(fn, graph, structure, specs, transform, name,
                                           cache, parts, progress)
        key = parts.key
        progress.stage("load")
        loaded = _load_cached(cache, key)
        if loaded is not None:
            module, source, meta = loaded
            return Compiled(getattr(module, meta["function"]), source, cache.source_path(key),
                            key, graph, module, from_cache=True, transform=transform)
        source, details = generate_source(fn, graph, structure, specs, transform, name, key,
                                          progress, parts.graph_digest)
        progress.stage("write")
        meta = {"function": name, "function_id": function_id(fn),
                "signature": signature_text(specs), "backend": backend,
                "transform": transform.describe([s.name for s in specs]),
                "symgrad": __version__, "components": parts.components}
        path = cache.store(key, source, meta)
        module = import_source(source, path, f"symgrad_generated_{key[:20]}")
        return Compiled(getattr(module, name), source, path, key, graph, module,
                        from_cache=False, details=details, transform=transform)
    finally:
        progress.done()


@dataclass(frozen=True)
class _Named:
    """A name and transform kind, for messages about a compiled function's extra arguments."""

    name: str
    kind: str

    def __repr__(self) -> str:
        return self.name


def _load_cached(cache: DiskCache, key: str) -> tuple[ModuleType, str, dict] | None:
    """The cached module, checked before it runs; None on a miss or a refused entry."""
    entry = cache.load(key)
    if entry is None:
        return None
    source, meta = entry
    try:
        module = import_source(source, cache.source_path(key), f"symgrad_generated_{key[:20]}")
        name = str(meta.get("function"))
        function = getattr(module, name, None) if is_safe_identifier(name) else None
    except GeneratedCodeError as error:
        cache.warn_damaged(key, f"it failed the safety check ({error})")
        return None
    except Exception as error:  # noqa: BLE001 -- anything while loading an entry is damage
        cache.warn_damaged(key, f"loading it failed ({type(error).__name__}: {error})")
        return None
    if not callable(function):
        cache.warn_damaged(key, "its metadata names no function of its source")
        return None
    return module, source, meta


def _check_transform(graph: Graph, structure: Any, specs: Sequence[ArgSpec],
                     transform: Transform) -> None:
    if transform.kind == "jit":
        return
    for position in transform.wrt:
        spec = specs[position]
        if spec.shape is None or not spec.dtype.startswith("float"):
            kind = "a static Python value" if spec.shape is None else f"a {spec.dtype} array"
            raise NotDifferentiableError(
                f"cannot differentiate with respect to {spec.name!r}: it is {kind}; gradients "
                "are defined for float arrays only (pass it as a float array, or leave it out "
                f"of wrt){_at_user()}")
    primary = primary_outputs(transform, structure)
    if transform.kind in ("grad", "value_and_grad", "hvp"):
        if not isinstance(primary, int) or graph.outputs[primary].shape != ():
            shapes = [list(graph.outputs[i].shape) for i in _leaves(primary)]
            kind = "hessian" if transform.kind == "hvp" else transform.kind
            raise NonScalarOutputError(
                f"{kind} needs a function that returns one scalar; this one returns "
                f"shape{'s' if len(shapes) != 1 else ''} {', '.join(map(str, shapes))}. "
                "Reduce it (e.g. np.sum or np.mean), or use symgrad.vjp / symgrad.jacobian"
                f"{_at_user()}.")


def _at_user() -> str:
    site = user_site()
    return f" (at {site})" if site else ""


def primary_outputs(transform: Transform, structure: Any) -> Any:
    """The differentiated output's layout (nested tuples of output indices)."""
    return structure if transform.out is None else transform.out


def _leaves(nested: Any) -> list[int]:
    if isinstance(nested, int):
        return [nested]
    return [i for item in nested for i in _leaves(item)]


def _regroup(nested: Any, slot: Callable[[int], int]) -> Any:
    """`nested` (tuples and lists of output indices) with each index replaced by `slot(i)`."""
    if isinstance(nested, int):
        return slot(nested)
    return type(nested)(_regroup(item, slot) for item in nested)


def output_layout(transform: Transform, structure: Any) -> tuple[list[tuple[str, int]], Any]:
    """What the transformed function returns: a flat list of (role, index) -- role 'value',
    'aux' (output index), 'grad', 'hv' (wrt index) or 'tangent' (output index) -- and the
    nesting of that list as generated code returns it."""
    slots: list[tuple[str, int]] = []

    def slot(role: str) -> Callable[[int], int]:
        def add(index: int) -> int:
            slots.append((role, index))
            return len(slots) - 1
        return add

    def per_argument(role: str) -> Any:
        add, items, j = slot(role), [], 0
        for group in transform.groups or (None,) * len(transform.wrt):
            if group is None:
                items.append(add(j))
                j += 1
            else:
                items.append(tuple(add(j + t) for t in range(group)))
                j += group
        return items[0] if transform.single else tuple(items)

    primary = primary_outputs(transform, structure)
    kind, aux = transform.kind, transform.aux
    if kind == "jit":
        return slots, _regroup(primary, slot("value"))
    if kind == "grad":
        grads = per_argument("grad")
        return slots, grads if aux is None else (grads, _regroup(aux, slot("aux")))
    if kind == "hvp":
        return slots, per_argument("hv")
    value = _regroup(primary, slot("value"))
    if kind == "value_and_grad":
        if aux is not None:
            value = (value, _regroup(aux, slot("aux")))
        return slots, (value, per_argument("grad"))
    second = per_argument("grad") if kind == "vjp" else _regroup(primary, slot("tangent"))
    if aux is None:
        return slots, (value, second)
    return slots, (value, second, _regroup(aux, slot("aux")))


def output_avals(graph: Graph, structure: Any, specs: Sequence[ArgSpec],
                 transform: Transform) -> list[tuple[tuple[int, ...], str]]:
    """Shape and dtype of each flat result of `output_layout`, known before differentiating."""
    avals = []
    for role, index in output_layout(transform, structure)[0]:
        if role in ("grad", "hv"):
            spec = specs[transform.wrt[index]]
            avals.append((tuple(spec.shape), spec.dtype))
        else:
            node = graph.outputs[index]
            avals.append((node.shape, node.dtype))
    return avals


def extra_parameters(graph: Graph, structure: Any, specs: Sequence[ArgSpec],
                     transform: Transform) -> list[ArgSpec]:
    """The parameters a transform adds after the function's own: a vjp's cotangents (one per
    output), a jvp's or hvp's tangents (one per differentiated input)."""
    names = [s.name for s in specs]
    if transform.kind == "vjp":
        outputs = _leaves(primary_outputs(transform, structure))
        cotangents = cotangent_names(len(outputs))
        return [ArgSpec(name, graph.outputs[i].shape, graph.outputs[i].dtype)
                for name, i in zip(cotangents, outputs)]
    if transform.kind in ("jvp", "hvp"):
        return [ArgSpec(name, specs[p].shape, specs[p].dtype)
                for name, p in zip(tangent_names(names, transform), transform.wrt)]
    return []


def cotangent_names(count: int) -> list[str]:
    return ["cotangent"] if count == 1 else [f"cotangent_{i}" for i in range(count)]


def differentiate(graph: Graph, structure: Any, specs: Sequence[ArgSpec],
                  transform: Transform) -> tuple[list[Node], Any, list[str], dict[Node, str]]:
    """The output nodes of the transform, their structure, the parameter names, and names."""
    from .autodiff import backward

    params = [s.name for s in specs]
    hints = dict(graph.name_hints)
    for out in graph.outputs:
        hints.setdefault(out, "value" if len(graph.outputs) == 1 else "out")
    slots, nested = output_layout(transform, structure)
    if transform.kind == "jit":
        return [graph.outputs[i] for _, i in slots], nested, params, hints
    builder = Builder()
    inputs = {n.param("position"): n for n in graph.inputs}
    wrt_nodes = [inputs[p] for p in transform.wrt]
    primary = [graph.outputs[i] for i in _leaves(primary_outputs(transform, structure))]
    extras = [prim.input_node(builder, spec.name, len(params) + i, spec.shape, spec.dtype)
              for i, spec in enumerate(extra_parameters(graph, structure, specs, transform))]
    params = params + [e.param("name") for e in extras]
    results: dict[str, list[Node]] = {}
    if transform.kind == "jvp":
        results["tangent"] = _forward_mode(builder, primary, wrt_nodes, extras)
    else:
        seeds = extras if transform.kind == "vjp" else [prim.constant(builder, 1, primary[0].dtype)]
        adjoints = backward(builder, primary, seeds, wrt_nodes)
        results["grad"] = _gradients(builder, adjoints.of, wrt_nodes)
        _name_adjoints(adjoints.of, hints, params)
        if transform.kind == "hvp":
            second = backward(builder, results["grad"], extras, wrt_nodes)
            results["hv"] = _gradients(builder, second.of, wrt_nodes)
    if "tangent" in results:
        tangents = dict(zip(_leaves(primary_outputs(transform, structure)), results["tangent"]))
    outputs = []
    for role, index in slots:
        if role in ("value", "aux"):
            outputs.append(graph.outputs[index])
        elif role == "tangent":
            outputs.append(tangents[index])
        else:
            outputs.append(results[role][index])
    return outputs, nested, params, hints


def _forward_mode(builder: Builder, outputs: list[Node], wrt: list[Node],
                  tangents: list[Node]) -> list[Node]:
    """Jacobian @ tangent by transposing the reverse pass: the VJP is linear in its cotangent
    u, so the VJP of `u -> vjp(u)` with cotangent t is J t, exactly, with every structural
    op's forward rule obtained from its one reverse rule (no second rule to disagree)."""
    from .autodiff import backward
    from .calls import substitute

    us = [prim.input_node(builder, f"_u{i}", -1 - i, o.shape, o.dtype) if o.is_float else None
          for i, o in enumerate(outputs)]
    floats = [(o, u) for o, u in zip(outputs, us) if u is not None]
    adjoints = backward(builder, [o for o, _ in floats], [u for _, u in floats], wrt)
    grads = _gradients(builder, adjoints.of, wrt)
    second = backward(builder, grads, tangents, [u for _, u in floats])
    results = []
    for out, u in zip(outputs, us):
        t = second.of.get(u) if u is not None else None
        if t is None:
            t = prim.broadcast_to(builder, prim.constant(builder, 0, out.dtype), out.shape)
        results.append(t)
    # A linear function of u does not read u; where a form still names it, u = 0 is exact.
    zeros = {u: prim.broadcast_to(builder, prim.constant(builder, 0, u.dtype), u.shape)
             for u in us if u is not None}
    return substitute(builder, results, zeros)


def tangent_names(params: Sequence[str], transform: Transform) -> list[str]:
    """The extra parameters of a Hessian-vector product or JVP: one per wrt input."""
    if len(transform.wrt) == 1:
        return ["tangent"]
    return [f"tangent_{params[p]}" for p in transform.wrt]


def _gradients(builder: Builder, adjoint: dict[Node, Node], wrt: list[Node]) -> list[Node]:
    """Each wrt input's adjoint; a disconnected input gets explicit zeros."""
    grads = []
    for node in wrt:
        g = adjoint.get(node)
        if g is None:
            g = prim.broadcast_to(builder, prim.constant(builder, 0, node.dtype), node.shape)
        grads.append(g)
    return grads


def _name_adjoints(adjoint: dict[Node, Node], hints: dict[Node, str], params: list[str]) -> None:
    """`z` gets `z_bar`; a gradient shared with an intermediate is named after its parameter
    (`b_bar`, not `z_bar`, in `z = x @ w + b`): the parameter is what the reader asked for."""
    for prefer_inputs in (True, False):
        for node, g in adjoint.items():
            if g in hints or (node.op == "input") != prefer_inputs:
                continue
            name = params[node.param("position")] if node.op == "input" else hints.get(node)
            if name:
                hints[g] = f"{name}_bar"


def transformed_outputs(graph: Graph, structure: Any, specs: Sequence[ArgSpec],
                        transform: Transform) -> tuple[list[Node], Any, list[str],
                                                       dict[Node, str], str, list[str]]:
    """The graph stage every backend shares: calls expanded, rewritten, differentiated,
    optimised (and split for sg.vjp): outputs, their structure, parameter names, name hints,
    the transform described, and the graph rewrites that fired."""
    from .graph_rewrites import rewrite_graph
    from .calls import expand_calls
    from .custom import strip_rules
    from .optimize import optimize, optimize_graph

    graph, graph_rewrites = rewrite_graph(expand_calls(graph))
    # Rewritten for speed before differentiation, so that the backward pass inherits the
    # faster form, and after it, for what the backward pass itself made.
    outputs, out_structure, params, hints = differentiate(optimize_graph(graph), structure,
                                                          specs, transform)
    outputs, hints = optimize(*strip_rules(outputs, hints))
    described = transform.describe(params)
    if transform.split is not None:
        from .residuals import split_vjp

        outputs, out_structure, params, hints = split_vjp(
            outputs, out_structure, params, hints, len(specs), transform.split)
    return outputs, out_structure, params, hints, described, graph_rewrites


def source_header(fn: Callable, name: str, specs: Sequence[ArgSpec], described: str,
                  graph_hash: str, rewrites: list[str]) -> dict[str, Any]:
    """What the header of every generated file says (any backend)."""
    return {
        "title": f"{name}: {described} of {getattr(fn, '__name__', 'function')}",
        "version": __version__,
        "source": _source_location(fn),
        "signature": signature_text(specs),
        "transform": described,
        "graph_hash": graph_hash[:16],
        "rewrites": rewrites,
    }


def generate_source(fn: Callable, graph: Graph, structure: Any, specs: Sequence[ArgSpec],
                    transform: Transform, name: str, key: str, progress: Progress | None = None,
                    graph_digest: str | None = None) -> tuple[str, dict[str, Any]]:
    progress = progress or Progress(name, active=False)
    progress.stage("differentiate")
    from .lower import lower
    from .render import render_numpy

    with without_cyclic_gc():
        outputs, out_structure, params, hints, described, graph_rewrites = \
            transformed_outputs(graph, structure, specs, transform)
        progress.stage("simplify")
        program = lower(outputs, out_structure, params, hints, name)
    program.rewrites = sorted(set(program.rewrites) | set(graph_rewrites))
    progress.stage("render")
    header = source_header(fn, name, specs, described, graph_digest or key, program.rewrites)
    source = render_numpy(program, header)
    return source, {"program": program, "outputs": outputs}


@contextlib.contextmanager
def without_cyclic_gc() -> Iterator[None]:
    """A compilation builds millions of small SymPy objects, all alive until it ends; the
    cyclic collector would scan them again and again (a third of the time at 20,000 ops)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _source_location(fn: Callable) -> str:
    code = getattr(fn, "__code__", None)
    if code is None:
        return getattr(fn, "__name__", "a function")
    filename = Path(code.co_filename).name
    return f"{filename}:{code.co_firstlineno} {getattr(fn, '__qualname__', fn.__name__)}"
