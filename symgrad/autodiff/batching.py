"""Batching rules: one graph rewritten so that every value gains a leading batch axis.

`batch_graph` takes a graph traced for one example and the nodes that feed its inputs (each
with the batch axis first, or unbatched), and rebuilds it in another builder: a node none of
whose inputs is batched is copied as it is; the others are rebuilt by the rule of their op,
so that code written for one example (`x[0]`, `x.sum()`, `x @ w`) means the same for each
example. Elementwise ops broadcast (a batched operand gets unit axes after its batch axis);
reductions, indexing, reshapes, transposes, products and concatenations move their axes by
one. The rules build graph nodes only: no SymPy, no Python loop over examples.

Every op of the op table has a rule here or a mark in `NOT_BATCHED` saying why it needs none
(the completeness test checks it).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..ir import primitives as prim
from ..errors import ShapeError
from ..ir.graph import Builder, Graph, Node
from ..ir.ops import OPS, Group
from ..ir.index import gather_shape
from ..ir.linalg import fresh_letters

Rule = Callable[[Builder, Node, list, list, int], Node]

# Ops that never reach a rule, and why.
NOT_BATCHED = {
    "input": "bound to the batched argument itself",
    "const": "the same for every example",
    "call": "expanded (its transform applied) before batching",
    "loop_out": "one of its loop's results, which the loop's rule batches (loop_batching.py)",
}

# Ops vmap refuses for now, with the reason; a batched operand reaching one is a ShapeError
# naming the op and the user's line (never a silent per-batch answer).
NO_RULE_YET = {
    "solve": "numpy.linalg.solve reads a batched 1-D right-hand side as a matrix",
    "lstsq": "numpy.linalg.lstsq does not batch",
    "searchsorted": "np.searchsorted takes a 1-D sorted array",
    "overwrite": "in-place updates place values at per-example positions",
}


def lifted(b: Builder, x: Node, rank: int) -> Node:
    """A batched `x` (batch axis first) with unit axes after the batch axis up to `rank`
    per-example dims, so that it broadcasts against per-example operands of that rank."""
    missing = rank - (x.ndim - 1)
    if missing <= 0:
        return x
    return prim.reshape(b, x, x.shape[:1] + (1,) * missing + x.shape[1:])


def materialised(b: Builder, x: Node, size: int) -> Node:
    """An unbatched `x` repeated along a new leading batch axis."""
    return prim.broadcast_to(b, x, (size,) + x.shape)


def _same(b: Builder, node: Node, inputs: Sequence[Node], size: int, **params: object) -> Node:
    """`node`'s op on new inputs, its shape with the batch axis first, params replaced."""
    merged = dict(node.params)
    merged.update(params)
    return b.node(node.op, inputs, merged, (size,) + node.shape, node.dtype, node.site)


def _moved(axes: object) -> object:
    return None if axes is None else tuple(a + 1 for a in axes)


# ---------------------------------------------------------------------------------------------
# Elementwise: broadcast
# ---------------------------------------------------------------------------------------------
def _elementwise(b: Builder, node: Node, xs: list, batched: list, size: int) -> Node:
    inputs = [lifted(b, x, node.ndim) if f else x for x, f in zip(xs, batched)]
    return _same(b, node, inputs, size)


# ---------------------------------------------------------------------------------------------
# Reductions: the reduced axes move by one
# ---------------------------------------------------------------------------------------------
def _reduction(b: Builder, node: Node, xs: list, batched: list, size: int) -> Node:
    return _same(b, node, xs, size, axes=_moved(node.param("axes")))


def _scan(b: Builder, node: Node, xs: list, batched: list, size: int) -> Node:
    return _same(b, node, xs, size, axis=node.param("axis") + 1)


def _arg_reduction(b: Builder, node: Node, xs: list, batched: list, size: int) -> Node:
    axis, x = node.param("axis"), xs[0]
    if axis is not None:
        return _same(b, node, xs, size, axis=axis + 1)
    flat = prim.reshape(b, x, (size, -1))  # each example's positions in its flattened array
    found = b.node(node.op, (flat,), {"axis": 1, "keepdims": False}, (size,), node.dtype,
                   node.site)
    return prim.reshape(b, found, (size,) + node.shape)


# ---------------------------------------------------------------------------------------------
# Movement
# ---------------------------------------------------------------------------------------------
def _reshape(b: Builder, node: Node, xs: list, batched: list, size: int) -> Node:
    return _same(b, node, xs, size, shape=(size,) + node.param("shape"))


def _transpose(b: Builder, node: Node, xs: list, batched: list, size: int) -> Node:
    return _same(b, node, xs, size, perm=(0,) + tuple(p + 1 for p in node.param("perm")))


def _broadcast_to(b: Builder, node: Node, xs: list, batched: list, size: int) -> Node:
    return _same(b, node, [lifted(b, xs[0], node.ndim)], size,
                 shape=(size,) + node.param("shape"))


def _unchanged(b: Builder, node: Node, xs: list, batched: list, size: int) -> Node:
    return _same(b, node, xs, size)


def _concatenate(b: Builder, node: Node, xs: list, batched: list, size: int) -> Node:
    inputs = [x if f else materialised(b, x, size) for x, f in zip(xs, batched)]
    return _same(b, node, inputs, size, axis=node.param("axis") + 1)


def _pad(b: Builder, node: Node, xs: list, batched: list, size: int) -> Node:
    return _same(b, node, xs, size, widths=((0, 0),) + node.param("widths"))


# ---------------------------------------------------------------------------------------------
# Indexing: basic indices gain a full slice; index arrays gain the example's position
# ---------------------------------------------------------------------------------------------
def _all_of(size: int) -> tuple:
    return ("s", 0, size, 1)


def _basic_index(b: Builder, node: Node, xs: list, batched: list, size: int) -> Node:
    params = {"index": (_all_of(size),) + node.param("index")}
    if node.op == "unslice":
        params["shape"] = (size,) + node.param("shape")
    return _same(b, node, xs, size, **params)


def _advanced_layout(index: tuple, rank: int, arrays_batched: bool, size: int
                     ) -> tuple[tuple, list]:
    """The batched index, and the permutation from numpy's result layout to batch-first.

    Numpy puts the index arrays' broadcast dims where the first advanced entry stands when
    the advanced entries (arrays, and integers among them) are adjacent, else first. Without
    batched index arrays the batch axis is a full slice in front; with them it is one more
    index array (the example's position) in front."""
    advanced = [i for i, e in enumerate(index) if e[0] in ("a", "i")]
    adjacent = advanced == list(range(advanced[0], advanced[-1] + 1))
    before = sum(1 for e in index[:advanced[0]] if e[0] in ("s", "n"))
    rest = len([e for e in index if e[0] in ("s", "n")])
    if not arrays_batched:
        new = (_all_of(size),) + index
        if adjacent:
            return new, []
        # numpy: (bcast, B, slices) -> (B, bcast, slices)
        return new, [rank] + list(range(rank)) + list(range(rank + 1, rank + 1 + rest))
    shifted = tuple(("a", e[1] + 1) if e[0] == "a" else e for e in index)
    new = (("a", 0),) + shifted
    if not adjacent or advanced[0] == 0:
        return new, []
    # numpy: (B, bcast, before, after) -> (B, before, bcast, after)
    return new, ([0] + list(range(rank + 1, rank + 1 + before)) + list(range(1, rank + 1))
                 + list(range(rank + 1 + before, rank + 1 + rest)))


def _index_arrays(b: Builder, arrays: list, batched: list, size: int) -> tuple[list, int]:
    """The index arrays with a leading example-position array when any of them is batched."""
    rank = len(np.broadcast_shapes(*[a.shape[1:] if f else a.shape
                                     for a, f in zip(arrays, batched)]))
    if not any(batched):
        return arrays, rank
    position = prim.constant(b, np.arange(size, dtype=np.int64).reshape((size,) + (1,) * rank))
    return [position] + [lifted(b, a, rank) if f else a for a, f in zip(arrays, batched)], rank


def _checked(node: Node, result: Node, size: int) -> Node:
    if result.shape != (size,) + node.shape:
        raise ShapeError(f"vmap of {node.op}", [node.shape, result.shape],
                         "the batched index does not give each example's result (a symgrad "
                         "bug; please report it)", str(node.site) if node.site else None)
    return result


def _gather(b: Builder, node: Node, xs: list, batched: list, size: int) -> Node:
    x, arrays = xs[0] if batched[0] else materialised(b, xs[0], size), xs[1:]
    arrays, rank = _index_arrays(b, arrays, batched[1:], size)
    index, perm = _advanced_layout(node.param("index"), rank, any(batched[1:]), size)
    shape = gather_shape(index, x.shape, arrays, None)
    result = b.node("gather", (x, *arrays), {"index": index}, shape, node.dtype, node.site)
    return _checked(node, prim.transpose(b, result, perm) if perm else result, size)


def _scatter_add(b: Builder, node: Node, xs: list, batched: list, size: int) -> Node:
    g, arrays = xs[0] if batched[0] else materialised(b, xs[0], size), xs[1:]
    arrays, rank = _index_arrays(b, arrays, batched[1:], size)
    index, perm = _advanced_layout(node.param("index"), rank, any(batched[1:]), size)
    if perm:  # g in numpy's layout of x[index]: the inverse of the gather's move
        g = prim.transpose(b, g, list(np.argsort(perm)))
    shape = (size,) + node.param("shape")
    result = b.node("scatter_add", (g, *arrays), {"index": index, "shape": shape}, shape,
                    node.dtype, node.site)
    return _checked(node, result, size)


# ---------------------------------------------------------------------------------------------
# Linear algebra
# ---------------------------------------------------------------------------------------------
def _matmul(b: Builder, node: Node, xs: list, batched: list, size: int) -> Node:
    (x, y), (bx, by) = xs, batched
    rx, ry = x.ndim - bx, y.ndim - by
    if _broadcasts(rx, ry, bx, by):  # numpy's own broadcasting already maps the examples
        return prim.matmul(b, x, y)
    if (rx, ry, bx, by) == (2, 1, False, True):  # one matrix times each example's vector
        return prim.matmul(b, y, prim.transpose(b, x))
    if rx == 1:  # a vector is a one-row matrix, its row dropped after the product
        x = prim.reshape(b, x, x.shape[:bx] + (1,) + x.shape[bx:])
    if ry == 1:
        y = prim.reshape(b, y, y.shape + (1,))
    rank = max(x.ndim - bx, y.ndim - by)
    x = lifted(b, x, rank) if bx else x
    y = lifted(b, y, rank) if by else y
    product = prim.matmul(b, x, y)
    return prim.reshape(b, product, (size,) + node.shape)


def _broadcasts(rx: int, ry: int, bx: bool, by: bool) -> bool:
    """Whether `x @ y` with the batch axis in front of the batched operands is already the
    product of each example (per-example ranks rx, ry)."""
    if bx and by:
        return rx == ry >= 2
    if bx:
        return ry <= 2 if rx == 1 else ry <= rx
    return ry >= 2 and rx <= ry


def _einsum(b: Builder, node: Node, xs: list, batched: list, size: int) -> Node:
    inputs, output = node.param("subscripts").split("->")
    letter = fresh_letters(node.param("subscripts"), 1)
    texts = [letter + t if f else t for t, f in zip(inputs.split(","), batched)]
    return _same(b, node, xs, size, subscripts=",".join(texts) + "->" + letter + output)


def _transform(b: Builder, node: Node, xs: list, batched: list, size: int) -> Node:
    """numpy.fft: the transformed axes move by one (both parts of a complex operand batched)."""
    inputs = [x if f else materialised(b, x, size) for x, f in zip(xs, batched)]
    return _same(b, node, inputs, size, axes=_moved(node.param("axes")))


def _custom_rule(b: Builder, node: Node, xs: list, batched: list, size: int) -> Node:
    """A user's rule (custom.py) over the batch: its value batched, its rule's graph batched."""
    value = xs[0] if batched[0] else materialised(b, xs[0], size)
    return _same(b, node, [value, *xs[1:]], size,
                 rule=node.param("rule").batched(size, batched[1:]))


# ---------------------------------------------------------------------------------------------
# The table: one rule an op (elementwise ops share theirs)
# ---------------------------------------------------------------------------------------------
BATCH_RULES: dict[str, Rule] = {
    "sum": _reduction, "max": _reduction, "min": _reduction, "prod": _reduction,
    "norm": _reduction, "softmax": _reduction, "log_softmax": _reduction,
    "cumsum": _scan, "cumprod": _scan,
    "argmax": _arg_reduction, "argmin": _arg_reduction,
    "reshape": _reshape, "transpose": _transpose, "broadcast_to": _broadcast_to,
    "astype": _unchanged, "stop_gradient": _unchanged,
    "concatenate": _concatenate, "pad": _pad,
    "getitem": _basic_index, "unslice": _basic_index,
    "gather": _gather, "scatter_add": _scatter_add,
    "matmul": _matmul, "einsum": _einsum,
    "custom_rule": _custom_rule,
    "fft": _transform, "rfft": _transform, "irfft": _transform,
    # numpy.linalg and the triangles act on the last two axes and batch over leading ones
    **{op: _unchanged for op in (
        "inv", "det", "adjugate", "slogdet_sign", "logabsdet", "cholesky", "eigh_values",
        "eigh_vectors", "svd_u", "svd_s", "svd_vh", "qr_q", "qr_r", "triu", "tril",
        "pair_reciprocals")},
    # sorting along one axis: the axis moves by one
    **{op: _scan for op in ("sort", "partition", "argsort", "argpartition", "cummax",
                            "cummin")},
}


def rule_for(op: str) -> Callable | None:
    """The batching rule of `op` (elementwise ops, user-defined ones included, broadcast;
    loops and branches by the rules of loop_batching.py)."""
    from .loop_batching import LOOP_RULES

    record = OPS.get(op)
    if record is not None and record.group is Group.ELEMENTWISE:
        return _elementwise
    return BATCH_RULES.get(op) or LOOP_RULES.get(op)


def unbatchable(graph: Graph) -> list[Node]:
    """The nodes of `graph`, and of the loop bodies in it, that no rule can batch (checked
    at trace time, before a miss)."""
    from .loop_batching import LOOP_RULES, bodies

    found = []
    for n in graph.nodes():
        if n.op not in NOT_BATCHED and rule_for(n.op) is None:
            found.append(n)
        elif n.op in LOOP_RULES:
            for body in bodies(n):
                found += unbatchable(body.graph)
    return found


def placeholders(b: Builder, graph: Graph, flags: Sequence[bool], size: int
                 ) -> dict[int, tuple[Node, bool]]:
    """New inputs for `graph`, by position: the same names, a batch axis first where batched."""
    bound = {}
    for node in graph.inputs:
        position = node.param("position")
        shape = (size,) + node.shape if flags[position] else node.shape
        bound[position] = (prim.input_node(b, node.param("name"), position, shape, node.dtype),
                           bool(flags[position]))
    return bound


def batched_outputs(graph: Graph, flags: Sequence[bool], size: int) -> list[bool]:
    """Which outputs of `graph` carry the batch when its inputs do where `flags` (by position)
    say: exactly what `batch_graph` gives them, from a build that is thrown away. Finer than
    "reads a batched input": a loop's carry that only reads unbatched values stays unbatched,
    as in JAX."""
    b = Builder()
    outputs, _ = batch_graph(b, graph, placeholders(b, graph, flags, size), size)
    return [batched for _, batched in outputs]


def batch_graph(b: Builder, graph: Graph, bound: dict[int, tuple[Node, bool]], size: int
                ) -> tuple[list[tuple[Node, bool]], dict[Node, Node]]:
    """`graph` rebuilt in `b` over a batch: `bound` maps each input position to the node
    that feeds it and whether that node carries the batch (first axis). Returns each output
    as (node, batched) and the map from old nodes to new ones (for names). A loop's rule
    gives each of its results at once; its `loop_out` nodes read them."""
    from .loop_batching import LOOP_RULES

    done: dict[Node, tuple[Node, bool]] = {}
    loop_results: dict[Node, list[tuple[Node, bool]]] = {}
    for node in graph.nodes():
        if node.op == "input":
            done[node] = bound[node.param("position")]
            continue
        if node.op == "loop_out" and node.inputs[0] in loop_results:
            done[node] = loop_results[node.inputs[0]][node.param("index")]
            continue
        xs = [done[i][0] for i in node.inputs]
        flags = [done[i][1] for i in node.inputs]
        if not any(flags):
            done[node] = (b.node(node.op, xs, dict(node.params), node.shape, node.dtype,
                                 node.site), False)
            continue
        if node.op in LOOP_RULES:
            loop, loop_results[node] = LOOP_RULES[node.op](b, node, xs, flags, size,
                                                           batch_graph)
            if loop is not None:  # None: the loop became a select, read by its loop_outs
                done[node] = (loop, True)
            continue
        rule = rule_for(node.op)
        if rule is None:
            raise ShapeError(f"vmap of {node.op}", [i.shape for i in node.inputs],
                             f"{node.op} has no batching rule", str(node.site) if node.site
                             else None)
        done[node] = (rule(b, node, xs, flags, size), True)
    return [done[o] for o in graph.outputs], {k: v[0] for k, v in done.items()}
