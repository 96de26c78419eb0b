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

from ._version import __version__
from .trace.arguments import at_user_line, check_extras
from .backends import backend_module, choose_backend
from .cache.store import DiskCache, import_source
from .errors import GeneratedCodeError, NonScalarOutputError, NotDifferentiableError
from .ir.graph import Graph, Node
from .cache.key import key_parts
from .tools.progress import Progress
from .backends.sanitise import MODULE_NAMES, is_safe_identifier
from .specs import format_spec
from .trace.tracer import ArgSpec, trace_function
from .autodiff.transforms import (KINDS, Transform, _leaves, differentiate, extra_parameters,
                                  output_avals, output_layout, primary_outputs, tangent_names)


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
                f"of wrt){at_user_line()}")
    primary = primary_outputs(transform, structure)
    if transform.kind in ("grad", "value_and_grad", "hvp"):
        if not isinstance(primary, int) or graph.outputs[primary].shape != ():
            shapes = [list(graph.outputs[i].shape) for i in _leaves(primary)]
            kind = "hessian" if transform.kind == "hvp" else transform.kind
            raise NonScalarOutputError(
                f"{kind} needs a function that returns one scalar; this one returns "
                f"shape{'s' if len(shapes) != 1 else ''} {', '.join(map(str, shapes))}. "
                "Reduce it (e.g. np.sum or np.mean), or use symgrad.vjp / symgrad.jacobian"
                f"{at_user_line()}.")


def transformed_outputs(graph: Graph, structure: Any, specs: Sequence[ArgSpec],
                        transform: Transform) -> tuple[list[Node], Any, list[str],
                                                       dict[Node, str], str, list[str]]:
    """The graph stage every backend shares: calls expanded, rewritten, differentiated,
    optimised (and split for sg.vjp): outputs, their structure, parameter names, name hints,
    the transform described, and the graph rewrites that fired."""
    from .symbolic.graph_rewrites import rewrite_graph
    from .ir.calls import expand_calls
    from .autodiff.custom import strip_rules
    from .backends.numpy.optimize import optimize, optimize_graph

    graph, graph_rewrites = rewrite_graph(expand_calls(graph))
    # Rewritten for speed before differentiation, so that the backward pass inherits the
    # faster form, and after it, for what the backward pass itself made.
    outputs, out_structure, params, hints = differentiate(optimize_graph(graph), structure,
                                                          specs, transform)
    outputs, hints = optimize(*strip_rules(outputs, hints))
    described = transform.describe(params)
    if transform.split is not None:
        from .autodiff.residuals import split_vjp

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
    from .backends.numpy.lower import lower
    from .backends.numpy.render import render_numpy

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
