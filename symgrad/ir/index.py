"""Primitive constructors for indexing with arrays, concatenation, padding and slices.

Basic indexing (integers, slices, None, Ellipsis) is `getitem` in primitives.py. Advanced
indexing is `gather`: its index is normalised like a basic one, with ('a', k) standing for the
k-th index array (an integer input or constant). Its adjoint `scatter_add` adds values at the
index, so repeated indices accumulate (`np.add.at`). Result shapes come from numpy itself,
indexing a zero-stride dummy, so numpy's rules (where the advanced axes go) hold exactly.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import ShapeError, TracingError
from .graph import Builder, Node, Shape
from .primitives import astype, broadcast_shapes, getitem_normalized, reshape


def _where(b: Builder) -> str | None:
    return str(b.site) if b.site else None


# ---------------------------------------------------------------------------------------------
# Slices along one axis, flips
# ---------------------------------------------------------------------------------------------
def full_slices(shape: Shape) -> list[tuple]:
    return [("s", 0, d, 1) for d in shape]


def slice_along(b: Builder, x: Node, axis: int, start: int, stop: int, step: int = 1) -> Node:
    index = full_slices(x.shape)
    index[axis] = ("s", start, stop, step)
    return getitem_normalized(b, x, tuple(index))


def flip(b: Builder, x: Node, axes: Sequence[int]) -> Node:
    index = full_slices(x.shape)
    for axis in axes:
        start, stop, step = slice(None, None, -1).indices(x.shape[axis])
        index[axis] = ("s", start, stop, step)
    return getitem_normalized(b, x, tuple(index))


# ---------------------------------------------------------------------------------------------
# Concatenation and padding
# ---------------------------------------------------------------------------------------------
def concatenate(b: Builder, xs: Sequence[Node], axis: int) -> Node:
    where = _where(b)
    if not xs:
        raise ShapeError("concatenate", [], "need at least one array to concatenate", where)
    ndim = xs[0].ndim
    if ndim == 0:
        raise ShapeError("concatenate", [x.shape for x in xs],
                         "zero-dimensional arrays cannot be concatenated", where)
    if not -ndim <= axis < ndim:
        raise ShapeError("concatenate", [x.shape for x in xs],
                         f"axis {axis} is out of bounds for arrays of {ndim} dims", where)
    axis %= ndim
    for x in xs:
        if x.ndim != ndim or any(d != e for i, (d, e) in enumerate(zip(x.shape, xs[0].shape))
                                 if i != axis):
            raise ShapeError("concatenate", [x.shape for x in xs],
                             f"all dimensions except axis {axis} must match", where)
    if len(xs) == 1:
        return xs[0]
    dtype = np.result_type(*[np.empty(0, x.dtype) for x in xs]).name
    xs = [astype(b, x, dtype) for x in xs]
    shape = list(xs[0].shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    return b.node("concatenate", xs, {"axis": axis}, tuple(shape), dtype)


def concatenate_part(b: Builder, g: Node, node: Node, k: int) -> Node:
    """The slice of `g` that input `k` of a concatenation filled."""
    axis = node.param("axis")
    start = sum(x.shape[axis] for x in node.inputs[:k])
    return slice_along(b, g, axis, start, start + node.inputs[k].shape[axis])


def pad(b: Builder, x: Node, widths: Sequence[tuple[int, int]], value: float | int) -> Node:
    widths = tuple((int(lo), int(hi)) for lo, hi in widths)
    if len(widths) != x.ndim or any(lo < 0 or hi < 0 for lo, hi in widths):
        raise ShapeError("pad", [x.shape], f"pad widths {widths} do not fit", _where(b))
    if all(lo == hi == 0 for lo, hi in widths):
        return x
    shape = tuple(d + lo + hi for d, (lo, hi) in zip(x.shape, widths))
    return b.node("pad", (x,), {"widths": widths, "value": value}, shape, x.dtype)


def unpad_index(node: Node) -> tuple:
    """The basic index of the original values inside a padded array."""
    return tuple(("s", lo, lo + d, 1) for (lo, _), d in zip(node.param("widths"),
                                                             node.inputs[0].shape))


# ---------------------------------------------------------------------------------------------
# Advanced indexing: gather and its adjoint
# ---------------------------------------------------------------------------------------------
def as_numpy_index(index: tuple, arrays: Sequence[Any]) -> tuple:
    """The normalised index as a numpy index, with `arrays` for the ('a', j) entries."""
    items: list[Any] = []
    for entry in index:
        kind = entry[0]
        if kind == "n":
            items.append(None)
        elif kind == "i":
            items.append(entry[1])
        elif kind == "a":
            items.append(arrays[entry[1]])
        else:
            _, start, stop, step = entry
            items.append(slice(start, None if stop < 0 else stop, step))
    return tuple(items)


def gather_shape(index: tuple, shape: Shape, arrays: Sequence[Node], where: str | None) -> Shape:
    dummies = [np.zeros(a.shape, np.intp) for a in arrays]
    try:
        broadcast_shapes("getitem", [a.shape for a in arrays], where)
        return np.broadcast_to(np.empty((), np.int8), shape)[as_numpy_index(index, dummies)].shape
    except IndexError as error:
        raise ShapeError("getitem", [shape] + [a.shape for a in arrays], str(error),
                         where) from None


def constant_value(node: Node) -> np.ndarray | None:
    """The value of a constant node (an array, or a scalar made full size), else None."""
    from .primitives import ConstArray

    if node.op == "broadcast_to" and node.inputs[0].op == "const":
        return np.broadcast_to(np.asarray(node.inputs[0].param("value"), node.dtype), node.shape)
    if node.op == "const":
        value = node.param("value")
        return value.value if isinstance(value, ConstArray) else np.asarray(value, node.dtype)
    return None


def positions_distinct(arrays: Sequence[Node]) -> bool:
    """Whether index arrays, broadcast together, can name no position twice: one of them is a
    constant of the full index shape with distinct non-negative values (x[np.arange(n), labels]).
    Its scatter is then an assignment, not np.add.at (4x faster on 4096 labels)."""
    if not arrays:
        return False
    full = np.broadcast_shapes(*[a.shape for a in arrays])
    for a in arrays:
        value = constant_value(a)
        if value is not None and value.shape == full and value.size and value.min() >= 0 \
                and np.unique(value).size == value.size:
            return True
    return False


def check_constant_indices(index: tuple, shape: Shape, arrays: Sequence[Node],
                           where: str | None) -> None:
    """Out-of-range constant indices fail at trace time, as numpy would fail at run time."""
    values = []
    for a in arrays:
        value = constant_value(a)
        values.append(np.zeros(a.shape, np.intp) if value is None else value)
    try:
        np.broadcast_to(np.empty((), np.int8), shape)[as_numpy_index(index, values)]
    except IndexError as error:
        raise ShapeError("getitem", [shape] + [a.shape for a in arrays], str(error),
                         where) from None


def gather(b: Builder, x: Node, index: tuple, arrays: Sequence[Node]) -> Node:
    """x[index] where some entries are integer index arrays (`arrays`, in entry order)."""
    where = _where(b)
    for a in arrays:
        if a.dtype == "bool" or not (a.dtype.startswith("int") or a.dtype.startswith("uint")):
            raise TracingError(f"index arrays must be integers, not {a.dtype} (at {where})")
    shape = gather_shape(index, x.shape, arrays, where)
    check_constant_indices(index, x.shape, arrays, where)
    return b.node("gather", (x, *arrays), {"index": index}, shape, x.dtype)


def scatter_add(b: Builder, g: Node, index: tuple, arrays: Sequence[Node], shape: Shape) -> Node:
    """Zeros of `shape` with `g` added at `index`: the adjoint of a gather."""
    return b.node("scatter_add", (g, *arrays), {"index": index, "shape": tuple(shape)},
                  tuple(shape), g.dtype)


def unit_axes_removed(b: Builder, x: Node, axes: Sequence[int]) -> Node:
    """`x` without the given size-1 axes (np.squeeze)."""
    return reshape(b, x, tuple(d for i, d in enumerate(x.shape) if i not in set(axes)))


def overwrite(b: Builder, mask: Node, placed: Node, x: Node) -> Node:
    """`x` with the elements where the constant `mask` holds replaced by `placed`'s (an
    assignment `x[index] = v`, with v placed at the index)."""
    assert mask.dtype == "bool" and placed.shape == x.shape == mask.shape, (mask, placed, x)
    return b.node("overwrite", (mask, astype(b, placed, x.dtype), x), {}, x.shape, x.dtype)
