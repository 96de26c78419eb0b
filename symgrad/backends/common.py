"""What every backend shares: the graph stage before code (`transformed_outputs`), the
record of one compiled signature (`Compiled`), names, headers and cache metadata.

A backend (`numpy/`, `c/`) is a module with `NAME`, `SPEED_RULES` (its graph rewrites for
speed) and `compile_signature(...)`, which loads the signature's entry from the cache or
generates, writes and loads it; `backends/__init__.py` looks it up by name.
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

from .._version import __version__
from ..autodiff.transforms import Transform, differentiate
from ..ir.graph import Graph, Node
from ..specs import ArgSpec, format_spec
from ..schedule.sanitise import MODULE_NAMES


@dataclass(frozen=True)
class SpeedRules:
    """A backend's graph rewrites for speed: on the traced graph before differentiation (so
    the backward pass inherits the faster form) and on the whole result after it."""

    before: tuple
    after: tuple


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


def entry_meta(fn: Callable, name: str, specs: Sequence[ArgSpec], backend: str,
               transform: Transform, parts: Any, **extra: Any) -> dict[str, Any]:
    """The metadata stored beside a cache entry (what `symgrad cache` lists and explains)."""
    return {"function": name, "function_id": function_id(fn),
            "signature": signature_text(specs), "backend": backend,
            "transform": transform.describe([s.name for s in specs]),
            "symgrad": __version__, "components": parts.components, **extra}


def transformed_outputs(graph: Graph, structure: Any, specs: Sequence[ArgSpec],
                        transform: Transform, rules: SpeedRules
                        ) -> tuple[list[Node], Any, list[str], dict[Node, str], str, list[str]]:
    """The graph stage every backend shares: calls expanded, rewritten for finite results,
    differentiated, rewritten for the backend's speed (`rules`, before and after
    differentiation) and split for sg.vjp: outputs, their structure, parameter names, name
    hints, the transform described, and the graph rewrites that fired."""
    from ..symbolic.graph_rewrites import rewrite_graph
    from ..autodiff.expand import expand_calls
    from ..autodiff.custom import strip_rules
    from .speed_rules import optimize, optimize_graph

    graph, graph_rewrites = rewrite_graph(expand_calls(graph))
    # Rewritten for speed before differentiation, so that the backward pass inherits the
    # faster form, and after it, for what the backward pass itself made.
    outputs, out_structure, params, hints = differentiate(optimize_graph(graph, rules.before),
                                                          structure, specs, transform)
    outputs, hints = optimize(*strip_rules(outputs, hints), rules.after)
    described = transform.describe(params)
    if transform.split is not None:
        from ..autodiff.residuals import split_vjp

        outputs, out_structure, params, hints = split_vjp(
            outputs, out_structure, params, hints, len(specs), transform.split)
    return outputs, out_structure, params, hints, described, graph_rewrites


def source_header(fn: Callable, name: str, specs: Sequence[ArgSpec], described: str,
                  graph_hash: str, rewrites: list[str], fast_math: bool = False
                  ) -> dict[str, Any]:
    """What the header of every generated file says (any backend; `fast_math`: whether
    the transform trades exactness for speed, `Transform.fast_math`)."""
    return {
        "title": f"{name}: {described} of {getattr(fn, '__name__', 'function')}",
        "version": __version__,
        "source": _source_location(fn),
        "signature": signature_text(specs),
        "transform": described,
        "graph_hash": graph_hash[:16],
        "rewrites": rewrites,
        "fast_math": fast_math,
    }


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


def returned_code(structure: Any, leaf: Callable[[int], str]) -> str:
    """The expression a generated function returns: its output structure of tuples, lists
    and output indices, each index printed by `leaf` (`value, (w_bar, b_bar)`)."""
    def walk(item: Any, top: bool = False) -> str:
        if isinstance(item, int):
            return leaf(item)
        inner = ", ".join(walk(i) for i in item)
        if isinstance(item, list):
            return f"[{inner}]"
        inner += "," if len(item) == 1 else ""
        return inner if top and item else f"({inner})"

    return walk(structure, top=True)
