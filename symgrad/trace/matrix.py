"""numpy.linalg on tracers (solve, inv, det, slogdet, cholesky, eigh, eigvalsh, svd, svdvals,
qr, lstsq, matrix_power, multi_dot) and the matrix constructors np.triu, np.tril, np.diag,
np.diagflat, np.kron, np.cross.

The decompositions and solves are ops of their own (prim_matrix.py); matrix_power, multi_dot,
diag, kron and cross are written with matmul, padding, indexing and elementwise ops. Matrix
norms that need singular values (np.linalg.norm with ord 'nuc', 2, -2) are in
frontend_reductions.py, on the `svd_s` op.
"""
from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np

from ..ir import index as prim_index, reduce as prim_reduce
from ..ir import matrix as pm
from ..ir import primitives as prim
from ..errors import ShapeError, TracingError, UnsupportedFunctionError
from .linalg import _diagonal
from ..ir.graph import Builder, Node
from .numpy_api import _where, implements, on_nodes
from .tracer import Tracer

# its heading in docs/ops.md
FAMILY = "Linear algebra: solves, decompositions, matrix constructors"

# numpy 2's result types, by their field names (`w, v = eigh(a)` and `eigh(a).eigenvalues`)
EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])
SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])
QRResult = namedtuple("QRResult", ["Q", "R"])


def _lower_triangle_of(b: Builder, a: Node, uplo: str, op: str) -> Node:
    """The matrix whose lower triangle is the one numpy reads (UPLO='U' reads the upper)."""
    if uplo not in ("L", "U"):
        raise TracingError(f"numpy.linalg.{op}: UPLO must be 'L' or 'U', not {uplo!r} "
                           f"(at {_where(b)})")
    return a if uplo == "L" else prim.swap_last(b, a)


# ---------------------------------------------------------------------------------------------
# Solve, inverse, determinants
# ---------------------------------------------------------------------------------------------
@implements(np.linalg.solve)
def solve(a: Any, b: Any) -> Tracer:
    return on_nodes(pm.solve, a, b)


@implements(np.linalg.inv)
def inv(a: Any) -> Tracer:
    return on_nodes(pm.inv, a)


@implements(np.linalg.det)
def det(a: Any) -> Tracer:
    return on_nodes(pm.det, a)


@implements(np.linalg.slogdet)
def slogdet(a: Any) -> SlogdetResult:
    return on_nodes(lambda b, x: SlogdetResult(*pm.slogdet(b, x)), a)


@implements(np.linalg.matrix_power)
def matrix_power(a: Any, n: Any) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
            raise TracingError(f"numpy.linalg.matrix_power: the exponent must be a Python "
                               f"integer, not {type(n).__name__} (at {_where(b)})")
        pm._matrix(b, "matrix_power", x)
        if n == 0:
            eye = pm.eye_like(b, x.shape[-1], x.dtype if x.is_float else "int64")
            return prim.broadcast_to(b, eye, x.shape)
        base, exponent, result = (pm.inv(b, x) if n < 0 else x), abs(int(n)), None
        while exponent:  # binary powering, as numpy
            if exponent & 1:
                result = base if result is None else prim.matmul(b, result, base)
            exponent >>= 1
            if exponent:
                base = prim.matmul(b, base, base)
        return result
    return on_nodes(build, a)


@implements(np.linalg.multi_dot)
def multi_dot(arrays: Any, *, out: Any = None) -> Tracer:
    def build(b: Builder, *xs: Node) -> Node:
        product = xs[0]
        for x in xs[1:]:
            product = prim.matmul(b, product, x)
        return product
    return on_nodes(build, *arrays)


# ---------------------------------------------------------------------------------------------
# Decompositions
# ---------------------------------------------------------------------------------------------
@implements(np.linalg.cholesky)
def cholesky(a: Any, /, *, upper: bool = False) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        if not upper:
            return pm.cholesky(b, x)
        return prim.swap_last(b, pm.cholesky(b, prim.swap_last(b, x)))
    return on_nodes(build, a)


@implements(np.linalg.eigh)
def eigh(a: Any, UPLO: str = "L") -> EighResult:  # noqa: N803  (numpy's name)
    return on_nodes(lambda b, x: EighResult(*pm.eigh(b, _lower_triangle_of(b, x, UPLO, "eigh"))), a)


@implements(np.linalg.eigvalsh)
def eigvalsh(a: Any, UPLO: str = "L") -> Tracer:  # noqa: N803
    return on_nodes(lambda b, x: pm.eigh(b, _lower_triangle_of(b, x, UPLO, "eigvalsh"))[0], a)


@implements(np.linalg.svd)
def svd(a: Any, full_matrices: bool = True, compute_uv: bool = True,
        hermitian: bool = False) -> Any:
    def build(b: Builder, x: Node) -> Any:
        u, s, vh = pm.svd(b, x, full_matrices)
        return SVDResult(u, s, vh) if compute_uv else s
    return on_nodes(build, a)


if hasattr(np.linalg, "svdvals"):
    @implements(np.linalg.svdvals)
    def svdvals(x: Any, /) -> Tracer:
        return on_nodes(lambda b, a: pm.svd(b, a)[1], x)


@implements(np.linalg.qr)
def qr(a: Any, mode: str = "reduced") -> QRResult:
    def build(b: Builder, x: Node) -> Any:
        if mode not in ("reduced", "r"):
            raise UnsupportedFunctionError(f"numpy.linalg.qr with mode={mode!r} (supported: "
                                           "'reduced', 'r')", _where(b))
        q, r = pm.qr(b, x)
        return QRResult(q, r) if mode == "reduced" else r
    return on_nodes(build, a)


@implements(np.linalg.lstsq)
def lstsq(a: Any, b: Any, rcond: Any = None) -> tuple:
    """(x, residuals, rank, s) as numpy; x is differentiable (for full column rank), the sum
    of squared residuals too (shape (k,), or (1,) for a vector b; numpy gives an empty array
    where a is rank-deficient), the rank is an integer array of the singular values."""
    def build(bd: Builder, x: Node, rhs: Node) -> tuple:
        solution = pm.lstsq(bd, x, rhs)
        m, n = x.shape
        s = pm.svd(bd, solution.inputs[0])[1]
        cutoff = np.finfo(s.dtype).eps * max(m, n) if rcond is None else float(rcond)
        largest = prim_reduce.reduce(bd, "max", s, (s.ndim - 1,))
        big = prim.elementwise(bd, "greater", s,
                               prim.elementwise(bd, "multiply", largest, cutoff))
        rank = prim.reduce_sum(bd, prim.astype(bd, big, "int64"), (0,))
        if m <= n:
            residuals = prim.constant(bd, np.zeros(0, solution.dtype))
        else:
            r = prim.elementwise(bd, "subtract", solution.inputs[1],
                                 prim.matmul(bd, solution.inputs[0], solution))
            residuals = prim.reduce_sum(bd, prim.elementwise(bd, "multiply", r, r), (0,),
                                        rhs.ndim == 1)
        return (solution, residuals, rank, s)
    return on_nodes(build, a, b)


# ---------------------------------------------------------------------------------------------
# Matrix constructors
# ---------------------------------------------------------------------------------------------
@implements(np.triu)
def triu(m: Any, k: int = 0) -> Tracer:
    return on_nodes(lambda b, x: pm.triangle(b, "triu", x, k), m)


@implements(np.tril)
def tril(m: Any, k: int = 0) -> Tracer:
    return on_nodes(lambda b, x: pm.triangle(b, "tril", x, k), m)


def _diagonal_matrix(b: Builder, v: Node, k: int) -> Node:
    """np.diag of a vector: v on the k-th diagonal of a square matrix, zeros elsewhere."""
    n = v.shape[0]
    square = prim.elementwise(b, "multiply", prim.expand_dims(b, v, 1),
                              pm.eye_like(b, n, v.dtype if v.dtype != "bool" else "bool"))
    if k == 0:
        return square
    widths = ((0, k), (k, 0)) if k > 0 else ((-k, 0), (0, -k))
    return prim_index.pad(b, square, widths, 0)


@implements(np.diag)
def diag(v: Any, k: int = 0) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        if x.ndim == 1:
            return _diagonal_matrix(b, x, int(k))
        if x.ndim == 2:
            return _diagonal(b, x, int(k), 0, 1)
        raise ShapeError("diag", [x.shape], "input must be 1- or 2-d", _where(b))
    return on_nodes(build, v)


@implements(np.diagflat)
def diagflat(v: Any, k: int = 0) -> Tracer:
    return on_nodes(lambda b, x: _diagonal_matrix(b, prim.reshape(b, x, (-1,)), int(k)), v)


@implements(np.kron)
def kron(a: Any, b: Any) -> Tracer:
    def build(bd: Builder, x: Node, y: Node) -> Node:
        ndim = max(x.ndim, y.ndim)
        xs, ys = (1,) * (ndim - x.ndim) + x.shape, (1,) * (ndim - y.ndim) + y.shape
        left = prim.reshape(bd, x, [d for e in xs for d in (e, 1)])
        right = prim.reshape(bd, y, [d for e in ys for d in (1, e)])
        product = prim.elementwise(bd, "multiply", left, right)
        return prim.reshape(bd, product, [p * q for p, q in zip(xs, ys)])
    return on_nodes(build, a, b)


@implements(np.cross)
def cross(a: Any, b: Any, axisa: int = -1, axisb: int = -1, axisc: int = -1,
          axis: Any = None) -> Tracer:
    def build(bd: Builder, x: Node, y: Node) -> Node:
        ax, bx, cx = (axis, axis, axis) if axis is not None else (axisa, axisb, axisc)
        x = _last(bd, x, ax)
        y = _last(bd, y, bx)
        if x.shape[-1] != 3 or y.shape[-1] != 3:
            raise UnsupportedFunctionError(
                f"numpy.cross of vectors of {x.shape[-1]} and {y.shape[-1]} components "
                "(supported: 3 and 3; numpy 2 deprecates 2-vectors)", _where(bd))

        def part(v: Node, i: int) -> Node:
            return prim.getitem(bd, v, (Ellipsis, i))

        def term(i: int, j: int) -> Node:
            return prim.elementwise(bd, "subtract",
                                    prim.elementwise(bd, "multiply", part(x, i), part(y, j)),
                                    prim.elementwise(bd, "multiply", part(x, j), part(y, i)))
        parts = [prim.expand_dims(bd, t, t.ndim) for t in (term(1, 2), term(2, 0), term(0, 1))]
        shape = np.broadcast_shapes(parts[0].shape, parts[1].shape, parts[2].shape)
        result = prim_index.concatenate(bd, [prim.broadcast_to(bd, p, shape) for p in parts], -1)
        perm = list(range(result.ndim - 1))
        perm.insert(cx % result.ndim, result.ndim - 1)
        return prim.transpose(bd, result, perm)
    return on_nodes(build, a, b)


def _last(b: Builder, x: Node, axis: int) -> Node:
    """`x` with `axis` moved to the end."""
    axis = prim.normalize_axes("cross", axis, x.ndim, _where(b), x.shape)[0]
    perm = [i for i in range(x.ndim) if i != axis] + [axis]
    return prim.transpose(b, x, perm)
