"""Contractions on tracers: np.einsum, dot, vdot, inner, outer, tensordot, trace, diagonal.

Each lowers to the `einsum` primitive (or `matmul`, which keeps its own op); the printer writes
the einsum back in its plainest numpy form (`a @ b.T`, `np.outer(a, b)`, `np.trace(a)`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..ir import index as prim_index, linalg as prim_linalg
from ..ir import primitives as prim
from ..errors import ShapeError, UnsupportedFunctionError
from ..ir.graph import Builder, Node
from .numpy_api import (_builder_of, _where, boxed, elementwise, implements, matmul, node_of,
                        on_nodes)
from .tracer import METHODS, Tracer, bound_site

FAMILY = "Contractions"  # its heading in docs/ops.md

LETTERS = prim_linalg.LETTERS
_contract = prim_linalg.einsum  # (builder, input subscripts, output subscripts, operands)


@implements(np.einsum)
def einsum(subscripts: Any, *operands: Any, out: Any = None, optimize: Any = False,
           **kwargs: Any) -> Tracer:
    def build(b: Builder, *nodes: Node) -> Node:
        if not isinstance(subscripts, str):
            raise UnsupportedFunctionError("numpy.einsum in the interleaved (operand, sublist) "
                                           "form; pass a subscripts string", _where(b))
        if out is not None or kwargs:
            raise UnsupportedFunctionError(f"numpy.einsum with {sorted(kwargs) or ['out']}",
                                           _where(b))
        inputs, output = prim_linalg.explicit_subscripts(subscripts, [n.shape for n in nodes],
                                                         _where(b))
        return _contract(b, inputs, output, nodes)
    return on_nodes(build, *operands)


@implements(np.dot)
def dot(a: Any, b: Any, out: Any = None) -> Tracer:
    def build(bd: Builder, x: Node, y: Node) -> Any:
        if x.ndim == 0 or y.ndim == 0:
            return elementwise("multiply", a, b)
        if y.ndim <= 2:
            return matmul(a, b)
        # dot(x, y)[i..., j..., k] = sum(x[i..., :] * y[j..., :, k])
        left = LETTERS[:x.ndim]
        right = LETTERS[x.ndim:x.ndim + y.ndim - 2] + left[-1] + LETTERS[x.ndim + y.ndim - 2]
        return _contract(bd, [left, right], left[:-1] + right[:-2] + right[-1], [x, y])
    return on_nodes(build, a, b)


@implements(np.vdot)
def vdot(a: Any, b: Any) -> Tracer:
    return _flat_pair(a, b, lambda bd, x, y: _contract(bd, ["i", "i"], "", [x, y]))


@implements(np.inner)
def inner(a: Any, b: Any) -> Tracer:
    def build(bd: Builder, x: Node, y: Node) -> Any:
        if x.ndim == 0 or y.ndim == 0:
            return elementwise("multiply", a, b)
        left = LETTERS[:x.ndim - 1] + "z"
        right = LETTERS[x.ndim - 1:x.ndim + y.ndim - 2] + "z"
        return _contract(bd, [left, right], left[:-1] + right[:-1], [x, y])
    return on_nodes(build, a, b)


@implements(np.outer)
def outer(a: Any, b: Any, out: Any = None) -> Tracer:
    return _flat_pair(a, b, lambda bd, x, y: _contract(bd, ["i", "j"], "ij", [x, y]))


def _flat_pair(a: Any, b: Any, build: Any) -> Tracer:
    """`build(builder, x, y)` on a and b flattened. Not `on_nodes`: each operand is flattened
    as soon as it is converted, the order of creation that the generated code follows."""
    builder = _builder_of((a, b))
    with bound_site(builder):
        x = prim.reshape(builder, node_of(builder, a), (-1,))
        y = prim.reshape(builder, node_of(builder, b), (-1,))
        return boxed(builder, build(builder, x, y))


@implements(np.tensordot)
def tensordot(a: Any, b: Any, axes: Any = 2) -> Tracer:
    def build(bd: Builder, x: Node, y: Node) -> Node:
        where = _where(bd)
        if isinstance(axes, (int, np.integer)):
            n = int(axes)
            if n < 0 or n > min(x.ndim, y.ndim):
                raise ShapeError("tensordot", [x.shape, y.shape], f"axes={n} is out of range",
                                 where)
            axes_x, axes_y = list(range(x.ndim - n, x.ndim)), list(range(n))
        else:
            axes_x, axes_y = axes
            axes_x = [axes_x] if isinstance(axes_x, (int, np.integer)) else list(axes_x)
            axes_y = [axes_y] if isinstance(axes_y, (int, np.integer)) else list(axes_y)
        if len(axes_x) != len(axes_y):
            raise ShapeError("tensordot", [x.shape, y.shape], "the axes lists differ in length",
                             where)
        axes_x = [int(i) % x.ndim for i in axes_x]
        axes_y = [int(i) % y.ndim for i in axes_y]
        for i, j in zip(axes_x, axes_y):
            if x.shape[i] != y.shape[j]:
                raise ShapeError("tensordot", [x.shape, y.shape], f"shape mismatch for sum "
                                 f"(axis {i} of size {x.shape[i]}, axis {j} of size "
                                 f"{y.shape[j]})", where)
        left = LETTERS[:x.ndim]
        right = list(LETTERS[x.ndim:x.ndim + y.ndim])
        for i, j in zip(axes_x, axes_y):
            right[j] = left[i]
        right = "".join(right)
        output = "".join(c for c in left if c not in right) + "".join(
            c for c in right if c not in left)
        return _contract(bd, [left, right], output, [x, y])
    return on_nodes(build, a, b)


def _diagonal(builder: Builder, x: Node, offset: int, axis1: int, axis2: int) -> Node:
    """numpy's diagonal: the axes removed, the diagonal appended as the last axis."""
    where = _where(builder)
    if x.ndim < 2:
        raise ShapeError("diagonal", [x.shape], "the array needs at least 2 dims", where)
    axis1, axis2 = axis1 % x.ndim, axis2 % x.ndim
    if axis1 == axis2:
        raise ShapeError("diagonal", [x.shape], "axis1 and axis2 cannot be the same", where)
    first, second = (axis1, offset) if offset >= 0 else (axis2, -offset)
    start1, start2 = (0, offset) if offset >= 0 else (-offset, 0)
    length = max(0, min(x.shape[axis1] - start1, x.shape[axis2] - start2))
    x = prim_index.slice_along(builder, x, axis1, start1, start1 + length)
    x = prim_index.slice_along(builder, x, axis2, start2, start2 + length)
    letters = list(LETTERS[:x.ndim])
    letters[axis2] = letters[axis1]
    text = "".join(letters)
    output = "".join(c for i, c in enumerate(letters) if i not in (axis1, axis2)) + letters[axis1]
    return prim_linalg.einsum(builder, [text], output, [x])


@implements(np.diagonal)
def diagonal(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tracer:
    return on_nodes(lambda b, x: _diagonal(b, x, offset, axis1, axis2), a)


@implements(np.trace)
def trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype: Any = None,
          out: Any = None) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        if dtype is not None:
            x = prim.astype(b, x, np.dtype(dtype).name)
        if x.ndim == 2 and offset == 0 and {axis1 % 2, axis2 % 2} == {0, 1} \
                and x.shape[0] == x.shape[1]:
            return _contract(b, ["ii"], "", [x])
        d = _diagonal(b, x, offset, axis1, axis2)
        return prim.reduce_sum(b, d, (d.ndim - 1,))
    return on_nodes(build, a)


METHODS["dot"] = lambda self, other: dot(self, other)
METHODS["trace"] = lambda self, offset=0, axis1=0, axis2=1, dtype=None, out=None: trace(
    self, offset, axis1, axis2, dtype, out)
METHODS["diagonal"] = lambda self, offset=0, axis1=0, axis2=1: diagonal(self, offset, axis1, axis2)
