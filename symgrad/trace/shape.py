"""Shape functions on tracers: swapaxes, moveaxis, expand_dims, squeeze, concatenate, stack,
hstack, vstack, split, array_split, tile, repeat, flip, roll, diff, pad, and the `*_like`
creation functions (constants of the tracer's shape and dtype).

All lower to a few primitives (reshape, transpose, broadcast_to, getitem, concatenate, pad,
gather), so their gradients come from those primitives' rules.
"""
from __future__ import annotations

import operator
from typing import Any, Sequence

import numpy as np

from ..ir import index as prim_index, reduce as prim_reduce
from ..ir import primitives as prim
from ..errors import ShapeError, TracingError, UnsupportedFunctionError
from ..ir.graph import Builder, Node
from .numpy_api import _where, boxed, implements, on_nodes
from .tracer import METHODS, PROPERTIES, Tracer, bound_site

FAMILY = "Shape, joining, repetition, constants shaped like an array"  # its heading in docs/ops.md


def _axis(op: str, axis: Any, ndim: int, builder: Builder, shape: tuple | None = None) -> int:
    return prim.normalize_axes(op, operator.index(axis), ndim, _where(builder), shape)[0]


# ---------------------------------------------------------------------------------------------
# Axes
# ---------------------------------------------------------------------------------------------
@implements(np.swapaxes)
def swapaxes(a: Any, axis1: int, axis2: int) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        perm = list(range(x.ndim))
        i = _axis("swapaxes", axis1, x.ndim, b, x.shape)
        j = _axis("swapaxes", axis2, x.ndim, b, x.shape)
        perm[i], perm[j] = perm[j], perm[i]
        return prim.transpose(b, x, perm)
    return on_nodes(build, a)


@implements(np.moveaxis)
def moveaxis(a: Any, source: Any, destination: Any) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        src = [source] if isinstance(source, (int, np.integer)) else list(source)
        dst = [destination] if isinstance(destination, (int, np.integer)) else list(destination)
        if len(src) != len(dst):
            raise ShapeError("moveaxis", [x.shape], "source and destination differ in length",
                             _where(b))
        src = [_axis("moveaxis", s, x.ndim, b, x.shape) for s in src]
        dst = [_axis("moveaxis", d, x.ndim, b, x.shape) for d in dst]
        order = [n for n in range(x.ndim) if n not in src]
        for d, s in sorted(zip(dst, src)):
            order.insert(d, s)
        return prim.transpose(b, x, order)
    return on_nodes(build, a)


@implements(np.expand_dims)
def expand_dims(a: Any, axis: Any) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
        ndim = x.ndim + len(axes)
        positions = prim.normalize_axes("expand_dims", axes, ndim, _where(b))
        shape, source = [], iter(x.shape)
        for i in range(ndim):
            shape.append(1 if i in positions else next(source))
        return prim.reshape(b, x, shape)
    return on_nodes(build, a)


@implements(np.squeeze)
def squeeze(a: Any, axis: Any = None) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        if axis is None:
            axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
        else:
            axes = prim.normalize_axes("squeeze", axis, x.ndim, _where(b), x.shape)
            if any(x.shape[i] != 1 for i in axes):
                raise ShapeError("squeeze", [x.shape], "cannot select an axis to squeeze out "
                                 "which has size not equal to one", _where(b))
        return prim_index.unit_axes_removed(b, x, axes)
    return on_nodes(build, a)


def _at_least(arrays: tuple, ndim: int) -> Any:
    def build(b: Builder, x: Node) -> Node:
        if x.ndim >= ndim:
            return x
        return prim.reshape(b, x, (1,) * (ndim - max(x.ndim, 1)) + (x.shape or (1,)))
    results = [on_nodes(build, a) if isinstance(a, Tracer) else np.atleast_1d(a) if ndim == 1
               else np.atleast_2d(a) for a in arrays]
    return results[0] if len(results) == 1 else results


@implements(np.atleast_1d)
def atleast_1d(*arys: Any) -> Any:
    return _at_least(arys, 1)


@implements(np.atleast_2d)
def atleast_2d(*arys: Any) -> Any:
    return _at_least(arys, 2)


# ---------------------------------------------------------------------------------------------
# Joining and splitting
# ---------------------------------------------------------------------------------------------
def _joined(b: Builder, xs: Sequence[Node], axis: Any, dtype: Any, op: str) -> Node:
    if axis is None:
        xs, axis = [prim.reshape(b, x, (-1,)) for x in xs], 0
    if dtype is not None:
        xs = [prim.astype(b, x, np.dtype(dtype).name) for x in xs]
    return prim_index.concatenate(b, xs, operator.index(axis))


@implements(np.concatenate)
def concatenate(arrays: Any, axis: Any = 0, out: Any = None, *, dtype: Any = None,
                casting: str = "same_kind") -> Tracer:
    return on_nodes(lambda b, *xs: _joined(b, xs, axis, dtype, "concatenate"), *arrays)


@implements(np.stack)
def stack(arrays: Any, axis: int = 0, out: Any = None, *, dtype: Any = None,
          casting: str = "same_kind") -> Tracer:
    def build(b: Builder, *xs: Node) -> Node:
        if not xs or any(x.shape != xs[0].shape for x in xs):
            raise ShapeError("stack", [x.shape for x in xs], "all input arrays must have the "
                             "same shape", _where(b))
        position = _axis("stack", axis, xs[0].ndim + 1, b)
        expanded = [prim.expand_dims(b, x, position) for x in xs]
        return _joined(b, expanded, position, dtype, "stack")
    return on_nodes(build, *arrays)


@implements(np.hstack)
def hstack(tup: Any, *, dtype: Any = None, casting: str = "same_kind") -> Tracer:
    def build(b: Builder, *xs: Node) -> Node:
        xs = [prim.reshape(b, x, (1,)) if x.ndim == 0 else x for x in xs]
        return _joined(b, xs, 0 if xs[0].ndim == 1 else 1, dtype, "hstack")
    return on_nodes(build, *tup)


@implements(np.vstack)
def vstack(tup: Any, *, dtype: Any = None, casting: str = "same_kind") -> Tracer:
    def build(b: Builder, *xs: Node) -> Node:
        xs = [prim.reshape(b, x, (1, -1) if x.ndim <= 1 else x.shape) for x in xs]
        return _joined(b, xs, 0, dtype, "vstack")
    return on_nodes(build, *tup)


@implements(np.column_stack)
def column_stack(tup: Any) -> Tracer:
    def build(b: Builder, *xs: Node) -> Node:
        xs = [prim.reshape(b, x, (-1, 1)) if x.ndim < 2 else x for x in xs]
        return _joined(b, xs, 1, None, "column_stack")
    return on_nodes(build, *tup)


def _split(a: Any, indices_or_sections: Any, axis: int, even: bool) -> list[Tracer]:
    def build(b: Builder, x: Node) -> list[Node]:
        ax = _axis("split", axis, x.ndim, b, x.shape)
        n = x.shape[ax]
        if isinstance(indices_or_sections, (int, np.integer)):
            sections = int(indices_or_sections)
            if sections <= 0 or (even and n % sections):
                raise ShapeError("split", [x.shape], f"array split does not result in an "
                                 f"equal division ({n} into {sections})", _where(b))
            size, extra = divmod(n, sections)
            bounds = [0]
            for k in range(sections):
                bounds.append(bounds[-1] + size + (1 if k < extra else 0))
        else:
            bounds = [0] + [min(max(int(i) if i >= 0 else n + int(i), 0), n)
                            for i in indices_or_sections] + [n]
        return [prim_index.slice_along(b, x, ax, lo, max(lo, hi))
                for lo, hi in zip(bounds[:-1], bounds[1:])]
    return on_nodes(build, a)


@implements(np.split)
def split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Tracer]:
    return _split(ary, indices_or_sections, axis, even=True)


@implements(np.array_split)
def array_split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Tracer]:
    return _split(ary, indices_or_sections, axis, even=False)


# ---------------------------------------------------------------------------------------------
# Repetition, reversal, padding
# ---------------------------------------------------------------------------------------------
@implements(np.tile)
def tile(A: Any, reps: Any) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        counts = (reps,) if isinstance(reps, (int, np.integer)) else tuple(reps)
        ndim = max(x.ndim, len(counts))
        counts = (1,) * (ndim - len(counts)) + tuple(int(c) for c in counts)
        shape = (1,) * (ndim - x.ndim) + x.shape
        interleaved = prim.reshape(b, x, [d for s in shape for d in (1, s)])
        spread = prim.broadcast_to(b, interleaved, [d for c, s in zip(counts, shape)
                                                    for d in (c, s)])
        return prim.reshape(b, spread, [c * s for c, s in zip(counts, shape)])
    return on_nodes(build, A)


@implements(np.repeat)
def repeat(a: Any, repeats: Any, axis: Any = None) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        nonlocal axis
        if axis is None:
            x, axis = prim.reshape(b, x, (-1,)), 0
        axis = _axis("repeat", axis, x.ndim, b, x.shape)
        counts = np.asarray(repeats)
        if counts.ndim > 1 or (counts.ndim == 1 and counts.shape[0] not in (1, x.shape[axis])) \
                or (counts < 0).any():
            raise ShapeError("repeat", [x.shape, counts.shape], f"repeats {counts.tolist()} do "
                             f"not fit axis {axis} of size {x.shape[axis]}", _where(b))
        if counts.ndim == 1 and counts.shape[0] == 1:
            counts = counts.reshape(())
        if counts.ndim == 0:
            r = int(counts)
            column = prim.expand_dims(b, x, axis + 1)
            spread = prim.broadcast_to(b, column, column.shape[:axis + 1] + (r,)
                                       + column.shape[axis + 2:])
            shape = x.shape[:axis] + (x.shape[axis] * r,) + x.shape[axis + 1:]
            return prim.reshape(b, spread, shape)
        positions = np.repeat(np.arange(x.shape[axis]), counts)
        index = prim_index.full_slices(x.shape)
        index[axis] = ("a", 0)
        return prim_index.gather(b, x, tuple(index), [prim.constant(b, positions)])
    return on_nodes(build, a)


@implements(np.flip)
def flip(m: Any, axis: Any = None) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        return prim_index.flip(b, x, prim.normalize_axes("flip", axis, x.ndim, _where(b),
                                                             x.shape))
    return on_nodes(build, m)


@implements(np.fliplr)
def fliplr(m: Any) -> Tracer:
    return flip(m, 1)


@implements(np.flipud)
def flipud(m: Any) -> Tracer:
    return flip(m, 0)


@implements(np.roll)
def roll(a: Any, shift: Any, axis: Any = None) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        if axis is None:
            flat = prim.reshape(b, x, (-1,))
            return prim.reshape(b, _rolled(b, flat, operator.index(shift), 0), x.shape)
        shifts = np.broadcast_to(shift, np.shape(axis))
        axes = np.broadcast_to(axis, np.shape(shift))
        for s, ax in zip(np.atleast_1d(shifts), np.atleast_1d(axes)):
            x = _rolled(b, x, int(s), _axis("roll", int(ax), x.ndim, b, x.shape))
        return x
    return on_nodes(build, a)


def _rolled(b: Builder, x: Node, shift: int, axis: int) -> Node:
    n = x.shape[axis]
    shift = shift % n if n else 0
    if shift == 0:
        return x
    tail = prim_index.slice_along(b, x, axis, n - shift, n)
    head = prim_index.slice_along(b, x, axis, 0, n - shift)
    return prim_index.concatenate(b, [tail, head], axis)


@implements(np.diff)
def diff(a: Any, n: int = 1, axis: int = -1, **kwargs: Any) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        if kwargs:
            raise UnsupportedFunctionError("numpy.diff with prepend/append", _where(b))
        ax = _axis("diff", axis, x.ndim, b, x.shape)
        for _ in range(n):
            size = x.shape[ax]
            later = prim_index.slice_along(b, x, ax, 1, max(size, 1))
            earlier = prim_index.slice_along(b, x, ax, 0, max(size - 1, 0))
            x = prim.elementwise(b, "subtract", later, earlier)
        return x
    return on_nodes(build, a)


@implements(np.pad)
def pad(array: Any, pad_width: Any, mode: str = "constant", **kwargs: Any) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        if mode != "constant" or set(kwargs) - {"constant_values"}:
            raise UnsupportedFunctionError(f"numpy.pad with mode={mode!r} (only 'constant' "
                                           "is supported)", _where(b))
        value = kwargs.get("constant_values", 0)
        if np.ndim(value) != 0:
            raise UnsupportedFunctionError("numpy.pad with per-axis constant_values", _where(b))
        widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (x.ndim, 2))
        return prim_index.pad(b, x, [tuple(int(w) for w in row) for row in widths],
                              np.asarray(value).item())
    return on_nodes(build, array)


# ---------------------------------------------------------------------------------------------
# Constants shaped like a tracer
# ---------------------------------------------------------------------------------------------
def _like(a: Tracer, value: Any, dtype: Any, shape: Any) -> Tracer:
    builder = a.builder  # not on_nodes: reads only a's shape and dtype (a stale view is fine)
    with bound_site(builder):
        kind = np.dtype(dtype).name if dtype is not None else a.node.dtype
        target = a.node.shape if shape is None else (
            (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape))
        if isinstance(value, Tracer):
            raise TracingError("full_like: the fill value must be a constant; use "
                               "np.broadcast_to(value, x.shape) for a traced one")
        python = np.asarray(value, dtype=kind).item()
        return boxed(builder, prim_reduce.fill(builder, python, target, kind))


@implements(np.zeros_like, np.empty_like)
def zeros_like(a: Any, dtype: Any = None, order: str = "K", subok: bool = True,
               shape: Any = None, **kwargs: Any) -> Tracer:
    return _like(a, 0, dtype, shape)


@implements(np.ones_like)
def ones_like(a: Any, dtype: Any = None, order: str = "K", subok: bool = True,
              shape: Any = None, **kwargs: Any) -> Tracer:
    return _like(a, 1, dtype, shape)


@implements(np.full_like)
def full_like(a: Any, fill_value: Any, dtype: Any = None, order: str = "K", subok: bool = True,
              shape: Any = None, **kwargs: Any) -> Tracer:
    return _like(a, fill_value, dtype, shape)


# ---------------------------------------------------------------------------------------------
# Methods
# ---------------------------------------------------------------------------------------------
METHODS["swapaxes"] = lambda self, axis1, axis2: swapaxes(self, axis1, axis2)
METHODS["squeeze"] = lambda self, axis=None: squeeze(self, axis)
METHODS["repeat"] = lambda self, repeats, axis=None: repeat(self, repeats, axis)
PROPERTIES["mT"] = lambda self: swapaxes(self, -1, -2)
