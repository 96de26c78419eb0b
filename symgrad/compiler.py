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
from .cache import DiskCache, import_source
from .errors import (ArgumentError, GeneratedCodeError, NonScalarOutputError,
                     NotDifferentiableError)
from .graph import Builder, Graph, Node
from .key import key_parts
from .progress import Progress
from .sanitise import MODULE_NAMES, is_safe_identifier
from .specs import format_spec
from .trace import ArgSpec, trace_function


@dataclass(frozen=True)
class Transform:
    """What to compute: 'jit', 'grad', 'value_and_grad' or 'vjp', with respect to `wrt`."""

    kind: str
    wrt: tuple[int, ...] = ()
    single: bool = True  # wrt was one name/position: one gradient, not a tuple
    order: int = 1  # 2: the vjp of the gradient (hessian-vector products)

    def describe(self, params: Sequence[str]) -> str:
        if self.kind == "jit":
            return "jit (value only)"
        names = ", ".join(params[i] for i in self.wrt)
        return f"{self.kind}{'' if self.order == 1 else ' of the gradient'}, wrt=({names})"


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
    suffix = {"jit": "", "grad": "_grad", "value_and_grad": "_value_and_grad", "vjp": "_vjp"}
    name = base + suffix[transform.kind] + ("" if transform.order == 1 else "_hvp")
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
                     cache: DiskCache, backend: str = "numpy") -> Compiled:
    """Trace, then load from the disk cache or generate; one `Compiled` per signature."""
    name = generated_name(fn, transform)
    progress = Progress(f"{name}({signature_text(specs)})")
    try:
        progress.stage("trace")
        graph, structure = trace_function(fn, specs)
        _check_transform(graph, structure, specs, transform)
        parts = key_parts(graph, f"{name}:{transform!r}", backend)
        key = parts.key
        progress.stage("load")
        loaded = _load_cached(cache, key)
        if loaded is not None:
            module, source, meta = loaded
            return Compiled(getattr(module, meta["function"]), source, cache.source_path(key),
                            key, graph, module, from_cache=True)
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
                        from_cache=False, details=details)
    finally:
        progress.done()


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
                "of wrt)")
    if transform.kind in ("grad", "value_and_grad"):
        if not isinstance(structure, int) or graph.outputs[structure].shape != ():
            shapes = [list(o.shape) for o in graph.outputs]
            raise NonScalarOutputError(
                f"{transform.kind} needs a function that returns one scalar; this one returns "
                f"shape{'s' if len(shapes) != 1 else ''} {', '.join(map(str, shapes))}. "
                "Reduce it (e.g. np.sum or np.mean), or use symgrad.vjp / symgrad.jacobian.")
    elif transform.kind == "vjp" and not isinstance(structure, int):
        raise ArgumentError("vjp supports functions that return one array")


def differentiate(graph: Graph, structure: Any, specs: Sequence[ArgSpec],
                  transform: Transform) -> tuple[list[Node], Any, list[str], dict[Node, str]]:
    """The output nodes of the transform, their structure, the parameter names, and names."""
    from .autodiff import backward

    params = [s.name for s in specs]
    hints = dict(graph.name_hints)
    for out in graph.outputs:
        hints.setdefault(out, "value" if len(graph.outputs) == 1 else "out")
    if transform.kind == "jit":
        return list(graph.outputs), structure, params, hints
    builder = Builder()
    inputs = {n.param("position"): n for n in graph.inputs}
    wrt_nodes = [inputs[p] for p in transform.wrt]
    out = graph.outputs[structure]
    if transform.kind == "vjp":
        params = params + ["cotangent"]
        seed = prim.input_node(builder, "cotangent", len(specs), out.shape, out.dtype)
    else:
        seed = prim.constant(builder, 1, out.dtype)
    adjoints = backward(builder, [out], [seed], wrt_nodes)
    grads = _gradients(builder, adjoints.of, wrt_nodes)
    _name_adjoints(adjoints.of, hints, params)
    if transform.order == 2:
        names = tangent_names([s.name for s in specs], transform)
        tangents = [prim.input_node(builder, name, len(params) + i, g.shape, g.dtype)
                    for i, (name, g) in enumerate(zip(names, grads))]
        params = params + names
        second = backward(builder, grads, tangents, wrt_nodes)
        grads = _gradients(builder, second.of, wrt_nodes)
    if transform.kind in ("value_and_grad", "vjp"):
        outputs = [out] + grads
        shape = (0, 1 if transform.single else tuple(range(1, 1 + len(grads))))
    else:
        outputs = grads
        shape = 0 if transform.single else tuple(range(len(grads)))
    return outputs, shape, params, hints


def tangent_names(params: Sequence[str], transform: Transform) -> list[str]:
    """The extra parameters of a Hessian-vector product: one tangent per wrt argument."""
    if transform.single:
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
    """`z` gets `z_bar`; named intermediates win over inputs for a shared adjoint."""
    for prefer_inputs in (False, True):
        for node, g in adjoint.items():
            if g in hints or (node.op == "input") != prefer_inputs:
                continue
            name = params[node.param("position")] if node.op == "input" else hints.get(node)
            if name:
                hints[g] = f"{name}_bar"


def generate_source(fn: Callable, graph: Graph, structure: Any, specs: Sequence[ArgSpec],
                    transform: Transform, name: str, key: str, progress: Progress | None = None,
                    graph_digest: str | None = None) -> tuple[str, dict[str, Any]]:
    progress = progress or Progress(name, active=False)
    progress.stage("differentiate")
    from .graph_rewrites import rewrite_graph
    from .lower import lower
    from .optimize import optimize, optimize_graph
    from .render import render_numpy

    with _without_cyclic_gc():
        graph, graph_rewrites = rewrite_graph(graph)
        # Rewritten for speed before differentiation, so that the backward pass inherits the
        # faster form, and after it, for what the backward pass itself made.
        outputs, out_structure, params, hints = differentiate(optimize_graph(graph), structure,
                                                              specs, transform)
        outputs, hints = optimize(outputs, hints)
        progress.stage("simplify")
        program = lower(outputs, out_structure, params, hints, name)
    program.rewrites = sorted(set(program.rewrites) | set(graph_rewrites))
    progress.stage("render")
    header = {
        "title": f"{name}: {transform.describe(params)} of {getattr(fn, '__name__', 'function')}",
        "version": __version__,
        "source": _source_location(fn),
        "signature": signature_text(specs),
        "transform": transform.describe(params),
        "graph_hash": (graph_digest or key)[:16],
        "rewrites": program.rewrites,
    }
    source = render_numpy(program, header)
    return source, {"program": program, "outputs": outputs}


@contextlib.contextmanager
def _without_cyclic_gc() -> Iterator[None]:
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
