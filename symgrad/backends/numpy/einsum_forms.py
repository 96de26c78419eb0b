"""The most readable numpy spelling of an einsum: `a @ b.T`, `np.outer(a, b)`, `np.trace(a)`,
`np.tensordot(a, b, axes=2)`, and `np.einsum(...)` only when nothing plainer says it.

`readable_einsum(inputs, output, names)` returns code text; it is pure string work on the
subscripts, used by the printer. What a spelling is (`spelled_infix`: an operator outside
brackets; `unary_view`: a view of the operand) is decided on the subscripts too, never by
reading the text back.
"""
from __future__ import annotations

from typing import Callable, Sequence


def readable_einsum(inputs: Sequence[str], output: str, names: Sequence[str]) -> str:
    form = _form(inputs, output)
    if form is not None:
        return form(inputs, output, names)
    optimize = ", optimize=True" if len(inputs) > 2 else ""
    return f"np.einsum({','.join(inputs) + '->' + output!r}, {', '.join(names)}{optimize})"


def _form(inputs: Sequence[str], output: str) -> Callable[..., str | None] | None:
    """The first plain spelling that says this einsum, if any."""
    names = [f"_{k}" for k in range(len(inputs))]
    for form in (_unary_form, _vdot_form, _matmul_form, _outer_form, _tensordot_form):
        if form(inputs, output, names) is not None:
            return form
    return None


def spelled_infix(inputs: Sequence[str], output: str) -> bool:
    """Whether the spelling is a matrix product `a @ b`: it binds like `*` in an expression."""
    return _form(inputs, output) is _matmul_form


def unary_view(inputs: Sequence[str], output: str) -> tuple[bool, bool]:
    """(may share memory with its operand, may be read-only) for a one-operand einsum. Summing
    no letter away is a view in numpy (`np.einsum('ij->ji', a)`, `np.diagonal`); the diagonal
    of np.diagonal is read-only."""
    (letters,) = inputs
    view = set(letters) == set(output)
    return view, view and len(set(letters)) < len(letters)


def _unary_form(inputs: Sequence[str], output: str, names: Sequence[str]) -> str | None:
    if len(inputs) != 1 or len(inputs[0]) != 2 or inputs[0][0] != inputs[0][1]:
        return None
    if output == "":
        return f"np.trace({names[0]})"
    if output == inputs[0][0]:
        return f"np.diagonal({names[0]})"
    return None


def _vdot_form(inputs: Sequence[str], output: str, names: Sequence[str]) -> str | None:
    """A full contraction of two equally-lettered operands: the sum of their product."""
    if len(inputs) == 2 and inputs[0] == inputs[1] and len(inputs[0]) > 1 and not output \
            and len(set(inputs[0])) == len(inputs[0]):
        return f"np.vdot({names[0]}, {names[1]})"
    return None


def _outer_form(inputs: Sequence[str], output: str, names: Sequence[str]) -> str | None:
    if len(inputs) == 2 and all(len(t) == 1 for t in inputs) and output == inputs[0] + inputs[1] \
            and inputs[0] != inputs[1]:
        return f"np.outer({names[0]}, {names[1]})"
    return None


def _matrix(name: str, text: str, batch: str, rows: str, cols: str) -> str | None:
    """`name` (subscripts `text`) as the matrix [batch..., rows, cols] in matmul terms."""
    if text == batch + rows + cols:
        return name
    if len(rows) == 1 and len(cols) == 1 and text == batch + cols + rows:
        return f"{name}.T" if not batch else f"np.swapaxes({name}, -1, -2)"
    return None


def _matmul_form(inputs: Sequence[str], output: str, names: Sequence[str]) -> str | None:
    """Two operands, one contracted letter, batch letters leading and shared by all three."""
    if len(inputs) != 2:
        return None
    a, b = inputs
    contracted = [c for c in a if c in b and c not in output]
    if len(contracted) != 1 or len(set(a + b)) != len(a) + len(b) - len(set(a) & set(b)):
        return None
    c = contracted[0]
    batch = "".join(ch for ch in output if ch in a and ch in b)
    if not (a.startswith(batch) and b.startswith(batch) and output.startswith(batch)):
        return None
    free_a = [ch for ch in a if ch not in b]
    free_b = [ch for ch in b if ch not in a]
    if len(free_a) > 1 or len(free_b) > 1 or set(a + b) - set(output) != {c}:
        return None
    if batch and (not free_a or not free_b):
        return None
    fa, fb = "".join(free_a), "".join(free_b)
    if output == batch + fa + fb:
        left = _matrix(names[0], a, batch, fa, c) if fa else (names[0] if a == c else None)
        right = _matrix(names[1], b, batch, c, fb) if fb else (names[1] if b == c else None)
    elif output == batch + fb + fa:  # (a @ b).T written as b' @ a'
        left = _matrix(names[1], b, batch, fb, c) if fb else (names[1] if b == c else None)
        right = _matrix(names[0], a, batch, c, fa) if fa else (names[0] if a == c else None)
    else:
        return None
    if left is None or right is None:
        return None
    return f"{left} @ {right}"


def _tensordot_form(inputs: Sequence[str], output: str, names: Sequence[str]) -> str | None:
    if len(inputs) != 2:
        return None
    a, b = inputs
    if len(set(a)) != len(a) or len(set(b)) != len(b):
        return None
    contracted = [ch for ch in a if ch in b]
    if any(ch in output for ch in contracted):
        return None
    free = "".join(ch for ch in a if ch not in b) + "".join(ch for ch in b if ch not in a)
    if output != free or not contracted:
        return None
    n = len(contracted)
    if a.endswith("".join(contracted)) and b.startswith("".join(contracted)):
        return f"np.tensordot({names[0]}, {names[1]}, axes={n})"
    axes_a = tuple(a.index(ch) for ch in contracted)
    axes_b = tuple(b.index(ch) for ch in contracted)
    return f"np.tensordot({names[0]}, {names[1]}, axes=({axes_a}, {axes_b}))"
