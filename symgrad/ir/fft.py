"""Primitive constructors for numpy.fft: the discrete Fourier transforms as real-valued ops.

The graph stays real: a complex value is a pair of real nodes (its real and imaginary parts,
trace/complex.py). A transform with a complex result is one node holding both parts,
stacked on a new last axis (`packed`: shape + (2,)), read by `parts`; the generated code
computes it once (`_parts(np.fft.fft(a + 1j * b))`).

- `fft` (params axes, s, norm, inverse): the complex transform over `axes` of lengths `s`
  (np.fft.fft/ifft/fft2/ifft2/fftn/ifftn); inputs (re,) for a real operand or (re, im);
- `rfft` (axes, s, norm): the transform of a real operand, the last axis halved to s//2 + 1
  (np.fft.rfft/rfftn/rfft2); input (x,);
- `irfft` (axes, s, norm): its inverse, a real result of lengths `s` (np.fft.irfft/irfftn/
  irfft2); inputs (re,) or (re, im).

Each input is cropped or zero-padded to `s` along `axes` first, as numpy does (`n=`, `s=`).
Axes are stored non-negative, `s` always explicit, `norm` one of numpy's three names. Integer
operands are computed in float64 and float32 stays float32 (complex64), as numpy 2 does. The
VJP rules are in autodiff/vjp_fft.py.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ShapeError, TracingError
from .graph import Builder, Node, Shape
from .primitives import astype, broadcast_shapes, broadcast_to, getitem_normalized

NORMS = ("backward", "ortho", "forward")
# The adjoint of a transform with one normalisation is the opposite transform with this one:
# the unscaled DFT's adjoint is the unscaled inverse sum (ifft with norm="forward").
ADJOINT_NORM = {"backward": "forward", "ortho": "ortho", "forward": "backward"}


def _where(b: Builder) -> str | None:
    return str(b.site) if b.site else None


def fft_dtype(*nodes: Node) -> str:
    """The parts' dtype, as numpy 2's: float16 and float32 give float32 (complex64),
    everything else float64."""
    dtype = np.result_type(*[np.empty(0, n.dtype) for n in nodes])
    return "float32" if dtype in (np.float16, np.float32) else "float64"


def check_norm(name: str, norm: str | None, b: Builder) -> str:
    norm = "backward" if norm is None else norm
    if norm not in NORMS:
        raise TracingError(f"numpy.fft.{name}: invalid norm={norm!r} (use one of "
                           f"{', '.join(map(repr, NORMS))}) (at {_where(b)})")
    return norm


def _check_lengths(b: Builder, name: str, x: Node, axes: tuple[int, ...], s: tuple[int, ...]):
    for axis, n in zip(axes, s):
        if n < 1:
            raise ShapeError(f"fft.{name}", [x.shape], f"invalid number of data points ({n}) "
                             f"along axis {axis}", _where(b))


def _prepared(b: Builder, inputs: Sequence[Node]) -> list[Node]:
    dtype = fft_dtype(*inputs)
    shape = broadcast_shapes("fft", [x.shape for x in inputs], _where(b))
    return [broadcast_to(b, astype(b, x, dtype), shape) for x in inputs]


def _resized_shape(shape: Shape, axes: tuple[int, ...], lengths: Sequence[int]) -> list[int]:
    out = list(shape)
    for axis, n in zip(axes, lengths):
        out[axis] = n
    return out


def fft(b: Builder, inputs: Sequence[Node], axes: tuple[int, ...], s: tuple[int, ...],
        norm: str, inverse: bool, name: str = "fft") -> Node:
    """The packed complex transform of re (+ 1j im)."""
    inputs = _prepared(b, inputs)
    _check_lengths(b, name, inputs[0], axes, s)
    shape = tuple(_resized_shape(inputs[0].shape, axes, s)) + (2,)
    params = {"axes": tuple(axes), "s": tuple(s), "norm": norm, "inverse": bool(inverse)}
    return b.node("fft", inputs, params, shape, inputs[0].dtype)


def rfft(b: Builder, x: Node, axes: tuple[int, ...], s: tuple[int, ...], norm: str,
         name: str = "rfft") -> Node:
    """The packed transform of a real x, its last axis s[-1]//2 + 1 long."""
    (x,) = _prepared(b, [x])
    _check_lengths(b, name, x, axes, s)
    lengths = list(s[:-1]) + [s[-1] // 2 + 1]
    shape = tuple(_resized_shape(x.shape, axes, lengths)) + (2,)
    return b.node("rfft", (x,), {"axes": tuple(axes), "s": tuple(s), "norm": norm}, shape,
                  x.dtype)


def irfft(b: Builder, inputs: Sequence[Node], axes: tuple[int, ...], s: tuple[int, ...],
          norm: str, name: str = "irfft") -> Node:
    """The real inverse of rfft: lengths `s` (the input's last axis read as s[-1]//2 + 1)."""
    inputs = _prepared(b, inputs)
    _check_lengths(b, name, inputs[0], axes, s)
    shape = tuple(_resized_shape(inputs[0].shape, axes, s))
    return b.node("irfft", inputs, {"axes": tuple(axes), "s": tuple(s), "norm": norm}, shape,
                  inputs[0].dtype)


def parts(b: Builder, packed: Node) -> tuple[Node, Node]:
    """The real and imaginary parts of a packed transform (its last axis)."""
    full = tuple(("s", 0, d, 1) for d in packed.shape[:-1])
    return (getitem_normalized(b, packed, full + (("i", 0),)),
            getitem_normalized(b, packed, full + (("i", 1),)))


# ---------------------------------------------------------------------------------------------
# For the VJP rules: resizing back, and the weights of the halved axis
# ---------------------------------------------------------------------------------------------
def resized(b: Builder, x: Node, axes: Sequence[int], lengths: Sequence[int]) -> Node:
    """x cropped or zero-padded to `lengths` along `axes` (the adjoint of either is the
    other): numpy's own resizing of an input to `n=` / `s=`."""
    from .index import pad

    index = [("s", 0, d, 1) for d in x.shape]
    widths = [(0, 0)] * x.ndim
    for axis, n in zip(axes, lengths):
        if n < x.shape[axis]:
            index[axis] = ("s", 0, n, 1)
        elif n > x.shape[axis]:
            widths[axis] = (0, n - x.shape[axis])
    return pad(b, getitem_normalized(b, x, tuple(index)), widths, 0)


def halved_weights(n: int, ndim: int, axis: int, dtype: str) -> np.ndarray:
    """How often each of the n//2 + 1 bins of a real transform of length n stands for a bin
    of the full transform: 1 for the zero frequency (and n/2 when n is even), else 2 (the bin
    and its conjugate mirror). Shaped to broadcast along `axis` of an ndim-array."""
    weights = np.full(n // 2 + 1, 2.0, dtype=dtype)
    weights[0] = 1.0
    if n % 2 == 0:
        weights[-1] = 1.0
    shape = [1] * ndim
    shape[axis] = n // 2 + 1
    return weights.reshape(shape)
