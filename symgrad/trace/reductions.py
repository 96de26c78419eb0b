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
from .numpy_api import _reduction_args, _where, boxed, implements, mean, on_nodes
from .tracer import METHODS, Tracer

FAMILY = "Reductions and scans"  # its heading in docs/ops.md


def _axes(op: str, axis: Any, x: Node, builder: Builder) -> tuple[int, ...]:
    return prim.normalize_axes(op, axis, x.ndim, _where(builder), x.shape)


def _count(x: Node, axes: tuple[int, ...]) -> int:
    return math.prod(x.shape[a] for a in axes)


def _float_input(builder: Builder, x: Node, dtype: Any) -> Node:
    """The operand as a float node (numpy's var/std/norm compute integers in float64)."""
    if dtype is not None:
        return prim.astype(builder, x, np.dtype(dtype).name)
    return x if x.is_float else prim.astype(builder, x, "float64")


def _reduce(op: str, a: Any, axis: Any, keepdims: Any, kwargs: dict, dtype: Any = None
            ) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        if dtype is not None:
            x = prim.astype(b, x, np.dtype(dtype).name)
        _reduction_args(kwargs, op, b)
        return prim_reduce.reduce(b, op, x, _axes(op, axis, x, b), keepdims is True)
    return on_nodes(build, a)


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
    return _reduce("prod", a, axis, keepdims, {"out": out, **kwargs}, dtype)


def _deviation(builder: Builder, x: Node, axis: Any, dtype: Any, op: str,
               kwargs: dict) -> tuple[Node, tuple[int, ...]]:
    """x - mean(x) over the reduced axes, and those axes."""
    for key in ("mean", "correction"):
        if kwargs.pop(key, None) is not None:
            raise TracingError(f"numpy.{op}: argument {key!r} is not supported while tracing "
                               f"(at {_where(builder)}); use ddof")
    _reduction_args(kwargs, op, builder)
    x = _float_input(builder, x, dtype)
    axes = _axes(op, axis, x, builder)
    centre = mean(boxed(builder, x), axes, None, None, True).node
    return prim.elementwise(builder, "subtract", x, centre), axes


@implements(np.var)
def var(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: int = 0,
        keepdims: Any = False, **kwargs: Any) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        d, axes = _deviation(b, x, axis, dtype, "var", {"out": out, **kwargs})
        squares = prim.reduce_sum(b, prim.elementwise(b, "multiply", d, d), axes,
                                  keepdims is True)
        return prim.elementwise(b, "divide", squares, max(_count(d, axes) - ddof, 0))
    return on_nodes(build, a)


@implements(np.std)
def std(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: int = 0,
        keepdims: Any = False, **kwargs: Any) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        d, axes = _deviation(b, x, axis, dtype, "std", {"out": out, **kwargs})
        spread = prim_reduce.reduce(b, "norm", d, axes, keepdims is True)
        return prim.elementwise(b, "divide", spread, math.sqrt(max(_count(d, axes) - ddof, 0)))
    return on_nodes(build, a)


def _scan(op: str, a: Any, axis: Any, dtype: Any, out: Any) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        _reduction_args({"out": out}, op, b)
        if dtype is not None:
            x = prim.astype(b, x, np.dtype(dtype).name)
        ax = axis
        if ax is None:
            x, ax = prim.reshape(b, x, (-1,)), 0
        (ax,) = _axes(op, ax, x, b)
        return prim_reduce.scan(b, op, x, ax)
    return on_nodes(build, a)


@implements(np.cumsum)
def cumsum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Tracer:
    return _scan("cumsum", a, axis, dtype, out)


@implements(np.cumprod)
def cumprod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Tracer:
    return _scan("cumprod", a, axis, dtype, out)


def _arg_reduction(op: str, a: Any, axis: Any, out: Any, keepdims: Any) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        _reduction_args({"out": out}, op, b)
        ax = axis if axis is None else _axes(op, axis, x, b)[0]
        return prim_reduce.arg_reduce(b, op, x, ax, keepdims is True)
    return on_nodes(build, a)


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
    def build(b: Builder, node: Node) -> Node:
        a = _float_input(b, node, None)
        keep = keepdims is True
        if axis is None and ord is None:
            return prim_reduce.reduce(b, "norm", a, tuple(range(a.ndim)), keep)
        over = tuple(range(a.ndim)) if axis is None else axis
        given = (over,) if isinstance(over, (int, np.integer)) else tuple(over)
        axes = _axes("norm", given, a, b)
        if len(given) == 1:
            return _vector_norm(b, a, ord, axes, keep)
        if len(given) == 2:
            ordered = (axes[0], axes[1]) if given[0] % a.ndim == axes[0] else (axes[1], axes[0])
            return _matrix_norm(b, a, ord, ordered, keep)
        raise UnsupportedFunctionError("numpy.linalg.norm over more than 2 axes", _where(b))
    return on_nodes(build, x)


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
