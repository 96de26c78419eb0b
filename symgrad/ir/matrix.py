"""Primitive constructors for numpy.linalg: solve, inverse, determinants, decompositions,
least squares, and triangles (np.triu / np.tril).

Each checks its operands as numpy does (float inputs, square matrices in the last two axes,
batched over the leading axes) and makes one node per result: a decomposition with several
results (`eigh`, `svd`, `qr`) is one node per result that is used, printed as the numpy call
and the result's position (`np.linalg.eigh(a)[1]`). Integer operands are computed in float64
and float32 stays float32, as numpy.linalg does. The VJP rules are in vjp_rules_linalg.py.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from .graph import Builder, Node, Shape
from .primitives import astype, broadcast_shapes

# op -> the numpy function a user calls for it (for messages)
FUNCTION = {"solve": "solve", "inv": "inv", "det": "det", "adjugate": "det",
            "slogdet_sign": "slogdet", "logabsdet": "slogdet", "cholesky": "cholesky",
            "eigh_values": "eigh", "eigh_vectors": "eigh", "svd_u": "svd", "svd_s": "svd",
            "svd_vh": "svd", "qr_q": "qr", "qr_r": "qr", "lstsq": "lstsq"}


def _where(b: Builder) -> str | None:
    return str(b.site) if b.site else None


def linalg_dtype(*nodes: Node) -> str:
    """numpy.linalg's computation type: float32 stays, everything else is float64."""
    dtype = np.result_type(*[np.empty(0, n.dtype) for n in nodes])
    return dtype.name if dtype in (np.float32, np.float64) else "float64"


def _floats(b: Builder, *nodes: Node) -> list[Node]:
    dtype = linalg_dtype(*nodes)
    return [astype(b, n, dtype) for n in nodes]


def _matrix(b: Builder, op: str, a: Node, square: bool = True) -> None:
    name = f"linalg.{FUNCTION.get(op, op)}"
    if a.ndim < 2:
        raise ShapeError(name, [a.shape], f"{a.ndim}-dimensional array given; the array must "
                         "be at least two-dimensional", _where(b))
    if square and a.shape[-1] != a.shape[-2]:
        raise ShapeError(name, [a.shape], "the last 2 dimensions of the array must be square",
                         _where(b))


def _unary(b: Builder, op: str, a: Node, shape: Shape, square: bool = True, **params) -> Node:
    _matrix(b, op, a, square)
    (a,) = _floats(b, a)
    return b.node(op, (a,), params, tuple(shape), a.dtype)


# ---------------------------------------------------------------------------------------------
# Solve, inverse, determinants
# ---------------------------------------------------------------------------------------------
def solve(b: Builder, a: Node, rhs: Node) -> Node:
    """np.linalg.solve(a, rhs): `rhs` is a vector only when it is 1-D (numpy 2's rule)."""
    _matrix(b, "solve", a)
    where = _where(b)
    a, rhs = _floats(b, a, rhs)
    n = a.shape[-1]
    rows = rhs.shape[0] if rhs.ndim == 1 else (rhs.shape[-2] if rhs.ndim >= 2 else None)
    if rows != n:
        raise ShapeError("linalg.solve", [a.shape, rhs.shape], f"the right-hand side needs "
                         f"{n} rows (a 1-D vector or a stack of (n, k) matrices)", where)
    if rhs.ndim == 1:
        shape = a.shape[:-1]
    else:
        batch = broadcast_shapes("linalg.solve", [a.shape[:-2], rhs.shape[:-2]], where)
        shape = batch + rhs.shape[-2:]
    return b.node("solve", (a, rhs), {}, shape, a.dtype)


def inv(b: Builder, a: Node) -> Node:
    return _unary(b, "inv", a, a.shape)


def det(b: Builder, a: Node) -> Node:
    return _unary(b, "det", a, a.shape[:-2])


def adjugate(b: Builder, a: Node) -> Node:
    """The adjugate (transposed cofactor matrix): det(a) * inv(a), finite where a is singular."""
    return _unary(b, "adjugate", a, a.shape)


def slogdet(b: Builder, a: Node) -> tuple[Node, Node]:
    """(sign, log|det|): the sign is piecewise constant (no gradient)."""
    return (_unary(b, "slogdet_sign", a, a.shape[:-2]), _unary(b, "logabsdet", a, a.shape[:-2]))


# ---------------------------------------------------------------------------------------------
# Decompositions
# ---------------------------------------------------------------------------------------------
def cholesky(b: Builder, a: Node) -> Node:
    return _unary(b, "cholesky", a, a.shape)


def eigh(b: Builder, a: Node) -> tuple[Node, Node]:
    """Eigenvalues (ascending) and eigenvectors (columns) of symmetric matrices."""
    return (_unary(b, "eigh_values", a, a.shape[:-1]), _unary(b, "eigh_vectors", a, a.shape))


def svd(b: Builder, a: Node, full_matrices: bool = False) -> tuple[Node, Node, Node]:
    """(u, s, vh) as np.linalg.svd; the thin factors unless `full_matrices`."""
    _matrix(b, "svd", a, square=False)
    m, n = a.shape[-2:]
    k = min(m, n)
    full = bool(full_matrices) and m != n
    batch = a.shape[:-2]
    u = _unary(b, "svd_u", a, batch + (m, m if full else k), False, full_matrices=full)
    vh = _unary(b, "svd_vh", a, batch + (n if full else k, n), False, full_matrices=full)
    return u, _unary(b, "svd_s", a, batch + (k,), False), vh


def qr(b: Builder, a: Node) -> tuple[Node, Node]:
    """np.linalg.qr(a) in its default 'reduced' mode: q (m, k), r (k, n), k = min(m, n)."""
    _matrix(b, "qr", a, square=False)
    m, n = a.shape[-2:]
    k = min(m, n)
    batch = a.shape[:-2]
    return (_unary(b, "qr_q", a, batch + (m, k), False),
            _unary(b, "qr_r", a, batch + (k, n), False))


def lstsq(b: Builder, a: Node, rhs: Node) -> Node:
    """The least-squares solution x of np.linalg.lstsq(a, rhs, rcond=None) (2-D `a`)."""
    where = _where(b)
    if a.ndim != 2 or rhs.ndim not in (1, 2) or rhs.shape[0] != a.shape[0]:
        raise ShapeError("linalg.lstsq", [a.shape, rhs.shape], "a must be 2-D (m, n) and b "
                         "(m,) or (m, k)", where)
    a, rhs = _floats(b, a, rhs)
    return b.node("lstsq", (a, rhs), {}, (a.shape[1],) + rhs.shape[1:], a.dtype)


# ---------------------------------------------------------------------------------------------
# Triangles
# ---------------------------------------------------------------------------------------------
def triangle(b: Builder, op: str, x: Node, k: int) -> Node:
    """np.triu / np.tril of the last two axes (a 1-D array is a row repeated, as numpy)."""
    assert op in ("triu", "tril"), op
    if x.ndim < 2:
        raise ShapeError(op, [x.shape], "the array must be at least 2-D (numpy broadcasts a "
                         "vector first; write np.broadcast_to(v, (n, n)))", _where(b))
    return b.node(op, (x,), {"k": int(k)}, x.shape, x.dtype)


def pair_reciprocals(b: Builder, w: Node) -> Node:
    """F[..., i, j] = 1 / (w_j - w_i), 0 where w_i == w_j: the eigenvector (and singular
    vector) gradients' factor; the generated helper warns when values off the diagonal tie."""
    return b.node("pair_reciprocals", (w,), {}, w.shape + w.shape[-1:], w.dtype)


def eye_like(b: Builder, n: int, dtype: str) -> Node:
    from .primitives import constant

    return constant(b, np.eye(n, dtype=dtype))


