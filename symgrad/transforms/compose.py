"""The two ways a transform runs besides a plain call: on traced values (it records a call in
the graph being traced, `calls.py`), and as `sg.vjp`'s forward part and pullback
(`residuals.py`).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..trace.arguments import Prepared, _is_spec, check_extras
from ..cache.store import DiskCache
from ..autodiff.transforms import extra_parameters, output_layout
from ..compiler import compile_function
from ..pytree import tree_flatten
from ..trace.tracer import Tracer, user_site


def split_call(transformed: Any, args: tuple, kwargs: dict) -> tuple[Any, Any, Callable]:
    """Run the forward part once: (value, aux or None, pullback). The pullback runs only
    the backward part on the saved residuals (a vjp CompiledFunction only)."""
    import dataclasses

    prepared = transformed._prepare(tuple(args) + (None,), dict(kwargs))
    parts = transformed._split_parts.get(prepared.key)
    if parts is None:
        with transformed._lock:
            graph, structure, transform = transformed._trace(prepared)
            expected = extra_parameters(graph, structure, prepared.specs, transform)
            compiled = [compile_function(
                transformed.fn, prepared.specs, dataclasses.replace(transform, split=part),
                DiskCache.shared(), transformed.backend,
                trace=lambda part=part: (graph, structure,
                                         dataclasses.replace(transform, split=part)))
                for part in ("forward", "backward")]
            parts = (compiled[0], compiled[1], expected,
                     transformed._finisher(prepared, transform), transform.aux is not None)
            transformed._split_parts[prepared.key] = parts
    forward, backward, expected, finish, has_aux = parts
    result = forward.function(*prepared.leaves)
    value, residuals = result[0], result[1]
    aux = result[2] if has_aux else None
    done = finish((value, None, aux) if has_aux else (value, None)) if finish else None
    shown_value = done[0] if done else value
    shown_aux = done[2] if done and has_aux else aux

    def pullback(cotangent: Any) -> Any:
        leaves, specs = [], []
        values, _ = tree_flatten(cotangent, _is_spec)
        for k, leaf in enumerate(values):
            leaf, spec = transformed._leaf(leaf, f"cotangent_{k}", "cotangent", True, False)
            leaves.append(leaf)
            specs.append(spec)
        check_extras(transformed, expected, specs)
        grads = backward.function(*residuals, *leaves)
        if finish is None:
            return grads
        return finish((value, grads, aux) if has_aux else (value, grads))[1]

    pullback.lower = lambda: (forward, backward)
    return shown_value, shown_aux, pullback


def call_traced(transformed: Any, prepared: Prepared) -> Any:
    """Record this transform as a call in the graph being traced (see calls.py)."""
    from ..ir import primitives as prim
    from ..ir.calls import CALL, CallBody, close_over, next_serial
    from ..autodiff.transforms import output_avals
    from ..compiler import check_transform
    from ..ir.graph import Builder

    outer = next(x.builder for x in prepared.leaves + prepared.extra_leaves
                 if isinstance(x, Tracer))
    site = outer.site or user_site()
    inner = Builder()
    first = next_serial()
    graph, structure, transform = transformed._trace(prepared, inner)
    graph, specs, foreign = close_over(inner, graph, prepared.specs, first)
    check_transform(graph, structure, specs, transform)
    expected = extra_parameters(graph, structure, specs, transform)
    check_extras(transformed, expected, prepared.extra_specs)
    positions, inputs = [], []
    for position, (leaf, spec) in enumerate(zip(prepared.leaves, prepared.specs)):
        if spec.shape is None:
            continue
        positions.append(position)
        inputs.append(leaf.node if isinstance(leaf, Tracer)
                      else prim.constant(outer, np.asarray(leaf)))
    positions += range(len(prepared.specs), len(specs))
    inputs += foreign
    for k, leaf in enumerate(prepared.extra_leaves):
        positions.append(len(specs) + k)
        inputs.append(leaf.node if isinstance(leaf, Tracer)
                      else prim.constant(outer, np.asarray(leaf)))
    body = CallBody.make(graph, structure, specs, transform, positions)
    avals = output_avals(graph, structure, specs, transform)
    results = [Tracer(outer.node(CALL, inputs, {"body": body, "index": i}, shape, dtype,
                                 site), outer)
               for i, (shape, dtype) in enumerate(avals)]
    _, nested = output_layout(transform, structure)
    result = _fill(nested, results)
    finish = transformed._finisher(prepared, transform)
    return result if finish is None else finish(result)


def _fill(nested: Any, values: list) -> Any:
    if isinstance(nested, int):
        return values[nested]
    return type(nested)(_fill(item, values) for item in nested)
