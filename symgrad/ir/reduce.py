"""Primitive constructors for reductions and scans (beyond `sum`, which lives in primitives.py).

Each checks its operand and infers the result shape and dtype as numpy would: `max`/`min` keep
the dtype, `prod` and the scans promote small integers and bools to int64, `norm` gives a float.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from .graph import Builder, Node, Shape
from .primitives import broadcast_to, constant, reduced_shape

REDUCTIONS = ("max", "min", "prod", "norm")
SCANS = ("cumsum", "cumprod")

_NUMPY_REDUCTION = {"max": np.maximum.reduce, "min": np.minimum.reduce,
                    "prod": np.multiply.reduce, "cumsum": np.cumsum, "cumprod": np.cumprod}


def _where(b: Builder) -> str | None:
    return str(b.site) if b.site else None


def reduction_dtype(op: str, dtype: str) -> str:
    if op == "norm":
        return np.result_type(dtype, np.float16).name if dtype != "bool" else "float64"
    if op in ("max", "min"):
        return dtype
    return _NUMPY_REDUCTION[op](np.ones(1, dtype)).dtype.name


def reduce(b: Builder, op: str, x: Node, axes: tuple[int, ...], keepdims: bool = False) -> Node:
    """`op` over `axes` (normalised, sorted): max, min, prod or norm (the 2-norm)."""
    assert op in REDUCTIONS, op
    if not axes and op == "norm":  # the 2-norm of each single element: |x|
        from .primitives import astype, elementwise

        return elementwise(b, "abs", astype(b, x, reduction_dtype(op, x.dtype)))
    if not axes:
        return x
    if op in ("max", "min") and any(x.shape[a] == 0 for a in axes):
        raise ShapeError(op, [x.shape], "zero-size array to a reduction with no identity",
                         _where(b))
    if op == "norm" and not x.dtype.startswith("float"):
        from .primitives import astype

        x = astype(b, x, reduction_dtype(op, x.dtype))
    return b.node(op, (x,), {"axes": tuple(axes), "keepdims": bool(keepdims)},
                  reduced_shape(x.shape, axes, keepdims), reduction_dtype(op, x.dtype))


def scan(b: Builder, op: str, x: Node, axis: int) -> Node:
    """Running sum or product along `axis` (normalised); same shape."""
    assert op in SCANS, op
    return b.node(op, (x,), {"axis": axis}, x.shape, reduction_dtype(op, x.dtype))


def reverse_cumsum(b: Builder, v: Node, axis: int) -> Node:
    """Sums from each position to the end along `axis`."""
    from .index import flip

    return flip(b, scan(b, "cumsum", flip(b, v, (axis,)), axis), (axis,))


def fill(b: Builder, value: float | int | bool, shape: Shape, dtype: str) -> Node:
    """An array of `shape` holding `value` everywhere (printed as np.full / np.zeros)."""
    return broadcast_to(b, constant(b, value, dtype), tuple(shape))


def arg_reduce(b: Builder, op: str, x: Node, axis: int | None, keepdims: bool = False) -> Node:
    """argmax/argmin: int64 positions (of the flattened array when `axis` is None)."""
    if x.size == 0:
        raise ShapeError(op, [x.shape], "attempt to get the position in an empty sequence",
                         _where(b))
    if axis is None:
        shape = (1,) * x.ndim if keepdims else ()
    else:
        shape = reduced_shape(x.shape, (axis,), keepdims)
    return b.node(op, (x,), {"axis": axis, "keepdims": keepdims}, shape, "int64")


NORMALISERS = ("softmax", "log_softmax")


def normalise(b: Builder, op: str, x: Node, axes: tuple[int, ...]) -> Node:
    """softmax or log_softmax of the float array `x` over `axes` (normalised, sorted): the same
    shape, every slice along `axes` scaled to sum to 1 (or its log)."""
    assert op in NORMALISERS and x.is_float, (op, x.dtype)
    return b.node(op, (x,), {"axes": tuple(axes)}, x.shape, x.dtype)
