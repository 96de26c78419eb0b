"""numpy text of the numpy.fft ops: numpy's own call, with only the arguments that differ
from numpy's defaults; a complex operand given by its parts is `re + 1j*im`, a complex result
is `_parts(...)` (its parts stacked on a last axis, ir/fft.py). Part of printer.py's
`STRUCTURAL` table."""
from __future__ import annotations

from typing import Callable, Sequence

from ...ir.graph import Node


def _operand(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else f"{parts[0]} + 1j*{parts[1]}"


def _call(node: Node, function: str, parts: Sequence[str], default_s: tuple[int, ...]) -> str:
    """np.fft.<function>[2|n](operand, n/s=, axis/axes=, norm=)."""
    axes, s, norm = node.param("axes"), node.param("s"), node.param("norm")
    ndim = node.inputs[0].ndim
    arguments = [_operand(parts)]
    if len(axes) == 1:
        if s != default_s:
            arguments.append(f"n={s[0]}")
        if axes[0] != ndim - 1:
            arguments.append(f"axis={axes[0]}")
        name = function
    else:
        name = function + ("2" if axes == (ndim - 2, ndim - 1) else "n")
        if s != default_s:
            arguments.append(f"s={s}")
        # (numpy 2 deprecates s= without axes= for the n-dimensional functions)
        if name.endswith("n") and (axes != tuple(range(ndim)) or s != default_s):
            arguments.append(f"axes={axes}")
    if norm != "backward":
        arguments.append(f"norm={norm!r}")
    return f"np.fft.{name}({', '.join(arguments)})"


def _lengths(node: Node) -> tuple[int, ...]:
    return tuple(node.inputs[0].shape[a] for a in node.param("axes"))


def _fft(node: Node, *parts: str) -> str:
    function = "ifft" if node.param("inverse") else "fft"
    return f"_parts({_call(node, function, parts, _lengths(node))})"


def _rfft(node: Node, x: str) -> str:
    return f"_parts({_call(node, 'rfft', [x], _lengths(node))})"


def _irfft(node: Node, *parts: str) -> str:
    lengths = _lengths(node)
    return _call(node, "irfft", parts, lengths[:-1] + (2 * (lengths[-1] - 1),))


FFT_STRUCTURAL: dict[str, Callable[..., str]] = {
    "fft": _fft,
    "rfft": _rfft,
    "irfft": _irfft,
}

FFT_HELPERS = {"fft": "parts", "rfft": "parts"}
