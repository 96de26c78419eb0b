"""Vector-Jacobian products of numpy.linalg, one short rule per op, in graph ops.

The standard identities (Giles 2008, Murray 2016 for Cholesky, Townsend 2016 for the SVD,
Walter & Lehmann for QR), written with matmul, solve, the decompositions themselves and
elementwise ops, so that a derivative can be differentiated again (Hessians). Rules read the
other results of a decomposition from nodes of their own (`eigh_values` reads the eigenvectors
through an `eigh_vectors` node of the same matrix: one node, as nodes are hash-consed).

Conventions at degenerate points (docs/conventions.md, "Linear algebra"):
- symmetric inputs (cholesky, eigh, eigvalsh): numpy reads one triangle only; the gradient is
  the symmetric one (PyTorch's and JAX's), right for every symmetric perturbation;
- repeated eigenvalues / singular values: gradients through eigenvalues (singular values) alone
  are finite and right (V diag(g) V^T is the same for every basis of a repeated eigenspace);
  through eigenvectors, the terms 1/(w_j - w_i) of exactly equal pairs are 0 and the generated
  code warns (right for losses that do not depend on the basis within the eigenspace, such as
  projectors onto all of it; the gradient is not defined otherwise); a zero singular value's
  1/s terms are 0 likewise;
- det: its gradient is the adjugate (finite, and right, at singular matrices).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..ir import matrix as pm
from ..ir import primitives as prim
from ..errors import GradientError
from ..ir.graph import Builder, Node

VjpRule = Callable[[Builder, Node, Node, int], Node]


def _ew(b: Builder, op: str, *operands) -> Node:
    return prim.elementwise(b, op, *operands)


def _mm(b: Builder, *factors: Node) -> Node:
    product = factors[0]
    for factor in factors[1:]:
        product = prim.matmul(b, product, factor)
    return product


def _t(b: Builder, x: Node) -> Node:
    return prim.swap_last(b, x)


def _column(b: Builder, v: Node) -> Node:
    """v[..., :, None]"""
    return prim.expand_dims(b, v, v.ndim)


def _row(b: Builder, v: Node) -> Node:
    """v[..., None, :]"""
    return prim.expand_dims(b, v, v.ndim - 1)


def _matrix_scale(b: Builder, g: Node) -> Node:
    """A per-matrix value (batch shape) as g[..., None, None]."""
    return _column(b, _column(b, g))


def _symmetric(b: Builder, x: Node) -> Node:
    return _ew(b, "multiply", _ew(b, "add", x, _t(b, x)), 0.5)


def _reciprocal_or_zero(b: Builder, d: Node) -> Node:
    """1/d, and 0 where d == 0 (the degenerate pairs)."""
    return _ew(b, "where", _ew(b, "equal", d, 0), 0, _ew(b, "divide", 1, d))


def _pair_reciprocals_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    """dF_ij = -F_ij^2 (dw_j - dw_i): the row sums less the column sums of g F^2."""
    h = _ew(b, "multiply", g, _ew(b, "multiply", node, node))
    return _ew(b, "subtract", prim.reduce_sum(b, h, (h.ndim - 1,)),
               prim.reduce_sum(b, h, (h.ndim - 2,)))


def _undefined(node: Node, why: str) -> GradientError:
    return GradientError(f"the gradient of numpy.linalg.{pm.FUNCTION[node.op]} ({node.op}) "
                         f"is undefined here: {why} (at {node.site})")


# ---------------------------------------------------------------------------------------------
# Solve, inverse, determinants
# ---------------------------------------------------------------------------------------------
def _solve_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    a, rhs = node.inputs
    if rhs.ndim == 1:  # x = a^-1 rhs for each matrix of the batch
        g_rhs = prim.reshape(b, pm.solve(b, _t(b, a), _column(b, g)), node.shape)
        if k == 1:
            return prim.unbroadcast(b, g_rhs, rhs.shape)
        return _ew(b, "negative", _ew(b, "multiply", _column(b, g_rhs), _row(b, node)))
    g_rhs = pm.solve(b, _t(b, a), g)
    if k == 1:
        return prim.unbroadcast(b, g_rhs, rhs.shape)
    return prim.unbroadcast(b, _ew(b, "negative", _mm(b, g_rhs, _t(b, node))), a.shape)


def _inv_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    inverse_t = _t(b, node)
    return _ew(b, "negative", _mm(b, inverse_t, g, inverse_t))


def _det_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    return _ew(b, "multiply", _matrix_scale(b, g), _t(b, pm.adjugate(b, node.inputs[0])))


def _adjugate_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    """d adj = tr(a^-1 da) adj - a^-1 da adj (exact away from singular matrices)."""
    inverse_t = _t(b, pm.inv(b, node.inputs[0]))
    overlap = prim.reduce_sum(b, _ew(b, "multiply", g, node), (node.ndim - 2, node.ndim - 1),
                              True)
    return _ew(b, "subtract", _ew(b, "multiply", overlap, inverse_t),
               _mm(b, inverse_t, g, _t(b, node)))


def _logabsdet_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    return _ew(b, "multiply", _matrix_scale(b, g), _t(b, pm.inv(b, node.inputs[0])))


# ---------------------------------------------------------------------------------------------
# Decompositions
# ---------------------------------------------------------------------------------------------
def _cholesky_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    """sym(L^-T Phi(L^T tril(g)) L^-1), Phi: the lower triangle with the diagonal halved."""
    n, lower = node.shape[-1], _t(b, node)
    ones = np.tril(np.ones((n, n), dtype=node.dtype))
    g = _ew(b, "multiply", g, prim.constant(b, ones))
    phi = prim.constant(b, ones - 0.5 * np.eye(n, dtype=node.dtype))
    p = _ew(b, "multiply", _mm(b, lower, g), phi)
    left = pm.solve(b, lower, p)
    return _symmetric(b, _t(b, pm.solve(b, lower, _t(b, left))))


def _eigh_values_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    """V diag(g) V^T."""
    _, vectors = pm.eigh(b, node.inputs[0])
    return _mm(b, _ew(b, "multiply", vectors, _row(b, g)), _t(b, vectors))


def _eigh_vectors_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    """sym(V (F o V^T g) V^T), F_ij = 1/(w_j - w_i) (0 for equal eigenvalues)."""
    values, _ = pm.eigh(b, node.inputs[0])
    inner = _ew(b, "multiply", pm.pair_reciprocals(b, values), _mm(b, _t(b, node), g))
    return _symmetric(b, _mm(b, node, inner, _t(b, node)))


def _thin_svd(b: Builder, node: Node) -> tuple[Node, Node, Node]:
    if node.param("full_matrices"):
        raise _undefined(node, "the extra columns of a full SVD of a non-square matrix are "
                         "not unique; use np.linalg.svd(a, full_matrices=False)")
    return pm.svd(b, node.inputs[0], full_matrices=False)


def _svd_s_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    """U diag(g) Vh."""
    u, _, vh = pm.svd(b, node.inputs[0], full_matrices=False)
    return _mm(b, _ew(b, "multiply", u, _row(b, g)), vh)


def _svd_parts(b: Builder, s: Node) -> tuple[Node, Node]:
    """F_ij = 1/(s_j^2 - s_i^2) (0 for equal values) and 1/s (0 for zero values)."""
    return pm.pair_reciprocals(b, _ew(b, "multiply", s, s)), _reciprocal_or_zero(b, s)


def _svd_u_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    """U (F o (U^T g - g^T U)) S Vh + (I - U U^T) g S^-1 Vh."""
    u, s, vh = _thin_svd(b, node)
    f, s_inv = _svd_parts(b, s)
    ug = _mm(b, _t(b, u), g)
    rotation = _ew(b, "multiply", _ew(b, "multiply", f, _ew(b, "subtract", ug, _t(b, ug))),
                   _row(b, s))
    off_range = _ew(b, "multiply", _ew(b, "subtract", g, _mm(b, u, ug)), _row(b, s_inv))
    return _ew(b, "add", _mm(b, u, rotation, vh), _mm(b, off_range, vh))


def _svd_vh_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    """U S (F o (Vh g^T - g Vh^T)) Vh + U S^-1 g (I - Vh^T Vh)."""
    u, s, vh = _thin_svd(b, node)
    f, s_inv = _svd_parts(b, s)
    vg = _mm(b, vh, _t(b, g))
    rotation = _ew(b, "multiply", _column(b, s),
                   _ew(b, "multiply", f, _ew(b, "subtract", vg, _t(b, vg))))
    off_range = _ew(b, "multiply", _column(b, s_inv),
                    _ew(b, "subtract", g, _mm(b, _t(b, vg), vh)))
    return _ew(b, "add", _mm(b, u, rotation, vh), _mm(b, u, off_range))


def _qr_parts(b: Builder, node: Node) -> tuple[Node, Node]:
    m, n = node.inputs[0].shape[-2:]
    if m < n:
        raise _undefined(node, f"the gradient of a QR decomposition of a wide ({m}, {n}) "
                         "matrix is not implemented; decompose the transpose")
    return pm.qr(b, node.inputs[0])


def _copy_lower_to_upper(b: Builder, m: Node) -> Node:
    return _ew(b, "add", pm.triangle(b, "tril", m, 0), _t(b, pm.triangle(b, "tril", m, -1)))


def _times_r_inverse_t(b: Builder, x: Node, r: Node) -> Node:
    """x R^-T as (R^-1 x^T)^T."""
    return _t(b, pm.solve(b, r, _t(b, x)))


def _qr_q_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    """(g + Q copyltu(-g^T Q)) R^-T."""
    q, r = _qr_parts(b, node)
    m = _ew(b, "negative", _mm(b, _t(b, g), q))
    return _times_r_inverse_t(b, _ew(b, "add", g, _mm(b, q, _copy_lower_to_upper(b, m))), r)


def _qr_r_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    """Q copyltu(R g^T) R^-T."""
    q, r = _qr_parts(b, node)
    return _times_r_inverse_t(b, _mm(b, q, _copy_lower_to_upper(b, _mm(b, r, _t(b, g)))), r)


def _lstsq_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    """With z = (A^T A)^-1 g and r = b - A x: d/db = A z, d/dA = r z^T - (A z) x^T (full
    column rank)."""
    a, rhs = node.inputs
    if a.shape[0] < a.shape[1]:
        raise _undefined(node, f"the gradient of an underdetermined ({a.shape[0]}, "
                         f"{a.shape[1]}) least-squares problem is not implemented")
    z = pm.solve(b, _mm(b, _t(b, a), a), g)
    az = _mm(b, a, z)
    if k == 1:
        return az
    residual = _ew(b, "subtract", rhs, _mm(b, a, node))
    if rhs.ndim == 1:
        return _ew(b, "subtract", _ew(b, "multiply", _column(b, residual), _row(b, z)),
                   _ew(b, "multiply", _column(b, az), _row(b, node)))
    return _ew(b, "subtract", _mm(b, residual, _t(b, z)), _mm(b, az, _t(b, node)))


def _triangle_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    return pm.triangle(b, node.op, g, node.param("k"))


LINALG_VJP_RULES: dict[str, VjpRule] = {
    "solve": _solve_vjp,
    "inv": _inv_vjp,
    "det": _det_vjp,
    "adjugate": _adjugate_vjp,
    "logabsdet": _logabsdet_vjp,
    "cholesky": _cholesky_vjp,
    "eigh_values": _eigh_values_vjp,
    "eigh_vectors": _eigh_vectors_vjp,
    "svd_s": _svd_s_vjp,
    "svd_u": _svd_u_vjp,
    "svd_vh": _svd_vh_vjp,
    "qr_q": _qr_q_vjp,
    "qr_r": _qr_r_vjp,
    "lstsq": _lstsq_vjp,
    "pair_reciprocals": _pair_reciprocals_vjp,
    "triu": _triangle_vjp,
    "tril": _triangle_vjp,
}
