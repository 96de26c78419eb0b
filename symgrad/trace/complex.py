"""Complex-number functions of real traced arrays: np.real, np.imag, np.conj/np.conjugate,
np.angle and the `.real`, `.imag`, `.conj()` attributes (their real-input values: x, 0, x,
arctan2(0, x)). Complex values themselves are not traced: a complex argument is refused by
`refuse_complex` (never silently cast to real), np.fft.* raises UnsupportedFunctionError.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..ir import primitives as prim
from ..errors import ComplexArgumentError, TracingError
from .numpy_api import UFUNC_OPS, _builder_of, boxed, elementwise, implements, node_of
from .tracer import METHODS, PROPERTIES, Tracer, bound_site

# its heading in docs/ops.md
FAMILY = "Complex-number functions of real arrays (complex values are refused)"

UFUNC_OPS[np.conjugate] = "positive"  # np.conj of a real array is the array


@implements(np.real)
def real(val: Any) -> Tracer:
    return val


@implements(np.imag)
def imag(val: Any) -> Tracer:
    builder = _builder_of((val,))
    with bound_site(builder):
        x = node_of(builder, val)
        return boxed(builder, prim.broadcast_to(builder, prim.constant(builder, 0, x.dtype),
                                                x.shape))


@implements(np.angle)
def angle(z: Any, deg: bool = False) -> Tracer:
    x = z if z.dtype.kind == "f" else z.astype(np.float64)
    radians = elementwise("arctan2", np.zeros((), dtype=x.dtype), x)  # 0 or pi (-0.0: pi)
    return elementwise("multiply", radians, 180 / np.pi) if deg else radians


def refuse_complex(name: str, dtype: str) -> None:
    if np.dtype(dtype).kind == "c":
        raise ComplexArgumentError(
            f"argument {name!r} is a {dtype} array: symgrad traces real arrays only (a complex "
            "value would be cast to real and lose its imaginary part). Pass np.real(z) and "
            "np.imag(z) as two float arrays and write the complex arithmetic with them.")


PROPERTIES["real"] = lambda self: real(self)
PROPERTIES["imag"] = lambda self: imag(self)
METHODS["conj"] = METHODS["conjugate"] = lambda self: elementwise("positive", self)
