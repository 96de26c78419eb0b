"""Vector-Jacobian products of the structural ops, one short rule per op, in the IR itself.

A rule takes (builder, node, g, k): the node, the adjoint `g` of its output, and the index of
the input to differentiate; it returns that input's adjoint contribution as a node. Elementwise
ops have no entry here: their derivatives come from SymPy (a test keeps it that way).
"""
from __future__ import annotations

from typing import Callable

from . import primitives as prim
from .graph import Builder, Node

VjpRule = Callable[[Builder, Node, Node, int], Node]


def _inverse(perm: tuple[int, ...]) -> tuple[int, ...]:
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return tuple(inverse)


# ---------------------------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------------------------
def _sum_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    x = node.inputs[0]
    axes = node.param("axes")
    kept = g if node.param("keepdims") else prim.expand_to_rank(b, g, x.shape, axes)
    return prim.broadcast_to(b, kept, x.shape)


# ---------------------------------------------------------------------------------------------
# Movement
# ---------------------------------------------------------------------------------------------
def _reshape_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    return prim.reshape(b, g, node.inputs[0].shape)


def _transpose_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    return prim.transpose(b, g, _inverse(node.param("perm")))


def _broadcast_to_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    return prim.unbroadcast(b, g, node.inputs[0].shape)


def _astype_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    return prim.astype(b, g, node.inputs[0].dtype)


# ---------------------------------------------------------------------------------------------
# Indexing
# ---------------------------------------------------------------------------------------------
def _getitem_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    return prim.unslice(b, g, node.param("index"), node.inputs[0].shape)


def _unslice_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    return prim.getitem_normalized(b, g, node.param("index"))


# ---------------------------------------------------------------------------------------------
# Linear algebra
# ---------------------------------------------------------------------------------------------
def _matmul_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    x, y = node.inputs
    if x.ndim == 1 and y.ndim == 1:  # inner product: g is 0-d
        return prim.elementwise(b, "multiply", g, y if k == 0 else x)
    if k == 0:
        if y.ndim == 1:  # outer product g[..., None] * y
            adjoint = prim.elementwise(b, "multiply", prim.expand_dims(b, g, g.ndim), y)
        elif x.ndim == 1 and y.ndim == 2:  # (g @ y.T) for a vector g is y @ g
            adjoint = prim.matmul(b, y, g)
        elif x.ndim == 1:  # batched: y @ g[..., None], then drop the unit axis
            column = prim.matmul(b, y, prim.expand_dims(b, g, g.ndim))
            adjoint = prim.reshape(b, column, column.shape[:-1])
        else:
            adjoint = prim.matmul(b, g, prim.swap_last(b, y))
        return prim.unbroadcast(b, adjoint, x.shape)
    if x.ndim == 1:  # outer product x[:, None] * g[..., None, :]
        adjoint = prim.elementwise(b, "multiply", prim.expand_dims(b, x, 1),
                                   prim.expand_dims(b, g, g.ndim - 1))
    elif y.ndim == 1 and x.ndim == 2:  # x.T @ g is g @ x
        adjoint = prim.matmul(b, g, x)
    elif y.ndim == 1:  # batched: g[..., None, :] @ x, then drop the unit axis
        row = prim.matmul(b, prim.expand_dims(b, g, g.ndim - 1), x)
        adjoint = prim.reshape(b, row, row.shape[:-2] + row.shape[-1:])
    else:
        adjoint = prim.matmul(b, prim.swap_last(b, x), g)
    return prim.unbroadcast(b, adjoint, y.shape)


VJP_RULES: dict[str, VjpRule] = {
    "sum": _sum_vjp,
    "reshape": _reshape_vjp,
    "transpose": _transpose_vjp,
    "broadcast_to": _broadcast_to_vjp,
    "astype": _astype_vjp,
    "getitem": _getitem_vjp,
    "unslice": _unslice_vjp,
    "matmul": _matmul_vjp,
}
