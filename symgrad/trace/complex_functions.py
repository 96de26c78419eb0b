"""The numpy functions and ndarray methods of traced complex values (trace/complex.py) that
are not arithmetic: the shape functions, sums and means (each part alike), joins, np.vdot,
np.dot and np.linalg.norm. Registered in `complex.COMPLEX_FUNCTIONS` on import."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import UnsupportedFunctionError
from .complex import (COMPLEX_FUNCTIONS, ComplexTracer, _site, absolute, astype,
                      complex_function, conjugate, made, matmul, multiply, partwise, split)
from .tracer import Tracer, resolved


PARTWISE = (np.sum, np.mean, np.reshape, np.transpose, np.ravel, np.squeeze, np.expand_dims,
            np.flip, np.roll, np.broadcast_to, np.moveaxis, np.swapaxes, np.cumsum, np.diff,
            np.copy, np.tile, np.repeat, np.trace, np.diagonal)
for _function in PARTWISE:
    COMPLEX_FUNCTIONS[_function] = partwise(_function)


def _joined(function: Callable) -> Callable:
    def join(arrays: Any, *args: Any, **kwargs: Any) -> ComplexTracer:
        pairs = [split(x) for x in arrays]
        like = [x for x in arrays if isinstance(resolved(x), (Tracer, ComplexTracer))][0]
        zero = np.zeros((), dtype=(like.re if isinstance(like, ComplexTracer) else like).dtype)
        return made(function([a for a, _ in pairs], *args, **kwargs),
                    function([zero * a if b is None else b for a, b in pairs], *args, **kwargs))
    return join


COMPLEX_FUNCTIONS[np.concatenate] = _joined(np.concatenate)
COMPLEX_FUNCTIONS[np.stack] = _joined(np.stack)


@complex_function(np.vdot)
def vdot(z: Any, w: Any) -> Any:
    return np.sum(multiply(conjugate(np.ravel(z)), np.ravel(w)))


def _ndim(value: Any) -> int:
    value = resolved(value)
    return value.ndim if isinstance(value, (Tracer, ComplexTracer)) else np.ndim(value)


@complex_function(np.dot)
def dot(z: Any, w: Any) -> Any:
    """np.dot of vectors and matrices: the product without conjugation (np.vdot conjugates)."""
    if _ndim(z) == 0 or _ndim(w) == 0:
        return multiply(z, w)
    if _ndim(z) > 2 or _ndim(w) > 2:
        raise UnsupportedFunctionError("numpy.dot of complex arrays of more than 2 dims "
                                       "(write np.matmul or np.einsum of the parts)", _site())
    return matmul(z, w)


@complex_function(np.linalg.norm)
def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    """The norms numpy computes from |x| alone (vector norms; matrix 1, inf, 'fro' norms) as
    the norm of np.abs(x); the spectral and nuclear norms of a complex matrix are refused."""
    matrix = (isinstance(axis, tuple) and len(axis) == 2) or (
        axis is None and ord is not None and _ndim(x) == 2)
    if matrix and ord in (2, -2, "nuc"):
        raise UnsupportedFunctionError(f"numpy.linalg.norm(ord={ord!r}) of a complex matrix "
                                       "(its singular values)", _site())
    return np.linalg.norm(absolute(x), ord, axis, keepdims)


for _method, _function in (("sum", np.sum), ("mean", np.mean), ("transpose", np.transpose),
                           ("ravel", np.ravel), ("flatten", np.ravel), ("copy", np.copy),
                           ("squeeze", np.squeeze), ("cumsum", np.cumsum)):
    setattr(ComplexTracer, _method, lambda self, *a, f=partwise(_function), **k: f(self, *a, **k))
ComplexTracer.reshape = lambda self, *shape, order="C": partwise(np.reshape)(
    self, shape[0] if len(shape) == 1 and not isinstance(shape[0], (int, np.integer))
    else shape, order=order)
ComplexTracer.T = property(lambda self: partwise(np.transpose)(self))
ComplexTracer.astype = astype
