"""Vector-Jacobian products of the structural ops, one short rule per op, in the IR itself.

A rule takes (builder, node, g, k): the node, the adjoint `g` of its output, and the index of
the input to differentiate; it returns that input's adjoint contribution as a node. Elementwise
ops have no entry here: their derivatives come from SymPy (a test keeps it that way).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..ir import index as prim_index, linalg as prim_linalg, reduce as prim_reduce
from ..ir import primitives as prim
from ..ir.graph import Builder, Node

VjpRule = Callable[[Builder, Node, Node, int], Node]


def _inverse(perm: tuple[int, ...]) -> tuple[int, ...]:
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return tuple(inverse)


# ---------------------------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------------------------
def _kept(b: Builder, node: Node, value: Node) -> Node:
    """A reduction's output (or its adjoint) with the reduced axes kept as size 1."""
    if node.param("keepdims"):
        return value
    return prim.expand_to_rank(b, value, node.inputs[0].shape, node.param("axes"))


def _sum_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    return prim.broadcast_to(b, _kept(b, node, g), node.inputs[0].shape)


def _extremum_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    """Ties share the gradient evenly (PyTorch's amax/amin and full max()/min())."""
    x = node.inputs[0]
    hit = prim.elementwise(b, "equal", x, _kept(b, node, node))
    count = prim.reduce_sum(b, _indicator(b, hit, x.dtype), node.param("axes"), True)
    share = prim.elementwise(b, "divide", _kept(b, node, g), count)
    return prim.broadcast_to(b, prim.elementwise(b, "where", hit, share, 0), x.shape)


def _indicator(b: Builder, condition: Node, dtype: str) -> Node:
    """1 where `condition` holds, else 0, as numbers of `dtype`."""
    return prim.astype(b, condition, dtype)


def _prod_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    """Exact with zeros: no zero -> prod/x; one zero -> the product of the others there, 0
    elsewhere; several zeros -> 0. (Second derivatives are exact away from zeros.)"""
    x, axes = node.inputs[0], node.param("axes")
    zero = prim.elementwise(b, "equal", x, 0)
    zeros = prim.reduce_sum(b, _indicator(b, zero, x.dtype), axes, True)
    nonzero_x = prim.elementwise(b, "where", zero, 1, x)
    others = prim_reduce.reduce(b, "prod", nonzero_x, axes, True)  # product of the nonzeros
    gk = _kept(b, node, g)
    no_zero = prim.elementwise(b, "multiply", gk, prim.elementwise(b, "divide", others,
                                                                     nonzero_x))
    lone_zero = prim.elementwise(b, "logical_and", zero, prim.elementwise(b, "equal", zeros, 1))
    at_zero = prim.elementwise(b, "where", lone_zero,
                               prim.elementwise(b, "multiply", gk, others), 0)
    result = prim.elementwise(b, "where", prim.elementwise(b, "equal", zeros, 0), no_zero,
                              at_zero)
    return prim.broadcast_to(b, result, x.shape)


def _norm_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    """g * x / |x|, and 0 where |x| = 0 (the minimum-norm subgradient, as PyTorch)."""
    x = node.inputs[0]
    norm = _kept(b, node, node)
    direction = prim.elementwise(b, "where", prim.elementwise(b, "equal", norm, 0), 0,
                                 prim.elementwise(b, "divide", x, norm))
    return prim.elementwise(b, "multiply", _kept(b, node, g), direction)


def _softmax_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    """y * (g - sum(g * y)) over the normalised axes, y the softmax itself."""
    weighted = prim.reduce_sum(b, prim.elementwise(b, "multiply", g, node), node.param("axes"),
                               True)
    return prim.elementwise(b, "multiply", node, prim.elementwise(b, "subtract", g, weighted))


def _log_softmax_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    """g - softmax(x) * sum(g) (written out, softmax shares its exp and sum with the forward)."""
    total = prim.reduce_sum(b, g, node.param("axes"), True)
    softmax = prim_reduce.normalise(b, "softmax", node.inputs[0], node.param("axes"))
    return prim.elementwise(b, "subtract", g, prim.elementwise(b, "multiply", softmax, total))


_reverse_cumsum = prim_reduce.reverse_cumsum


def _cumsum_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    return _reverse_cumsum(b, g, node.param("axis"))


def _cumprod_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    """Exact with zeros (as PyTorch): before the first zero, sum_{j>=i} g_j out_j / x_i; at the
    first zero, the same sum with that zero read as 1; after it, 0."""
    x, axis = node.inputs[0], node.param("axis")
    zero = prim.elementwise(b, "equal", x, 0)
    zeros_so_far = prim_reduce.scan(b, "cumsum", _indicator(b, zero, x.dtype), axis)
    before = prim.elementwise(b, "equal", zeros_so_far, 0)
    first_zero = prim.elementwise(b, "logical_and", zero,
                                  prim.elementwise(b, "equal", zeros_so_far, 1))
    nonzero_x = prim.elementwise(b, "where", zero, 1, x)
    upstream = _reverse_cumsum(b, prim.elementwise(b, "multiply", g, node), axis)
    skipping_zero = prim_reduce.scan(b, "cumprod",
                                     prim.elementwise(b, "where", first_zero, 1, x), axis)
    at_zero = _reverse_cumsum(b, prim.elementwise(b, "multiply", g, skipping_zero), axis)
    return prim.elementwise(
        b, "where", before, prim.elementwise(b, "divide", upstream, nonzero_x),
        prim.elementwise(b, "where", first_zero, at_zero, 0))


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


def _gather_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    return prim_index.scatter_add(b, g, node.param("index"), node.inputs[1:],
                                  node.inputs[0].shape)


def _scatter_add_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    return prim_index.gather(b, g, node.param("index"), node.inputs[1:])


def _concatenate_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    return prim_index.concatenate_part(b, g, node, k)


def _pad_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    return prim.getitem_normalized(b, g, prim_index.unpad_index(node))


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


def _einsum_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    """The einsum of g with the other operands, onto operand k's subscripts. Letters only
    operand k has are broadcast back; a repeated letter (a diagonal) is put back on the
    diagonal through an identity matrix."""
    inputs, output = prim_linalg.parse(node.param("subscripts"))
    own, x = inputs[k], node.inputs[k]
    others = [(text, n) for j, (text, n) in enumerate(zip(inputs, node.inputs)) if j != k]
    available = set(output).union(*[set(text) for text, _ in others])
    distinct = "".join(dict.fromkeys(own))
    size = {c: d for c, d in zip(own, x.shape)}
    reached = "".join(c for c in distinct if c in available)
    adjoint = prim_linalg.einsum(b, [output] + [t for t, _ in others], reached,
                                 [g] + [n for _, n in others])
    if reached != distinct:
        adjoint = prim.reshape(b, adjoint, [size[c] if c in reached else 1 for c in distinct])
        adjoint = prim.broadcast_to(b, adjoint, tuple(size[c] for c in distinct))
    if distinct == own:
        return adjoint
    spare = iter(prim_linalg.fresh_letters(own, len(own)))
    seen: set[str] = set()
    target, eyes = "", []
    for c in own:
        if c in seen:
            fresh = next(spare)
            target += fresh
            eyes.append((c + fresh, prim.constant(b, np.eye(size[c], dtype=x.dtype))))
        else:
            target += c
            seen.add(c)
    return prim_linalg.einsum(b, [distinct] + [t for t, _ in eyes], target,
                              [adjoint] + [e for _, e in eyes])


VJP_RULES: dict[str, VjpRule] = {
    # a user's rule (custom.py) inlines itself
    "custom_rule": lambda b, node, g, k: node.param("rule").vjp(b, node, g, k),
    # reductions and scans
    "sum": _sum_vjp,
    "max": _extremum_vjp,
    "min": _extremum_vjp,
    "prod": _prod_vjp,
    "norm": _norm_vjp,
    "softmax": _softmax_vjp,
    "log_softmax": _log_softmax_vjp,
    "cumsum": _cumsum_vjp,
    "cumprod": _cumprod_vjp,
    # movement
    "reshape": _reshape_vjp,
    "transpose": _transpose_vjp,
    "broadcast_to": _broadcast_to_vjp,
    "astype": _astype_vjp,
    "concatenate": _concatenate_vjp,
    "pad": _pad_vjp,
    # indexing
    "getitem": _getitem_vjp,
    "unslice": _unslice_vjp,
    "gather": _gather_vjp,
    "scatter_add": _scatter_add_vjp,
    # linear algebra
    "matmul": _matmul_vjp,
    "einsum": _einsum_vjp,
}

# numpy.linalg: solve, inverse, determinants, decompositions (vjp_rules_linalg.py).
from .vjp_linalg import LINALG_VJP_RULES  # noqa: E402

VJP_RULES.update(LINALG_VJP_RULES)

# Sorting and running extrema (vjp_rules_sort.py).
from .vjp_sort import SORT_VJP_RULES  # noqa: E402

VJP_RULES.update(SORT_VJP_RULES)


# numpy.fft: each transform's adjoint (vjp_fft.py).
from .vjp_fft import FFT_VJP_RULES  # noqa: E402

VJP_RULES.update(FFT_VJP_RULES)


# In-place updates (frontend_update.py): overwritten elements get no gradient.
def _overwrite_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    mask = node.inputs[0]
    return (prim.elementwise(b, "where", mask, g, 0) if k == 1
            else prim.elementwise(b, "where", mask, 0, g))


VJP_RULES["overwrite"] = _overwrite_vjp
