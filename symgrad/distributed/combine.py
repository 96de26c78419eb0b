"""The combine step of a loss split over chunks of rows (`distributed.py`), as generated code.

Its inputs are the parameters (the arguments that are not chunked) and the partials' totals:
the summed value and the summed gradients. It applies, once, what the partials leave out: the
constant factors (a mean's division by the total row count) and the row-independent terms,
whose value and gradient come from a `call` of value_and_grad on them (`calls.py`), expanded
and differentiated when the combine is generated. Called on the client with small arrays.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..ir import primitives as prim
from ..ir.calls import CALL, CallBody
from ..autodiff.transforms import Transform, output_avals
from ..compiler import compile_function
from ..ir.graph import Builder, Graph, Node
from ..specs import ArgSpec


def compile_combine(function: Any, specs: Sequence[ArgSpec], theta: Sequence[int],
                    reduced: Sequence[int], value_dtype: str, factors: list,
                    rest: Graph | None, cache: Any) -> Any:
    """Compile `value = factors(partial_value) + rest`, `g = factors(partial_g) + rest_g`
    for each gradient in `reduced` (input positions); the parameters come first."""
    from .dask import _Renamed

    builder = Builder()
    combine_specs: list[ArgSpec] = []

    def parameter(name: str, shape: tuple, dtype: str) -> Node:
        combine_specs.append(ArgSpec(name, tuple(shape), dtype))
        return prim.input_node(builder, name, len(combine_specs) - 1, shape, dtype)

    params = [parameter(specs[p].name, specs[p].shape, specs[p].dtype) for p in theta]
    value = _apply(builder, parameter("partial_value", (), value_dtype), factors)
    grads = [_apply(builder, parameter(f"partial_{specs[p].name}", specs[p].shape,
                                       specs[p].dtype), factors) for p in reduced]
    if rest is not None:
        transform = (Transform("value_and_grad", tuple(reduced), single=False) if reduced
                     else Transform("jit"))
        body = CallBody.make(rest, 0, specs, transform, tuple(theta))
        results = [builder.node(CALL, params, {"body": body, "index": i}, shape, dtype)
                   for i, (shape, dtype) in enumerate(output_avals(rest, 0, specs, transform))]
        value = prim.elementwise(builder, "add", value, results[0])
        grads = [prim.elementwise(builder, "add", g, r) for g, r in zip(grads, results[1:])]
    outputs = (value, *grads)
    # The same input nodes (hash-consed), in parameter order.
    hints = {value: "value", **{g: f"{specs[p].name}_bar" for g, p in zip(grads, reduced)}}
    graph = Graph(tuple(_inputs(builder, combine_specs)), outputs, name_hints=hints)
    structure = tuple(range(len(outputs)))
    transform = Transform("jit")
    return compile_function(_Renamed(function.fn, "_combine"), combine_specs, transform, cache,
                            function.backend, trace=lambda: (graph, structure, transform))


def _inputs(builder: Builder, specs: Sequence[ArgSpec]) -> list[Node]:
    return [prim.input_node(builder, s.name, k, s.shape, s.dtype) for k, s in enumerate(specs)]


def _apply(builder: Builder, node: Node, factors: list) -> Node:
    for op, value in factors:
        node = prim.elementwise(builder, op, *([node] if value is None else [node, value]))
    return node
