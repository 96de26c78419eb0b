"""numpy.fft on traced values: fft, ifft, fft2, ifft2, fftn, ifftn, rfft, irfft, rfft2, irfft2,
rfftn, irfftn, hfft, ihfft, fftshift and ifftshift, with numpy's arguments (n / s, axis / axes,
norm).

A complex result is a `ComplexTracer` (trace/complex.py) over the two parts of one packed
transform node (ir/fft.py). The operand of fft/ifft/irfft may be real or complex; rfft's
must be real, as numpy 2's.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import ShapeError, TracingError
from ..ir import fft as pf
from ..ir.graph import Builder, Node
from ..ir.primitives import normalize_axes
from .complex import ACCEPTS_COMPLEX, ComplexTracer, split
from .numpy_api import _builder_of, boxed, implements, on_nodes

FAMILY = "numpy.fft (complex intermediates, real losses)"  # its heading in docs/ops.md


def _where(b: Builder) -> str | None:
    return str(b.site) if b.site else None


def _fft_function(*functions: Any) -> Any:
    """Register a handler for tracers and complex tracers alike."""
    def register(handler: Any) -> Any:
        implements(*functions)(handler)
        ACCEPTS_COMPLEX.update(functions)
        return handler
    return register


def _transform(build: Any, name: str, a: Any, out: Any, real_only: bool = False) -> Any:
    """`build(builder, parts)` on the parts of `a` as nodes, (re,) for a real operand, (re, im)
    for a complex one, at the user's line (`on_nodes`)."""
    def checked(b: Builder, *parts: Node) -> Any:
        _no_out(b, name, out)
        if len(parts) == 2 and real_only:
            raise TracingError(f"numpy.fft.{name} takes a real array; this one is complex "
                               f"(take np.real(z) first, or use numpy.fft.fft) (at {_where(b)})")
        return build(b, parts[:1] if len(parts) == 2 and _is_zero(parts[1]) else parts)
    return on_nodes(checked, *[p for p in split(a) if p is not None])


def _is_zero(x: Node) -> bool:
    """A zero constant, as the imaginary part of `x + 0j` or `made(re, None)`."""
    while x.op == "broadcast_to":
        x = x.inputs[0]
    return x.op == "const" and not x.shape and x.param("value") == 0


def _no_out(b: Builder, name: str, out: Any) -> None:
    if out is not None:
        raise TracingError(f"numpy.fft.{name}: argument 'out' is not supported while tracing "
                           f"(at {_where(b)}); use the result")


def _axes_and_lengths(b: Builder, name: str, x: Node, s: Any, axes: Any,
                      default_axes: Any = None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """numpy's rule: axes default to the last len(s) axes (all of them without s)."""
    if axes is None:
        axes = default_axes
    if axes is None:
        axes = tuple(range(x.ndim - (len(s) if s is not None else x.ndim), x.ndim))
    axes = (axes,) if isinstance(axes, (int, np.integer)) else tuple(axes)
    normal = tuple(normalize_axes(f"fft.{name}", (a,), x.ndim, _where(b), x.shape)[0]
                   for a in axes)
    if len(set(normal)) != len(normal) or not normal:
        raise ShapeError(f"fft.{name}", [x.shape], f"axes {axes} must be distinct and at least "
                         "one (transform twice with two calls)", _where(b))
    if s is None:
        return normal, tuple(x.shape[a] for a in normal)
    s = (s,) if isinstance(s, (int, np.integer)) else tuple(s)
    if len(s) != len(normal):
        raise ShapeError(f"fft.{name}", [x.shape], f"s={s} and axes={axes} differ in length",
                         _where(b))
    return normal, tuple(int(n) for n in s)


def _complex(b: Builder, packed: Node) -> ComplexTracer:
    return ComplexTracer(*boxed(b, pf.parts(b, packed)), packed)


def _c2c(name: str, inverse: bool, a: Any, s: Any, axes: Any, norm: Any, out: Any,
         default_axes: Any = None) -> ComplexTracer:
    def build(b: Builder, inputs: tuple[Node, ...]) -> ComplexTracer:
        over, n = _axes_and_lengths(b, name, inputs[0], s, axes, default_axes)
        return _complex(b, pf.fft(b, inputs, over, n, pf.check_norm(name, norm, b), inverse,
                                  name))
    return _transform(build, name, a, out)


def _r2c(name: str, a: Any, s: Any, axes: Any, norm: Any, out: Any,
         default_axes: Any = None) -> ComplexTracer:
    def build(b: Builder, inputs: tuple[Node, ...]) -> ComplexTracer:
        (x,) = inputs
        over, n = _axes_and_lengths(b, name, x, s, axes, default_axes)
        return _complex(b, pf.rfft(b, x, over, n, pf.check_norm(name, norm, b), name))
    return _transform(build, name, a, out, real_only=True)


def _c2r(name: str, a: Any, s: Any, axes: Any, norm: Any, out: Any,
         default_axes: Any = None) -> Any:
    def build(b: Builder, inputs: tuple[Node, ...]) -> Node:
        over, lengths = _axes_and_lengths(b, name, inputs[0], s, axes, default_axes)
        if s is None:  # the last axis holds n//2 + 1 bins of an even length n
            lengths = lengths[:-1] + (2 * (lengths[-1] - 1),)
        return pf.irfft(b, inputs, over, lengths, pf.check_norm(name, norm, b), name)
    return _transform(build, name, a, out)


def _one(n: Any) -> Any:
    return None if n is None else (n,)


@_fft_function(np.fft.fft)
def fft(a: Any, n: Any = None, axis: int = -1, norm: Any = None, out: Any = None) -> Any:
    return _c2c("fft", False, a, _one(n), (axis,), norm, out)


@_fft_function(np.fft.ifft)
def ifft(a: Any, n: Any = None, axis: int = -1, norm: Any = None, out: Any = None) -> Any:
    return _c2c("ifft", True, a, _one(n), (axis,), norm, out)


@_fft_function(np.fft.fft2)
def fft2(a: Any, s: Any = None, axes: Sequence[int] = (-2, -1), norm: Any = None,
         out: Any = None) -> Any:
    return _c2c("fft2", False, a, s, axes, norm, out)


@_fft_function(np.fft.ifft2)
def ifft2(a: Any, s: Any = None, axes: Sequence[int] = (-2, -1), norm: Any = None,
          out: Any = None) -> Any:
    return _c2c("ifft2", True, a, s, axes, norm, out)


@_fft_function(np.fft.fftn)
def fftn(a: Any, s: Any = None, axes: Any = None, norm: Any = None, out: Any = None) -> Any:
    return _c2c("fftn", False, a, s, axes, norm, out)


@_fft_function(np.fft.ifftn)
def ifftn(a: Any, s: Any = None, axes: Any = None, norm: Any = None, out: Any = None) -> Any:
    return _c2c("ifftn", True, a, s, axes, norm, out)


@_fft_function(np.fft.rfft)
def rfft(a: Any, n: Any = None, axis: int = -1, norm: Any = None, out: Any = None) -> Any:
    return _r2c("rfft", a, _one(n), (axis,), norm, out)


@_fft_function(np.fft.rfft2)
def rfft2(a: Any, s: Any = None, axes: Sequence[int] = (-2, -1), norm: Any = None,
          out: Any = None) -> Any:
    return _r2c("rfft2", a, s, axes, norm, out)


@_fft_function(np.fft.rfftn)
def rfftn(a: Any, s: Any = None, axes: Any = None, norm: Any = None, out: Any = None) -> Any:
    return _r2c("rfftn", a, s, axes, norm, out)


@_fft_function(np.fft.irfft)
def irfft(a: Any, n: Any = None, axis: int = -1, norm: Any = None, out: Any = None) -> Any:
    return _c2r("irfft", a, _one(n), (axis,), norm, out)


@_fft_function(np.fft.irfft2)
def irfft2(a: Any, s: Any = None, axes: Sequence[int] = (-2, -1), norm: Any = None,
           out: Any = None) -> Any:
    return _c2r("irfft2", a, s, axes, norm, out)


@_fft_function(np.fft.irfftn)
def irfftn(a: Any, s: Any = None, axes: Any = None, norm: Any = None, out: Any = None) -> Any:
    return _c2r("irfftn", a, s, axes, norm, out)


def _shifted(x: Any, axes: Any, sign: int) -> Any:
    axes = tuple(range(x.ndim)) if axes is None else (
        (axes,) if isinstance(axes, (int, np.integer)) else tuple(axes))
    shifts = tuple(sign * (x.shape[a] // 2) for a in axes)
    return np.roll(x, shifts, axes)


@_fft_function(np.fft.fftshift)
def fftshift(x: Any, axes: Any = None) -> Any:
    """The zero frequency moved to the middle: a roll by n//2 along each axis."""
    return _shifted(x, axes, 1)


@_fft_function(np.fft.ifftshift)
def ifftshift(x: Any, axes: Any = None) -> Any:
    return _shifted(x, axes, -1)


@_fft_function(np.fft.hfft)
def hfft(a: Any, n: Any = None, axis: int = -1, norm: Any = None, out: Any = None) -> Any:
    """The real transform of a Hermitian-symmetric signal given by its first half: numpy's
    own definition, irfft(conj(a)) with the opposite normalisation."""
    b = _builder_of((getattr(a, "re", a),))
    norm = pf.ADJOINT_NORM[pf.check_norm("hfft", norm, b)]
    return irfft(np.conj(a), n, axis, norm, out)


@_fft_function(np.fft.ihfft)
def ihfft(a: Any, n: Any = None, axis: int = -1, norm: Any = None, out: Any = None) -> Any:
    """The inverse of hfft: conj(rfft(a)) with the opposite normalisation, as numpy."""
    b = _builder_of((getattr(a, "re", a),))
    return np.conj(rfft(a, n, axis, pf.ADJOINT_NORM[pf.check_norm("ihfft", norm, b)], out))
