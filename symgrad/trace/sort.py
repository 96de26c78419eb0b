"""Sorting and order statistics on tracers: np.sort, argsort, partition, argpartition,
searchsorted, median, percentile, quantile (numpy's default 'linear' method), the running
extrema np.maximum/minimum.accumulate, and the windowed functions np.convolve, np.correlate,
np.lib.stride_tricks.sliding_window_view and np.interp.

Order statistics are read from the sorted values, so their gradients go to the selected
elements (ties shared evenly, vjp_rules_sort.py): the median of an even count averages the two
middle values, each gets half; a quantile between two values interpolates, each gets its
weight. Windows are gathers with constant index arrays, so their gradients add back.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..ir import index as prim_index, reduce as prim_reduce
from ..ir import sort as ps
from ..ir import primitives as prim
from ..errors import ShapeError, TracingError, UnsupportedFunctionError
from ..ir.graph import Builder, Node
from .numpy_api import UFUNC_METHODS, _where, implements, node_of, on_nodes
from .tracer import METHODS, Tracer

FAMILY = "Sorting, order statistics, running extrema, windows"  # its heading in docs/ops.md


def _one_axis(b: Builder, op: str, x: Node, axis: Any) -> tuple[Node, int]:
    """(x, axis) with axis=None meaning the flattened array."""
    if axis is None:
        return ps.flat(b, x), 0
    if x.ndim == 0:
        raise ShapeError(op, [x.shape], "a 0-d array has no axis to sort", _where(b))
    return x, prim.normalize_axes(op, axis, x.ndim, _where(b), x.shape)[0]


# ---------------------------------------------------------------------------------------------
# Sorting
# ---------------------------------------------------------------------------------------------
@implements(np.sort)
def sort(a: Any, axis: Any = -1, kind: Any = None, order: Any = None, *,
         stable: Any = None) -> Tracer:
    return on_nodes(lambda b, x: ps.sort(b, *_one_axis(b, "sort", x, axis)), a)


@implements(np.argsort)
def argsort(a: Any, axis: Any = -1, kind: Any = None, order: Any = None, *,
            stable: Any = None) -> Tracer:
    kind = "stable" if stable else kind
    return on_nodes(lambda b, x: ps.argsort(b, *_one_axis(b, "argsort", x, axis), kind), a)


def _partitioned(make: Any, op: str, a: Any, kth: Any, axis: Any) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        x, ax = _one_axis(b, op, x, axis)
        return make(b, x, kth, ax)
    return on_nodes(build, a)


@implements(np.partition)
def partition(a: Any, kth: Any, axis: Any = -1, kind: str = "introselect",
              order: Any = None) -> Tracer:
    return _partitioned(ps.partition, "partition", a, kth, axis)


@implements(np.argpartition)
def argpartition(a: Any, kth: Any, axis: Any = -1, kind: str = "introselect",
                 order: Any = None) -> Tracer:
    return _partitioned(ps.argpartition, "argpartition", a, kth, axis)


@implements(np.searchsorted)
def searchsorted(a: Any, v: Any, side: str = "left", sorter: Any = None) -> Tracer:
    if sorter is not None:
        raise UnsupportedFunctionError("numpy.searchsorted with sorter=", None)
    return on_nodes(lambda b, x, y: ps.searchsorted(b, x, y, side), a, v)


# ---------------------------------------------------------------------------------------------
# Median and quantiles
# ---------------------------------------------------------------------------------------------
def _sorted_rows(b: Builder, op: str, x: Node, axis: Any) -> tuple[Node, tuple[int, ...]]:
    """The values sorted along one last axis (the reduced axes moved there and merged), and
    the reduced axes."""
    if not x.is_float:
        x = prim.astype(b, x, "float64")
    axes = prim.normalize_axes(op, axis, x.ndim, _where(b), x.shape)
    if not axes or any(x.shape[i] == 0 for i in axes):
        raise ShapeError(op, [x.shape], "no elements to take an order statistic of", _where(b))
    kept = [i for i in range(x.ndim) if i not in axes]
    moved = prim.transpose(b, x, kept + list(axes))
    rows = prim.reshape(b, moved, [x.shape[i] for i in kept] + [math.prod(x.shape[i]
                                                                          for i in axes)])
    return ps.sort(b, rows, rows.ndim - 1), axes


def _nth(b: Builder, s: Node, k: int) -> Node:
    return prim.getitem(b, s, (Ellipsis, k))


def _nan_if_any_nan(b: Builder, s: Node, value: Node) -> Node:
    """numpy's order statistics are NaN where a row holds a NaN (sorted last)."""
    last = _nth(b, s, s.shape[-1] - 1)
    return prim.elementwise(b, "where", prim.elementwise(b, "isnan", last), np.nan, value)


def _reduced(b: Builder, value: Node, x: Node, axes: tuple[int, ...], keepdims: bool) -> Node:
    lead = value.shape[:value.ndim - (x.ndim - len(axes))]
    return prim.reshape(b, value, lead + prim.reduced_shape(x.shape, axes, bool(keepdims)))


@implements(np.median)
def median(a: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
           keepdims: bool = False) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        s, axes = _sorted_rows(b, "median", x, axis)
        n = s.shape[-1]
        middle = _nth(b, s, n // 2)
        if n % 2 == 0:
            middle = prim.elementwise(b, "divide", prim.elementwise(
                b, "add", _nth(b, s, n // 2 - 1), middle), 2)
        return _reduced(b, _nan_if_any_nan(b, s, middle), x, axes, keepdims)
    return on_nodes(build, a)


def _quantile(op: str, a: Any, q: Any, axis: Any, method: str, keepdims: bool,
              scale: float) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        if method != "linear":
            raise UnsupportedFunctionError(f"numpy.{op} with method={method!r} (supported: "
                                           "'linear', numpy's default)", _where(b))
        if isinstance(q, Tracer):
            raise TracingError(f"numpy.{op}: q must be a constant, not a traced value (at "
                               f"{_where(b)}); the positions it selects fix the graph")
        qs = np.asarray(q, dtype=np.float64) / scale
        if ((qs < 0) | (qs > 1)).any() or qs.ndim > 1:
            raise ShapeError(op, [x.shape], f"q must be a scalar or 1-D, within [0, "
                             f"{100 if scale == 100 else 1}]", _where(b))
        if not isinstance(q, (int, float)) and x.is_float:  # an array q is a strong type
            x = prim.astype(b, x, np.result_type(x.dtype, np.asarray(q).dtype).name)
        s, axes = _sorted_rows(b, op, x, axis)
        n = s.shape[-1]
        values = []
        for fraction in qs.reshape(-1):
            position = (n - 1) * float(fraction)
            below = min(int(math.floor(position)), n - 1)
            gamma = position - below
            lo, hi = _nth(b, s, below), _nth(b, s, min(below + 1, n - 1))
            step = prim.elementwise(b, "subtract", hi, lo)
            if gamma >= 0.5:  # numpy's lerp: from the upper end past the middle
                value = prim.elementwise(b, "subtract", hi,
                                         prim.elementwise(b, "multiply", step, 1 - gamma))
            else:
                value = prim.elementwise(b, "add", lo, prim.elementwise(b, "multiply", step,
                                                                        gamma))
            values.append(_reduced(b, _nan_if_any_nan(b, s, value), x, axes, keepdims))
        if qs.ndim == 0:
            return values[0]
        return prim_index.concatenate(b, [prim.expand_dims(b, v, 0) for v in values], 0)
    return on_nodes(build, a)


@implements(np.quantile)
def quantile(a: Any, q: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
             method: str = "linear", keepdims: bool = False, **kwargs: Any) -> Tracer:
    return _quantile("quantile", a, q, axis, method, keepdims, 1.0)


@implements(np.percentile)
def percentile(a: Any, q: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
               method: str = "linear", keepdims: bool = False, **kwargs: Any) -> Tracer:
    return _quantile("percentile", a, q, axis, method, keepdims, 100.0)


# ---------------------------------------------------------------------------------------------
# Running extrema (ufunc.accumulate)
# ---------------------------------------------------------------------------------------------
ACCUMULATE = {np.maximum: "cummax", np.minimum: "cummin", np.add: "cumsum",
              np.multiply: "cumprod"}


def accumulate(ufunc: np.ufunc, a: Any, axis: int = 0, dtype: Any = None,
               out: Any = None) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        if out is not None:
            raise TracingError(f"numpy.{ufunc.__name__}.accumulate: out= is not supported "
                               f"while tracing (at {_where(b)})")
        if dtype is not None:
            x = prim.astype(b, x, np.dtype(dtype).name)
        (ax,) = prim.normalize_axes("accumulate", axis, x.ndim, _where(b), x.shape)
        op = ACCUMULATE[ufunc]
        if op in prim_reduce.SCANS:
            return prim_reduce.scan(b, op, x, ax)
        return ps.running_extremum(b, op, x, ax)
    return on_nodes(build, a)


# ---------------------------------------------------------------------------------------------
# Windows: correlate, convolve, sliding_window_view; interp
# ---------------------------------------------------------------------------------------------
def _windows(b: Builder, x: Node, axis: int, width: int) -> Node:
    """x[..., i + j, ...] for i < n - width + 1, j < width: the windows axis where `axis` was,
    the width axis after it."""
    count = x.shape[axis] - width + 1
    if count < 1 or width < 0:
        raise ShapeError("sliding_window_view", [x.shape], f"a window of {width} does not fit "
                         f"in an axis of {x.shape[axis]}", _where(b))
    index = np.arange(count)[:, None] + np.arange(width)[None, :]
    entries = [("s", 0, d, 1) for d in x.shape]
    entries[axis] = ("a", 0)
    return prim_index.gather(b, x, tuple(entries), [prim.constant(b, index)])


def _correlate_full(b: Builder, a: Node, v: Node) -> Node:
    """c[k] = sum_j a[j + k - (m - 1)] v[j], k < n + m - 1 (zeros outside a)."""
    if a.ndim != 1 or v.ndim != 1 or not a.size or not v.size:
        raise ShapeError("correlate", [a.shape, v.shape], "both operands must be non-empty "
                         "1-D arrays", _where(b))
    m = v.shape[0]
    padded = prim_index.pad(b, a, ((m - 1, m - 1),), 0)
    return prim.matmul(b, _windows(b, padded, 0, m), v)


def _mode_slice(b: Builder, full: Node, n: int, m: int, mode: str) -> Node:
    short, long = min(n, m), max(n, m)
    if mode == "full":
        return full
    if mode == "same":
        start = (short - 1) // 2
        return prim_index.slice_along(b, full, 0, start, start + long)
    if mode == "valid":
        return prim_index.slice_along(b, full, 0, short - 1, long)
    raise TracingError(f"mode must be 'full', 'same' or 'valid', not {mode!r} (at {_where(b)})")


@implements(np.correlate)
def correlate(a: Any, v: Any, mode: str = "valid") -> Tracer:
    return on_nodes(lambda b, x, y: _mode_slice(b, _correlate_full(b, x, y), x.size, y.size,
                                                mode), a, v)


@implements(np.convolve)
def convolve(a: Any, v: Any, mode: str = "full") -> Tracer:
    def build(b: Builder, x: Node, y: Node) -> Node:
        full = _correlate_full(b, x, prim_index.flip(b, y, (0,)) if y.ndim == 1 else y)
        return _mode_slice(b, full, x.size, y.size, mode)
    return on_nodes(build, a, v)


@implements(np.lib.stride_tricks.sliding_window_view)
def sliding_window_view(x: Any, window_shape: Any, axis: Any = None, *, subok: bool = False,
                        writeable: bool = False) -> Tracer:
    def build(b: Builder, a: Node) -> Node:
        shape = (window_shape,) if isinstance(window_shape, (int, np.integer)) else tuple(
            window_shape)
        axes = tuple(range(a.ndim)) if axis is None else (
            (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis))
        if len(axes) != len(shape):
            raise ShapeError("sliding_window_view", [a.shape], f"window_shape {shape} and "
                             f"axis {axis} differ in length", _where(b))
        result = a
        for ax, width in zip(axes, shape):
            ax = prim.normalize_axes("sliding_window_view", ax, a.ndim, _where(b), a.shape)[0]
            windows = _windows(b, result, ax, int(width))  # (..., count, width, ...)
            perm = [i for i in range(windows.ndim) if i != ax + 1] + [ax + 1]
            result = prim.transpose(b, windows, perm)
        return result
    return on_nodes(build, x)


@implements(np.interp)
def interp(x: Any, xp: Any, fp: Any, left: Any = None, right: Any = None,
           period: Any = None) -> Tracer:
    def build(b: Builder, at: Node, knots: Node, values: Node) -> Node:
        if period is not None:
            raise UnsupportedFunctionError("numpy.interp with period=", _where(b))
        if knots.ndim != 1 or values.shape != knots.shape or knots.shape[0] < 1:
            raise ShapeError("interp", [knots.shape, values.shape], "xp and fp must be 1-D "
                             "sequences of the same length", _where(b))
        n = knots.shape[0]
        dtype = np.result_type(at.dtype, knots.dtype, values.dtype, np.float64).name
        at, knots, values = (prim.astype(b, v, dtype) for v in (at, knots, values))
        first, last = _nth(b, values, 0), _nth(b, values, n - 1)
        if n == 1:
            inside = prim.broadcast_to(b, first, at.shape)
        else:
            below = prim.elementwise(b, "subtract", ps.searchsorted(b, knots, at, "right"), 1)
            below = prim.elementwise(b, "clip", below, 0, n - 2)
            above = prim.elementwise(b, "add", below, 1)

            def take(v: Node, i: Node) -> Node:
                return prim_index.gather(b, v, (("a", 0),), [i])
            x0, x1 = take(knots, below), take(knots, above)
            f0, f1 = take(values, below), take(values, above)
            slope = prim.elementwise(b, "divide", prim.elementwise(b, "subtract", f1, f0),
                                     prim.elementwise(b, "subtract", x1, x0))
            inside = prim.elementwise(b, "add", f0, prim.elementwise(
                b, "multiply", slope, prim.elementwise(b, "subtract", at, x0)))
            # numpy returns fp[-1] exactly at x == xp[-1]
            inside = prim.elementwise(b, "where", prim.elementwise(
                b, "equal", at, _nth(b, knots, n - 1)), last, inside)
        low = first if left is None else node_of(b, left)
        high = last if right is None else node_of(b, right)
        result = prim.elementwise(b, "where", prim.elementwise(
            b, "less", at, _nth(b, knots, 0)), low, inside)
        return prim.elementwise(b, "where", prim.elementwise(
            b, "greater", at, _nth(b, knots, n - 1)), high, result)
    return on_nodes(build, x, xp, fp)


METHODS["argsort"] = lambda self, axis=-1, kind=None, order=None, *, stable=None: argsort(
    self, axis, kind, order, stable=stable)
METHODS["searchsorted"] = lambda self, v, side="left", sorter=None: searchsorted(self, v, side,
                                                                            sorter)


for _ufunc in ACCUMULATE:
    UFUNC_METHODS[(_ufunc, "accumulate")] = accumulate
