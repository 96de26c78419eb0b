"""Vector-Jacobian products of numpy.fft: each transform is linear, its VJP the adjoint map.

With the real inner product <u, v> = sum(Re u Re v + Im u Im v) on complex values (their
parts), the adjoint of a complex-linear map is its conjugate transpose:
- fft / ifft over `axes`: the opposite transform with the adjoint normalisation
  (backward <-> forward, ortho stays), then each axis cropped or zero-padded back to the
  input's length (the adjoint of numpy's zero-padding is cropping, and of cropping padding);
- rfft: the half spectrum stands for the full one, so its adjoint is irfft (which doubles each
  bin with a conjugate mirror) of g divided by those weights (1 at the zero frequency and at
  n/2 for even n, else 2), adjoint-normalised, resized back;
- irfft: the weights times the rfft of g, adjoint-normalised, resized back to the input's
  half length (bins past s//2 + 1 are not read: gradient 0; the imaginary parts of the zero
  and n/2 bins are not read either, and rfft gives them 0).
All in the same three ops, so derivatives differentiate again (Hessians of spectral losses).
"""
from __future__ import annotations

from typing import Callable

from ..ir import fft as pf
from ..ir import primitives as prim
from ..ir.graph import Builder, Node

VjpRule = Callable[[Builder, Node, Node, int], Node]


def _zeros_like(b: Builder, x: Node) -> Node:
    return prim.broadcast_to(b, prim.constant(b, 0, x.dtype), x.shape)


def _placed_part(g: Node) -> tuple[int, Node] | None:
    """(j, x) when g is zeros with x placed as part j (`unslice`, the adjoint of one part)."""
    if g.op != "unslice":
        return None
    *rest, last = g.param("index")
    full = all(e == ("s", 0, d, 1) for e, d in zip(rest, g.shape[:-1]))
    return (last[1], g.inputs[0]) if full and last[0] == "i" else None


def split(b: Builder, g: Node) -> list[Node | None]:
    """The adjoint of a packed transform as its two parts (None: zero). The adjoints of the
    parts arrive placed into zeros and added; reading them back directly keeps the generated
    code free of that round trip."""
    placed = [_placed_part(g)] if g.op == "unslice" else (
        [_placed_part(i) for i in g.inputs] if g.op == "add" else [None])
    if all(p is not None for p in placed) and len({j for j, _ in placed}) == len(placed):
        found: list[Node | None] = [None, None]
        for j, x in placed:
            found[j] = prim.broadcast_to(b, x, g.shape[:-1])
        return found
    return list(pf.parts(b, g))


def _operands(b: Builder, g: Node) -> list[Node]:
    """The operands of the adjoint transform: (re,) when the imaginary part is zero."""
    re, im = split(b, g)
    return [re] if im is None else [re if re is not None else _zeros_like(b, im), im]


def _lengths(x: Node, axes: tuple[int, ...]) -> list[int]:
    return [x.shape[a] for a in axes]


def _fft_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    axes, s = node.param("axes"), node.param("s")
    adjoint = pf.fft(b, _operands(b, g), axes, s, pf.ADJOINT_NORM[node.param("norm")],
                     not node.param("inverse"))
    return pf.resized(b, pf.parts(b, adjoint)[k], axes, _lengths(node.inputs[k], axes))


def _rfft_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    axes, s = node.param("axes"), node.param("s")
    x = node.inputs[0]
    weights = pf.halved_weights(s[-1], x.ndim, axes[-1], x.dtype)
    halved = [prim.elementwise(b, "multiply", part, prim.constant(b, 1 / weights))
              for part in _operands(b, g)]
    adjoint = pf.irfft(b, halved, axes, s, pf.ADJOINT_NORM[node.param("norm")])
    return pf.resized(b, adjoint, axes, _lengths(x, axes))


def _irfft_vjp(b: Builder, node: Node, g: Node, k: int) -> Node:
    axes, s = node.param("axes"), node.param("s")
    x = node.inputs[k]
    spectrum = pf.rfft(b, g, axes, s, pf.ADJOINT_NORM[node.param("norm")])
    weights = prim.constant(b, pf.halved_weights(s[-1], x.ndim, axes[-1], x.dtype))
    part = prim.elementwise(b, "multiply", pf.parts(b, spectrum)[k], weights)
    return pf.resized(b, part, axes, _lengths(x, axes))


FFT_VJP_RULES: dict[str, VjpRule] = {
    "fft": _fft_vjp,
    "rfft": _rfft_vjp,
    "irfft": _irfft_vjp,
}
