"""Einstein summation: the one contraction primitive behind einsum, dot, inner, outer,
tensordot, trace and diagonal (matmul keeps its own op).

Subscripts are stored explicit ("ij,jk->ik"): ellipses are expanded into letters and an
implicit output is made explicit at trace time, so every stage sees one form. Operands whose
dimensions only broadcast (size 1 against n) are broadcast first: einsum nodes contract
operands of equal dimensions. The VJP of an einsum is again an einsum (see vjp_rules.py).
"""
from __future__ import annotations

import string
from typing import Sequence

import numpy as np

from ..errors import ShapeError
from .graph import Builder, Node
from .primitives import astype, broadcast_to, elementwise, reduce_sum, reshape, transpose

LETTERS = string.ascii_letters


def _where(b: Builder) -> str | None:
    return str(b.site) if b.site else None


def parse(subscripts: str) -> tuple[list[str], str]:
    """Explicit subscripts "ab,bc->ac" as (["ab", "bc"], "ac")."""
    inputs, output = subscripts.split("->")
    return inputs.split(","), output


def explicit_subscripts(spec: str, shapes: Sequence[tuple[int, ...]],
                        where: str | None) -> tuple[list[str], str]:
    """numpy's einsum spec (with '...', implicit output) as explicit letter subscripts."""
    spec = spec.replace(" ", "")
    inputs_text, arrow, output = spec.partition("->")
    inputs = inputs_text.split(",")
    ndims = [len(s) for s in shapes]
    if len(inputs) != len(ndims):
        raise ShapeError("einsum", shapes, f"{spec!r} names {len(inputs)} operands, "
                         f"{len(ndims)} were given", where)
    used = set(spec) & set(LETTERS)
    for char in set(spec) - set(LETTERS) - set(",->."):
        raise ShapeError("einsum", shapes, f"invalid subscript {char!r} in {spec!r}", where)
    spare = [c for c in LETTERS if c not in used]
    broadcast_rank = 0
    for text, ndim in zip(inputs, ndims):
        letters = len(text.replace("...", ""))
        if "..." in text:
            broadcast_rank = max(broadcast_rank, ndim - letters)
        elif letters != ndim:
            raise ShapeError("einsum", shapes, f"operand subscripts {text!r} do not match an "
                             f"operand of {ndim} dims", where)
    ellipsis = "".join(spare[:broadcast_rank])
    expanded = []
    for text, ndim in zip(inputs, ndims):
        if "..." in text:
            own = ndim - len(text.replace("...", ""))
            if own < 0:
                raise ShapeError("einsum", shapes, f"operand subscripts {text!r} do not match "
                                 f"an operand of {ndim} dims", where)
            text = text.replace("...", ellipsis[broadcast_rank - own:])
        expanded.append(text)
    if arrow:
        output = output.replace("...", ellipsis)
    else:
        counts = {c: "".join(expanded).count(c) for c in set("".join(expanded))}
        output = ellipsis + "".join(sorted(c for c, n in counts.items()
                                           if n == 1 and c not in ellipsis))
    if len(set(output)) != len(output) or not set(output) <= set("".join(expanded)):
        raise ShapeError("einsum", shapes, f"output subscripts {output!r} must be distinct "
                         "letters of the operands", where)
    return expanded, output


def letter_sizes(inputs: Sequence[str], operands: Sequence[Node],
                 where: str | None) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for text, x in zip(inputs, operands):
        for letter, d in zip(text, x.shape):
            if sizes.get(letter, 1) == 1:
                sizes[letter] = d
            elif d not in (1, sizes[letter]):
                raise ShapeError("einsum", [o.shape for o in operands],
                                 f"dimension {letter!r} is {sizes[letter]} and {d}", where)
    return sizes


def einsum(b: Builder, inputs: Sequence[str], output: str, operands: Sequence[Node]) -> Node:
    """The contraction inputs -> output (explicit letters) of `operands`."""
    where = _where(b)
    sizes = letter_sizes(inputs, operands, where)
    dtype = np.result_type(*[np.empty(0, x.dtype) for x in operands]).name
    prepared = []
    for text, x in zip(inputs, operands):
        for letter in set(text):
            dims = {x.shape[i] for i, c in enumerate(text) if c == letter}
            if len(dims) > 1:
                raise ShapeError("einsum", [o.shape for o in operands], f"repeated subscript "
                                 f"{letter!r} in {text!r} spans dimensions {sorted(dims)}", where)
        full = tuple(sizes[c] for c in text)
        prepared.append(broadcast_to(b, astype(b, x, dtype), full))
    scalars = [x for text, x in zip(inputs, prepared) if not text]
    if scalars and len(scalars) < len(prepared):  # 0-d operands are plain factors
        rest = [(t, x) for t, x in zip(inputs, prepared) if t]
        product = einsum(b, [t for t, _ in rest], output, [x for _, x in rest])
        for factor in scalars:
            product = elementwise(b, "multiply", product, factor)
        return product
    if len(prepared) == 1:
        simpler = _single_operand(b, inputs[0], output, prepared[0])
        if simpler is not None:
            return simpler
    elif _is_elementwise_product(inputs, output):
        aligned = [_aligned(b, text, output, x) for text, x in zip(inputs, prepared)]
        product = aligned[0]
        for factor in aligned[1:]:
            product = elementwise(b, "multiply", product, factor)
        return broadcast_to(b, product, tuple(sizes[c] for c in output))
    shape = tuple(sizes[c] for c in output)
    subscripts = ",".join(inputs) + "->" + output
    return b.node("einsum", prepared, {"subscripts": subscripts}, shape, dtype)


def _is_elementwise_product(inputs: Sequence[str], output: str) -> bool:
    """Nothing summed and no diagonal: a broadcast product (np.outer excepted, it reads well)."""
    if len(inputs) == 2 and all(len(t) == 1 for t in inputs) and inputs[0] != inputs[1]:
        return False
    return all(len(set(t)) == len(t) and set(t) <= set(output) for t in inputs)


def _aligned(b: Builder, text: str, output: str, x: Node) -> Node:
    """`x` (subscripts `text`) transposed and given unit axes to broadcast against `output`."""
    order = sorted(range(len(text)), key=lambda i: output.index(text[i]))
    moved = transpose(b, x, order)
    present = {text[i]: moved.shape[n] for n, i in enumerate(order)}
    return reshape(b, moved, [present.get(c, 1) for c in output])


def _single_operand(b: Builder, text: str, output: str, x: Node) -> Node | None:
    """Sums and transposes written as einsum become those ops (None: a real einsum)."""
    if len(set(text)) != len(text):
        return None  # a diagonal
    summed = tuple(i for i, c in enumerate(text) if c not in output)
    reduced = reduce_sum(b, x, summed) if summed else x
    remaining = [c for c in text if c in output]
    return transpose(b, reduced, [remaining.index(c) for c in output])


def fresh_letters(used: str, count: int) -> str:
    return "".join([c for c in LETTERS if c not in used][:count])


def index_letters(ndim: int) -> str:
    """Subscripts for the axes of an array, as people write them: 'ij', 'ijk', ..."""
    return "ijklmnopqrstuvwxyzabcdefgh"[:ndim]
