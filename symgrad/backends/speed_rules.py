"""Graph rewrites for speed: the same values, computed with fewer and larger BLAS calls.

The rules a backend that calls BLAS between its own code runs (numpy and C name them as their
`SPEED_RULES`); every rewrite is exact, so a backend that runs none gets the same numbers.

Applied to the traced graph before differentiation (so the backward pass inherits the faster
form) and to the whole derivative graph after it. Each rule is one short function in `RULES`;
a rule returns a replacement for a node or None. Nodes are rebuilt through `primitives`, so
shapes and dtypes are checked as for traced code, and a transpose of a transpose folds there.

- a matrix product with one term per element (an outer product) is a broadcast multiply;
- a stacked product with a shared 2-D weight, x (b, m, k) @ w (k, n), becomes one product of
  b*m rows: numpy runs a stacked matmul as one small GEMM per matrix, and the gradient of `w`
  becomes one product x_rows.T @ g_rows instead of b products summed over the batch;
- a transpose of a product is the product of the transposed operands in swapped order
  (swap(a @ b) = swap(b) @ swap(a)): numpy passes transposed operands to BLAS without copying,
  while a transposed result stays a strided view that later reads or reshapes must copy;
- constant factors and casts move out of sums, onto the smaller result, and a sum over axes
  its operand is only broadcast along is a multiplication by their size;
- reshapes and broadcasts of a broadcast scalar collapse into one broadcast;
- a sum of products over short rows is an einsum (no array of the products);
- after differentiation only: softmax and log_softmax are written out as the max, exp, sum and
  divide a careful person writes, sharing those steps between forward and backward (the
  backward of log_softmax reuses the forward's exp and sum); the printer then picks fast
  reductions for them and the buffer planner reuses their arrays.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..ir import linalg as prim_linalg, reduce as prim_reduce
from ..ir import primitives as prim
from ..ir.linalg import index_letters
from ..ir.graph import Builder, Graph, Node, Shape, topological_order

# numpy reduces a last axis row by row, at tens of nanoseconds a row: with many short rows that
# cost is most of the time (np.max over (4096, 3) takes ten times np.exp of the same array).
# Reductions of that shape are computed in forms that go over all rows at once.
MANY_ROWS = 64
SHORT_ROW = 128  # numpy's pairwise summation adds up to 128 elements in one plain loop anyway
SHORT_ROW_FOR_EXTREMA = 32  # beyond it, the copy the moved form makes costs more than it saves
TINY_ROW = 4  # up to it, a sum is its columns added (x[..., 0] + x[..., 1]): 3-7x einsum


def row_reduction(shape: Shape, axes: tuple[int, ...]) -> tuple[int, int] | None:
    """(rows, row length) when `axes` are exactly the trailing axes of `shape`, leaving at least
    MANY_ROWS rows of at most SHORT_ROW elements: the shape numpy reduces slowly."""
    first = len(shape) - len(axes)
    if first == 0 or tuple(axes) != tuple(range(first, len(shape))):
        return None
    rows, length = int(np.prod(shape[:first])), int(np.prod(shape[first:]))
    return (rows, length) if rows >= MANY_ROWS and length <= SHORT_ROW else None


Rule = Callable[[Builder, Node], "Node | None"]


def _is_swap_last(node: Node) -> bool:
    perm = node.param("perm")
    return node.op == "transpose" and node.ndim >= 2 and perm == tuple(
        range(node.ndim - 2)) + (node.ndim - 1, node.ndim - 2)


def _fold_shared_weight(b: Builder, node: Node) -> Node | None:
    """x (..., m, k) @ w (k, n)  ->  (x as rows (-1, k) @ w) reshaped to (..., m, n)."""
    if node.op != "matmul":
        return None
    x, w = node.inputs
    if x.ndim < 3 or w.ndim != 2:
        return None
    rows = prim.reshape(b, x, (-1, x.shape[-1]))
    return prim.reshape(b, prim.matmul(b, rows, w), node.shape)


def _outer_product(b: Builder, node: Node) -> Node | None:
    """a (..., m, 1) @ b (..., 1, n) -> a * b, broadcast: BLAS is slow at products with one
    term each (the gradient of a single-output layer, g[:, None] @ w.T, took 0.75 ms for a
    (2048, 256) result that a multiplication makes in 0.1 ms, and fuses with its neighbours)."""
    if node.op != "matmul":
        return None
    x, y = node.inputs
    if x.ndim < 2 or y.ndim < 2 or x.shape[-1] != 1 or y.shape[-2] != 1:
        return None
    return prim.elementwise(b, "multiply", x, y)


def _transpose_of_product(b: Builder, node: Node) -> Node | None:
    """swap(a @ b) -> swap(b) @ swap(a), for matrices and stacks of them."""
    if not _is_swap_last(node) or node.inputs[0].op != "matmul":
        return None
    a, c = node.inputs[0].inputs
    if a.ndim < 2 or c.ndim < 2:
        return None
    return prim.matmul(b, prim.swap_last(b, c), prim.swap_last(b, a))


def _sum_of_scaled(b: Builder, node: Node) -> Node | None:
    """sum(k * x) -> k * sum(x) for a constant k (the gradient of a - b is -g, summed):
    one pass over the small result instead of over the large operand."""
    if node.op != "sum" or node.inputs[0].op not in ("ew", "negative"):
        return None
    scaled = node.inputs[0]
    x = scaled.inputs[0]
    if len(scaled.inputs) != 1 or x.shape != scaled.shape or x.dtype != scaled.dtype:
        return None
    if scaled.op == "ew":
        expr = scaled.param("expr")
        if len(expr.free_symbols) != 1 or not (expr / next(iter(expr.free_symbols))).is_number:
            return None
    summed = prim.reduce_sum(b, x, node.param("axes"), node.param("keepdims"))
    if scaled.op == "negative":
        return prim.elementwise(b, "negative", summed)
    return prim.ew(b, scaled.param("expr"), [summed], summed.shape, summed.dtype)


def _sum_of_broadcast(b: Builder, node: Node) -> Node | None:
    """sum(broadcast_to(v, shape)) over axes v is broadcast along -> v * (their size): the
    gradient of a sum reaching another sum (np.sum(a * np.sum(b, 1, keepdims=True))) stays a
    scaled value, with no array of ones made to be added up."""
    if node.op != "sum" or node.inputs[0].op != "broadcast_to":
        return None
    v, shape, axes = node.inputs[0].inputs[0], node.inputs[0].shape, node.param("axes")
    if not v.is_float or v.dtype != node.dtype:
        return None
    aligned = (1,) * (len(shape) - v.ndim) + v.shape
    stretched = [a for a in axes if aligned[a] == 1 and shape[a] != 1]
    if not stretched:
        return None
    count = 1
    for a in stretched:
        count *= shape[a]
    summed = prim.reduce_sum(b, prim.reshape(b, v, aligned),
                             tuple(a for a in axes if a not in stretched), True)
    scaled = prim.elementwise(b, "multiply", summed, count)
    kept = prim.broadcast_to(b, scaled, prim.reduced_shape(shape, axes, True))
    return prim.reshape(b, kept, node.shape)


def _sum_of_cast_mask(b: Builder, node: Node) -> Node | None:
    """sum(mask.astype(float)) -> sum(mask).astype(float): counts (a max's ties), without a
    float copy of the whole mask."""
    if node.op != "sum" or node.inputs[0].op != "astype" \
            or node.inputs[0].inputs[0].dtype != "bool":
        return None
    counts = prim.reduce_sum(b, node.inputs[0].inputs[0], node.param("axes"),
                             node.param("keepdims"))
    return prim.astype(b, counts, node.dtype)


def _moved_scalar(b: Builder, node: Node) -> Node | None:
    """A reshape or broadcast of a broadcast 0-d value is a broadcast of that value: the
    gradient of a mean stays one scaled scalar that numpy broadcasting applies for free."""
    if node.op not in ("reshape", "broadcast_to"):
        return None
    source = node.inputs[0]
    if source.op == "broadcast_to" and source.inputs[0].shape == ():
        source = source.inputs[0]
    if source.shape != () or (source is node.inputs[0] and node.op == "broadcast_to"):
        return None
    return prim.broadcast_to(b, source, node.shape)


def _product_summed(b: Builder, node: Node) -> Node | None:
    """sum(a * b) over short trailing rows -> einsum("ijk,ijk->ij", a, b): the products are
    summed as they are made, with no array of them (a softmax's backward, a row-wise dot)."""
    if node.op != "sum" or node.inputs[0].op != "multiply" or not node.is_float:
        return None
    x, y = node.inputs[0].inputs
    axes = node.param("axes")
    rows = row_reduction(x.shape, axes)
    if x.shape != y.shape or x.shape != node.inputs[0].shape or x.dtype != y.dtype \
            or x.dtype != node.dtype or not rows or rows[1] <= TINY_ROW:
        return None  # (tiny rows: the product's columns added are faster still)
    letters = index_letters(x.ndim)
    kept = letters[:x.ndim - len(axes)]
    dot = prim_linalg.einsum(b, [letters, letters], kept, [x, y])
    return prim.reshape(b, dot, node.shape) if node.param("keepdims") else dot


def _written_out(b: Builder, node: Node) -> Node | None:
    """softmax(x) -> e / s and log_softmax(x) -> (x - m) - log(s), with m = max(x),
    e = exp(x - m) and s = sum(e) over the normalised axes."""
    if node.op not in prim_reduce.NORMALISERS:
        return None
    x, axes = node.inputs[0], node.param("axes")
    shifted = prim.elementwise(b, "subtract", x, prim_reduce.reduce(b, "max", x, axes, True))
    exps = prim.elementwise(b, "exp", shifted)
    total = prim.reduce_sum(b, exps, axes, True)
    if node.op == "softmax":
        return prim.elementwise(b, "divide", exps, total)
    return prim.elementwise(b, "subtract", shifted, prim.elementwise(b, "log", total))


RULES: tuple[Rule, ...] = (_outer_product, _fold_shared_weight, _transpose_of_product,
                           _sum_of_scaled, _sum_of_broadcast, _sum_of_cast_mask, _moved_scalar)
# After differentiation, once nothing is differentiated again:
FINAL_RULES: tuple[Rule, ...] = RULES + (_written_out, _product_summed)
# No rule fires on a graph without these ops.
_RULE_OPS = ("matmul", "transpose", "sum", "reshape") + prim_reduce.NORMALISERS


def optimize(outputs: Sequence[Node], hints: dict[Node, str],
             rules: tuple[Rule, ...] = FINAL_RULES) -> tuple[list[Node], dict[Node, str]]:
    """The outputs rebuilt with every rule applied once per node, and the name hints moved to
    the rebuilt nodes. Inputs stay the same node objects."""
    order = sorted(topological_order(outputs), key=lambda n: n.serial)
    scratch = Builder()  # if no rule fires on the graph as it is, none fires at all
    if not any(rule(scratch, n) is not None for n in order if n.op in _RULE_OPS
               for rule in rules):
        return list(outputs), hints
    builder = Builder()
    rebuilt: dict[Node, Node] = {}
    # Every node is rebuilt, in creation order, so that the new nodes keep the old order
    # (lift() orders statements by creation: forward pass first, then backward).
    for node in order:
        if not node.inputs:
            rebuilt[node] = node
            continue
        inputs = tuple(rebuilt[i] for i in node.inputs)
        builder.site = node.site
        same = builder.node(node.op, inputs, dict(node.params), node.shape, node.dtype,
                            node.site)
        for rule in rules:
            replacement = rule(builder, same)
            if replacement is not None:
                same = replacement
                break
        rebuilt[node] = same
    moved = {}
    for node, name in hints.items():
        target = rebuilt.get(node)
        if target is not None and target not in moved:
            moved[target] = name
    return [rebuilt[o] for o in outputs], moved


def optimize_graph(graph: Graph, rules: tuple[Rule, ...] = RULES) -> Graph:
    """The traced graph with the rules applied (before differentiation)."""
    outputs, hints = optimize(graph.outputs, graph.name_hints, rules)
    return Graph(graph.inputs, tuple(outputs), hints)
