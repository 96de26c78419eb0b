"""Reductions and scans on tracers: np.max/min/amax/amin, prod, var, std, cumsum, cumprod,
argmax/argmin, np.linalg.norm, and their ndarray methods (`x.max(0)`, `x.var()`, ...).

np.sum and np.mean are in numpy_frontend.py. var and std are composed here from primitives;
std goes through the `norm` op, whose gradient is 0 where the spread is 0 (as PyTorch).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..ir import reduce as prim_reduce
from ..ir import primitives as prim
from ..errors import TracingError, UnsupportedFunctionError
from ..ir.graph import Builder, Node
from .numpy_api import _builder_of, _reduction_args, _where, boxed, implements, mean, node_of
from .tracer import METHODS, Tracer, bound_site

FAMILY = "Reductions and scans"  # its heading in docs/ops.md


def _axes(op: str, axis: Any, x: Node, builder: Builder) -> tuple[int, ...]:
    return prim.normalize_axes(op, axis, x.ndim, _where(builder), x.shape)


def _count(x: Node, axes: tuple[int, ...]) -> int:
    return math.prod(x.shape[a] for a in axes)


def _float_input(builder: Builder, a: Any, dtype: Any) -> Node:
    """The operand as a float node (numpy's var/std/norm compute integers in float64)."""
    x = node_of(builder, a)
    if dtype is not None:
        return prim.astype(builder, x, np.dtype(dtype).name)
    return x if x.is_float else prim.astype(builder, x, "float64")


def _reduce(op: str, a: Any, axis: Any, keepdims: Any, kwargs: dict) -> Tracer:
    builder = _builder_of((a,))
    _reduction_args(kwargs, op, builder)
    with bound_site(builder):
        x = node_of(builder, a)
        result = prim_reduce.reduce(builder, op, x, _axes(op, axis, x, builder), keepdims is True)
        return boxed(builder, result)


@implements(np.max, np.amax)
def reduce_max(a: Any, axis: Any = None, out: Any = None, keepdims: Any = False,
               **kwargs: Any) -> Tracer:
    return _reduce("max", a, axis, keepdims, {"out": out, **kwargs})


@implements(np.min, np.amin)
def reduce_min(a: Any, axis: Any = None, out: Any = None, keepdims: Any = False,
               **kwargs: Any) -> Tracer:
    return _reduce("min", a, axis, keepdims, {"out": out, **kwargs})


@implements(np.prod)
def reduce_prod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
                keepdims: Any = False, **kwargs: Any) -> Tracer:
    builder = _builder_of((a,))
    if dtype is not None:
        with bound_site(builder):
            a = boxed(builder, prim.astype(builder, node_of(builder, a), np.dtype(dtype).name))
    return _reduce("prod", a, axis, keepdims, {"out": out, **kwargs})


def _deviation(builder: Builder, a: Any, axis: Any, dtype: Any, op: str,
               kwargs: dict) -> tuple[Node, tuple[int, ...]]:
    """x - mean(x) over the reduced axes, and those axes."""
    for key in ("mean", "correction"):
        if kwargs.pop(key, None) is not None:
            raise TracingError(f"numpy.{op}: argument {key!r} is not supported while tracing "
                               f"(at {_where(builder)}); use ddof")
    _reduction_args(kwargs, op, builder)
    x = _float_input(builder, a, dtype)
    axes = _axes(op, axis, x, builder)
    centre = mean(boxed(builder, x), axes, None, None, True).node
    return prim.elementwise(builder, "subtract", x, centre), axes


@implements(np.var)
def var(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: int = 0,
        keepdims: Any = False, **kwargs: Any) -> Tracer:
    builder = _builder_of((a,))
    with bound_site(builder):
        d, axes = _deviation(builder, a, axis, dtype, "var", {"out": out, **kwargs})
        squares = prim.reduce_sum(builder, prim.elementwise(builder, "multiply", d, d), axes,
                                  keepdims is True)
        divisor = max(_count(d, axes) - ddof, 0)
        return boxed(builder, prim.elementwise(builder, "divide", squares, divisor))


@implements(np.std)
def std(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: int = 0,
        keepdims: Any = False, **kwargs: Any) -> Tracer:
    builder = _builder_of((a,))
    with bound_site(builder):
        d, axes = _deviation(builder, a, axis, dtype, "std", {"out": out, **kwargs})
        spread = prim_reduce.reduce(builder, "norm", d, axes, keepdims is True)
        divisor = math.sqrt(max(_count(d, axes) - ddof, 0))
        return boxed(builder, prim.elementwise(builder, "divide", spread, divisor))


def _scan(op: str, a: Any, axis: Any, dtype: Any, out: Any) -> Tracer:
    builder = _builder_of((a,))
    _reduction_args({"out": out}, op, builder)
    with bound_site(builder):
        x = node_of(builder, a)
        if dtype is not None:
            x = prim.astype(builder, x, np.dtype(dtype).name)
        if axis is None:
            x, axis = prim.reshape(builder, x, (-1,)), 0
        (axis,) = _axes(op, axis, x, builder)
        return boxed(builder, prim_reduce.scan(builder, op, x, axis))


@implements(np.cumsum)
def cumsum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Tracer:
    return _scan("cumsum", a, axis, dtype, out)


@implements(np.cumprod)
def cumprod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Tracer:
    return _scan("cumprod", a, axis, dtype, out)


def _arg_reduction(op: str, a: Any, axis: Any, out: Any, keepdims: Any) -> Tracer:
    builder = _builder_of((a,))
    _reduction_args({"out": out}, op, builder)
    with bound_site(builder):
        x = node_of(builder, a)
        if axis is not None:
            (axis,) = _axes(op, axis, x, builder)
        return boxed(builder, prim_reduce.arg_reduce(builder, op, x, axis, keepdims is True))


@implements(np.argmax)
def argmax(a: Any, axis: Any = None, out: Any = None, *, keepdims: Any = False) -> Tracer:
    return _arg_reduction("argmax", a, axis, out, keepdims)


@implements(np.argmin)
def argmin(a: Any, axis: Any = None, out: Any = None, *, keepdims: Any = False) -> Tracer:
    return _arg_reduction("argmin", a, axis, out, keepdims)


# ---------------------------------------------------------------------------------------------
# np.linalg.norm
# ---------------------------------------------------------------------------------------------
def _vector_norm(b: Builder, x: Node, ord: Any, axes: tuple[int, ...], keep: bool) -> Node:
    if ord is None or ord == 2:
        return prim_reduce.reduce(b, "norm", x, axes, keep)
    magnitude = prim.elementwise(b, "abs", x)
    if ord == 1:
        return prim.reduce_sum(b, magnitude, axes, keep)
    if ord in (np.inf, -np.inf):
        return prim_reduce.reduce(b, "max" if ord > 0 else "min", magnitude, axes, keep)
    if ord == 0:  # the count of nonzeros: piecewise constant, gradient 0
        nonzero = prim.astype(b, prim.elementwise(b, "not_equal", x, 0), x.dtype)
        return prim.reduce_sum(b, nonzero, axes, keep)
    if isinstance(ord, (int, float)) and not isinstance(ord, bool):
        powers = prim.elementwise(b, "power", magnitude, float(ord))
        return prim.elementwise(b, "power", prim.reduce_sum(b, powers, axes, keep),
                                1.0 / float(ord))
    raise UnsupportedFunctionError(f"numpy.linalg.norm with ord={ord!r} for vectors", _where(b))


def _matrix_norm(b: Builder, x: Node, ord: Any, axes: tuple[int, int], keep: bool) -> Node:
    """The matrix norm over (row axis, column axis)."""
    rows, cols = axes
    if ord is None or ord == "fro":
        return prim_reduce.reduce(b, "norm", x, tuple(sorted(axes)), keep)
    if ord in (1, -1, np.inf, -np.inf):
        summed_over, then_over = (rows, cols) if ord in (1, -1) else (cols, rows)
        sums = prim.reduce_sum(b, prim.elementwise(b, "abs", x), (summed_over,), True)
        extreme = prim_reduce.reduce(b, "max" if ord > 0 else "min", sums, (then_over,), True)
        return extreme if keep else prim.reshape(
            b, extreme, prim.reduced_shape(x.shape, tuple(sorted(axes)), False))
    if ord in ("nuc", 2, -2):  # of the singular values: their sum, largest, smallest
        from ..ir.matrix import svd

        last = tuple(i for i in range(x.ndim) if i not in axes) + (rows, cols)
        s = svd(b, prim.transpose(b, x, last))[1]
        if ord == "nuc":
            value = prim.reduce_sum(b, s, (s.ndim - 1,))
        else:
            value = prim_reduce.reduce(b, "max" if ord > 0 else "min", s, (s.ndim - 1,))
        return prim.reshape(b, value, prim.reduced_shape(x.shape, tuple(sorted(axes)), keep))
    raise UnsupportedFunctionError(
        f"numpy.linalg.norm with ord={ord!r} for matrices (supported: None, 'fro', 'nuc', 1, "
        "-1, 2, -2, inf, -inf)", _where(b))


@implements(np.linalg.norm)
def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Tracer:
    builder = _builder_of((x,))
    with bound_site(builder):
        a = _float_input(builder, x, None)
        keep = keepdims is True
        if axis is None and ord is None:
            return boxed(builder, prim_reduce.reduce(builder, "norm", a, tuple(range(a.ndim)),
                                                     keep))
        if axis is None:
            axis = tuple(range(a.ndim))
        given = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
        axes = _axes("norm", given, a, builder)
        if len(given) == 1:
            return boxed(builder, _vector_norm(builder, a, ord, axes, keep))
        if len(given) == 2:
            ordered = (axes[0], axes[1]) if given[0] % a.ndim == axes[0] else (axes[1], axes[0])
            return boxed(builder, _matrix_norm(builder, a, ord, ordered, keep))
        raise UnsupportedFunctionError("numpy.linalg.norm over more than 2 axes",
                                       _where(builder))


# ---------------------------------------------------------------------------------------------
# Methods
# ---------------------------------------------------------------------------------------------
METHODS["max"] = lambda self, axis=None, out=None, keepdims=False, **kw: reduce_max(
    self, axis, out, keepdims, **kw)
METHODS["min"] = lambda self, axis=None, out=None, keepdims=False, **kw: reduce_min(
    self, axis, out, keepdims, **kw)
METHODS["prod"] = lambda self, axis=None, dtype=None, out=None, keepdims=False, **kw: reduce_prod(
    self, axis, dtype, out, keepdims, **kw)
METHODS["var"] = lambda self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw: var(
    self, axis, dtype, out, ddof, keepdims, **kw)
METHODS["std"] = lambda self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw: std(
    self, axis, dtype, out, ddof, keepdims, **kw)
METHODS["cumsum"] = lambda self, axis=None, dtype=None, out=None: cumsum(self, axis, dtype, out)
METHODS["cumprod"] = lambda self, axis=None, dtype=None, out=None: cumprod(self, axis, dtype, out)
METHODS["argmax"] = lambda self, axis=None, out=None, *, keepdims=False: argmax(
    self, axis, out, keepdims=keepdims)
METHODS["argmin"] = lambda self, axis=None, out=None, *, keepdims=False: argmin(
    self, axis, out, keepdims=keepdims)
