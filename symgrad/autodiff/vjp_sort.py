"""Vector-Jacobian products of sorting and running extrema, in graph ops.

The gradient goes to the selected elements and follows numpy's definition of the value; exact
ties share it evenly, as symgrad's `max` does: every element of a group of equal values in a
sorted row receives the mean of the gradients of the positions the group fills, and a running
maximum's gradient at a position is split among all earlier elements equal to it.
Positions (argsort, argpartition, searchsorted, group numbers) are integer nodes: no gradient
flows through them, and the rules stay differentiable in `g` (second derivatives).
"""
from __future__ import annotations

from typing import Callable

from ..ir import index as prim_index, reduce as prim_reduce
from ..ir import sort as ps
from ..ir import primitives as prim
from ..ir.graph import Builder, Node

VjpRule = Callable[[Builder, Node, Node, int], Node]


def _group_ids(b: Builder, s: Node, axis: int) -> Node:
    """0, 1, 2, ... numbering the runs of equal values of `s` along `axis` (int64)."""
    n = s.shape[axis]
    first_shape = list(s.shape)
    first_shape[axis] = 1
    first = prim_reduce.fill(b, 1, tuple(first_shape), "int64")
    if n == 1:
        return prim.elementwise(b, "subtract", first, 1)
    changed = prim.elementwise(b, "not_equal", prim_index.slice_along(b, s, axis, 1, n),
                               prim_index.slice_along(b, s, axis, 0, n - 1))
    starts = prim_index.concatenate(b, [first, prim.astype(b, changed, "int64")], axis)
    return prim.elementwise(b, "subtract", prim_reduce.scan(b, "cumsum", starts, axis), 1)


def _sort_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    """g at the positions argsort took the values from; each group of equal values gets the
    mean of its positions' gradients."""
    x, axis = node.inputs[0], node.param("axis")
    group = _group_ids(b, node, axis)
    total = ps.add_along(b, g, group, axis, x.shape)
    count = ps.add_along(b, prim_reduce.fill(b, 1, g.shape, g.dtype), group, axis, x.shape)
    share = prim.elementwise(b, "divide", ps.take_along(b, total, group, axis),
                             ps.take_along(b, count, group, axis))
    return ps.add_along(b, share, ps.argsort(b, x, axis), axis, x.shape)


def _partition_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    x, axis = node.inputs[0], node.param("axis")
    positions = ps.argpartition(b, x, node.param("kth"), axis)
    return ps.add_along(b, g, positions, axis, x.shape)


def _running_extremum_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    """g at p is shared by the elements j <= p equal to the running extremum m_p: the hits
    (x_j == m_j) of the run of equal m that holds p."""
    x, axis = node.inputs[0], node.param("axis")
    hit = prim.astype(b, prim.elementwise(b, "equal", x, node), g.dtype)
    run = _group_ids(b, node, axis)
    hits_per_run = ps.add_along(b, hit, run, axis, x.shape)
    earlier_hits = prim.elementwise(b, "subtract", prim_reduce.scan(b, "cumsum", hits_per_run,
                                                                    axis), hits_per_run)
    count = prim.elementwise(b, "subtract", prim_reduce.scan(b, "cumsum", hit, axis),
                             ps.take_along(b, earlier_hits, run, axis))
    share = prim.elementwise(b, "divide", g, count)
    per_run = ps.add_along(b, share, run, axis, x.shape)
    later_runs = prim.elementwise(b, "subtract", prim_reduce.reverse_cumsum(b, per_run, axis),
                                  per_run)
    in_run_from_here = prim.elementwise(b, "subtract", prim_reduce.reverse_cumsum(b, share, axis),
                                        ps.take_along(b, later_runs, run, axis))
    return prim.elementwise(b, "multiply", hit, in_run_from_here)


SORT_VJP_RULES: dict[str, VjpRule] = {
    "sort": _sort_vjp,
    "partition": _partition_vjp,
    "cummax": _running_extremum_vjp,
    "cummin": _running_extremum_vjp,
}
