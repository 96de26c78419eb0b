"""The pipeline's driver: trace -> check -> key -> the backend, which loads the entry from
the disk cache or (on a miss) differentiates, generates, writes and loads it.

The one seam where backends plug in is `backends.backend_module(name).compile_signature`;
what they share is in `backends/common.py`. SymPy and jinja2 are imported only on a miss.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .autodiff.transforms import Transform, _leaves, extra_parameters, primary_outputs
from .backends import backend_module, choose_backend
from .backends.common import Compiled, generated_name, signature_text
from .cache.key import key_parts
from .cache.store import DiskCache
from .errors import NonScalarOutputError, NotDifferentiableError
from .ir.graph import Graph
from .specs import ArgSpec
from .tools.progress import Progress
from .trace.arguments import at_user_line, check_extras
from .trace.tracer import trace_function


def compile_function(fn: Callable, specs: Sequence[ArgSpec], transform: Transform,
                     cache: DiskCache, backend: str = "numpy", *,
                     trace: Callable[[], tuple[Graph, Any, Transform]] | None = None,
                     extra_specs: Sequence[ArgSpec] | None = None) -> Compiled:
    """Trace, then let the backend load from the disk cache or generate; one `Compiled` per
    signature.

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
        check_transform(graph, structure, specs, transform)
        if extra_specs is not None:
            check_extras(_Named(name, transform.kind),
                         extra_parameters(graph, structure, specs, transform), extra_specs)
        backend = choose_backend(backend, graph)
        parts = key_parts(graph, f"{name}:{transform!r}", backend)
        return backend_module(backend).compile_signature(fn, graph, structure, specs,
                                                         transform, name, cache, parts,
                                                         progress)
    finally:
        progress.done()


@dataclass(frozen=True)
class _Named:
    """A name and transform kind, for messages about a compiled function's extra arguments."""

    name: str
    kind: str

    def __repr__(self) -> str:
        return self.name


def check_transform(graph: Graph, structure: Any, specs: Sequence[ArgSpec],
                    transform: Transform) -> None:
    """The transform makes sense for this function: float arguments in wrt, a scalar result
    for grad and its kin (else one clear error naming the user's line)."""
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
