"""Primitive constructors for sorting: np.sort, np.partition, their positions (np.argsort,
np.argpartition), np.searchsorted, and the running extrema np.maximum/minimum.accumulate.

Values keep their dtype; positions are int64 and carry no gradient. Gathers and scatters
"along an axis" (np.take_along_axis's indexing) are built here for the VJP rules and the front
end alike.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ShapeError
from .graph import Builder, Node, Shape
from .index import gather, scatter_add
from .primitives import constant, reshape


def _where(b: Builder) -> str | None:
    return str(b.site) if b.site else None


def along_axis(b: Builder, shape: Shape, positions: Node, axis: int) -> tuple[tuple, list[Node]]:
    """The gather index of np.take_along_axis(x, positions, axis) for an x of `shape`."""
    arrays: list[Node] = []
    for dim in range(len(shape)):
        if dim == axis:
            arrays.append(positions)
        else:
            unit = [1] * len(shape)
            unit[dim] = shape[dim]
            arrays.append(constant(b, np.arange(shape[dim]).reshape(unit)))
    return tuple(("a", dim) for dim in range(len(shape))), arrays


def take_along(b: Builder, x: Node, positions: Node, axis: int) -> Node:
    index, arrays = along_axis(b, x.shape, positions, axis)
    return gather(b, x, index, arrays)


def add_along(b: Builder, values: Node, positions: Node, axis: int, shape: Shape) -> Node:
    """Zeros of `shape` with `values` added at `positions` along `axis` (repeats accumulate)."""
    index, arrays = along_axis(b, shape, positions, axis)
    return scatter_add(b, values, index, arrays, shape)


def _checked_kth(b: Builder, x: Node, kth: int | Sequence[int], axis: int) -> tuple[int, ...]:
    n = x.shape[axis]
    kths = (kth,) if isinstance(kth, (int, np.integer)) else tuple(kth)
    for k in kths:
        if not -n <= int(k) < n:
            raise ShapeError("partition", [x.shape], f"kth(={k}) out of bounds ({n})", _where(b))
    return tuple(sorted(int(k) % n for k in kths))


def sort(b: Builder, x: Node, axis: int) -> Node:
    return b.node("sort", (x,), {"axis": axis}, x.shape, x.dtype)


def argsort(b: Builder, x: Node, axis: int, kind: str | None = None) -> Node:
    return b.node("argsort", (x,), {"axis": axis, "kind": kind}, x.shape, "int64")


def partition(b: Builder, x: Node, kth: int | Sequence[int], axis: int) -> Node:
    kth = _checked_kth(b, x, kth, axis)
    return b.node("partition", (x,), {"kth": kth, "axis": axis}, x.shape, x.dtype)


def argpartition(b: Builder, x: Node, kth: int | Sequence[int], axis: int) -> Node:
    kth = _checked_kth(b, x, kth, axis)
    return b.node("argpartition", (x,), {"kth": kth, "axis": axis}, x.shape, "int64")


def searchsorted(b: Builder, sorted_values: Node, v: Node, side: str = "left") -> Node:
    if sorted_values.ndim != 1:
        raise ShapeError("searchsorted", [sorted_values.shape, v.shape], "the sorted array "
                         "must be 1-D", _where(b))
    if side not in ("left", "right"):
        raise ShapeError("searchsorted", [sorted_values.shape], f"side must be 'left' or "
                         f"'right', not {side!r}", _where(b))
    return b.node("searchsorted", (sorted_values, v), {"side": side}, v.shape, "int64")


def running_extremum(b: Builder, op: str, x: Node, axis: int) -> Node:
    assert op in ("cummax", "cummin"), op
    return b.node(op, (x,), {"axis": axis}, x.shape, x.dtype)


def flat(b: Builder, x: Node) -> Node:
    return reshape(b, x, (-1,))
