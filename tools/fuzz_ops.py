"""The differential fuzzer's op table: each op once, as the numpy text a user writes and the
PyTorch text that computes the same thing (the oracle), with how to choose its static
arguments for given operand shapes. `tools/fuzz.py` builds random programs from these rows.

Domains are kept inside the templates (`np.log(x*x + 1)`), so that programs stay finite on
normal inputs and differences are bugs, not a NaN in both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Shape = tuple
Params = Callable[[np.random.Generator, list[Shape]], "dict | None"]


@dataclass(frozen=True)
class FuzzOp:
    name: str
    arity: int
    numpy: str  # format string over a, b (operand names) and the params
    torch: str
    params: Params | None = None
    family: str = "elementwise"
    float32: bool = True  # also fuzzed in float32


def _axis(rng: np.random.Generator, shapes: list[Shape]) -> dict | None:
    """A reduction's axis (None, one axis, or a tuple) and keepdims."""
    ndim = len(shapes[0])
    keep = bool(rng.integers(2))
    choice = rng.integers(3) if ndim else 0
    if choice == 0:
        axes = tuple(range(ndim))
        np_axis = "None"
    elif choice == 1:
        axis = int(rng.integers(-ndim, ndim))
        axes, np_axis = (axis % ndim,), str(axis)
    else:
        picked = sorted(set(int(a) for a in rng.integers(0, ndim, size=2)))
        axes, np_axis = tuple(picked), str(tuple(picked))
    return {"axis": np_axis, "dims": str(axes), "axes": axes, "keep": keep,
            "nonempty": all(shapes[0][a] > 0 for a in axes)}


def _nonempty_axis(rng: np.random.Generator, shapes: list[Shape]) -> dict | None:
    chosen = _axis(rng, shapes)
    return chosen if chosen["nonempty"] and len(shapes[0]) else None


def _one_axis(rng: np.random.Generator, shapes: list[Shape]) -> dict | None:
    ndim = len(shapes[0])
    if not ndim:
        return None
    axis = int(rng.integers(-ndim, ndim))
    return {"axis": axis, "dim": axis}


def _one_axis_kept(rng: np.random.Generator, shapes: list[Shape]) -> dict | None:
    chosen = _one_axis(rng, shapes)
    return None if chosen is None else {**chosen, "keep": bool(rng.integers(2))}


def _spread_axis(rng: np.random.Generator, shapes: list[Shape]) -> dict | None:
    """An axis of two or more elements (a spread of one element has no gradient)."""
    chosen = _nonempty_axis(rng, shapes)
    if chosen is None or int(np.prod([shapes[0][a] for a in chosen["axes"]])) < 2:
        return None
    return chosen


def _has_axes(rng: np.random.Generator, shapes: list[Shape]) -> dict | None:
    return {} if shapes[0] else None


def _perm(rng: np.random.Generator, shapes: list[Shape]) -> dict | None:
    ndim = len(shapes[0])
    perm = tuple(int(p) for p in rng.permutation(ndim))
    return {"perm": str(perm)} if ndim >= 2 else None


def _broadcast_target(rng: np.random.Generator, shapes: list[Shape]) -> dict | None:
    shape = shapes[0]
    target = [d if d != 1 else int(rng.integers(1, 4)) for d in shape]
    if rng.integers(2) and len(target) < 3:
        target = [int(rng.integers(1, 4))] + target
    return {"shape": str(tuple(target))}


def _reshape_target(rng: np.random.Generator, shapes: list[Shape]) -> dict | None:
    shape = shapes[0]
    size = int(np.prod(shape))
    options = [(size,), (1, size), (size, 1)]
    if size and size % 2 == 0:
        options.append((2, size // 2))
    if len(shape) >= 2:
        options.append(tuple(shape[::-1]) if shape[0] == shape[-1] else (shape[0], -1))
    target = options[int(rng.integers(len(options)))]
    return {"shape": str(tuple(target))}


def _slice(rng: np.random.Generator, shapes: list[Shape]) -> dict | None:
    shape = shapes[0]
    if not shape or shape[0] < 2:
        return None
    forms = ["1:", "::2", ":-1", "1::2", "0"]  # torch has no negative steps: see "flip"
    return {"index": forms[int(rng.integers(len(forms)))]}


def _concat_axis(rng: np.random.Generator, shapes: list[Shape]) -> dict | None:
    a, b = shapes
    if len(a) != len(b) or not a:
        return None
    axis = int(rng.integers(len(a)))
    if any(x != y for k, (x, y) in enumerate(zip(a, b)) if k != axis):
        return None
    return {"axis": axis}


def _power(rng: np.random.Generator, shapes: list[Shape]) -> dict | None:
    return {"p": int(rng.choice([2, 3, 4]))}


def _constant(rng: np.random.Generator, shapes: list[Shape]) -> dict | None:
    value = float(rng.choice([0.5, 2.0, 3.0, -1.5, 0.1, 1e-3]))
    return {"c": repr(value)}


def _matrix_pair(rng: np.random.Generator, shapes: list[Shape]) -> dict | None:
    a, b = shapes
    ok = len(a) >= 1 and len(b) >= 1 and a[-1] == (b[-2] if len(b) >= 2 else b[0])
    return {} if ok and len(a) <= 2 and len(b) <= 2 else None


def _same_vector(rng: np.random.Generator, shapes: list[Shape]) -> dict | None:
    a, b = shapes
    return {} if len(a) == 1 and a == b else None


def _vectors(rng: np.random.Generator, shapes: list[Shape]) -> dict | None:
    return {} if len(shapes[0]) == 1 and len(shapes[1]) == 1 else None


def _last_axes_match(rng: np.random.Generator, shapes: list[Shape]) -> dict | None:
    a, b = shapes
    return {} if a and b and a[-1] == b[-1] and len(a) <= 2 and len(b) <= 2 else None


def _square(rng: np.random.Generator, shapes: list[Shape]) -> dict | None:
    return {} if len(shapes[0]) == 2 else None


def _einsum_pair(rng: np.random.Generator, shapes: list[Shape]) -> dict | None:
    a, b = shapes
    if len(a) == 2 and len(b) == 2 and a[1] == b[0]:
        return {"spec": repr(["ij,jk->ik", "ij,jk->ki", "ij,jk->i", "ij,jk->"][
            int(rng.integers(4))])}
    if len(a) == 2 and len(b) == 2 and a == b:
        return {"spec": repr(["ij,ij->i", "ij,ij->", "ij,ij->ij", "ij,ij->ji"][
            int(rng.integers(4))])}
    return None


def _tensordot(rng: np.random.Generator, shapes: list[Shape]) -> dict | None:
    a, b = shapes
    return {} if a and b and a[-1] == b[0] and len(a) <= 2 and len(b) <= 2 else None


E, R, M, L = "elementwise", "reduction", "movement", "linalg"
OPS: tuple[FuzzOp, ...] = (
    # -- elementwise, unary ------------------------------------------------------------------
    FuzzOp("negative", 1, "-{a}", "-{a}"),
    FuzzOp("exp", 1, "np.exp({a})", "torch.exp({a})"),
    FuzzOp("log", 1, "np.log({a} * {a} + 1.0)", "torch.log({a} * {a} + 1.0)"),
    FuzzOp("log_abs", 1, "np.log(np.abs({a}) + 0.5)", "torch.log(torch.abs({a}) + 0.5)"),
    FuzzOp("sqrt", 1, "np.sqrt({a} * {a} + 0.25)", "torch.sqrt({a} * {a} + 0.25)"),
    FuzzOp("sin", 1, "np.sin({a})", "torch.sin({a})"),
    FuzzOp("cos", 1, "np.cos({a})", "torch.cos({a})"),
    FuzzOp("tanh", 1, "np.tanh({a})", "torch.tanh({a})"),
    FuzzOp("arctan", 1, "np.arctan({a})", "torch.arctan({a})"),
    FuzzOp("sinh", 1, "np.sinh({a})", "torch.sinh({a})"),
    FuzzOp("abs", 1, "np.abs({a})", "torch.abs({a})"),
    FuzzOp("square", 1, "np.square({a})", "torch.square({a})"),
    FuzzOp("power", 1, "{a} ** {p}", "{a} ** {p}", _power),
    FuzzOp("sigmoid", 1, "1.0 / (1.0 + np.exp(-{a}))", "torch.sigmoid({a})"),
    FuzzOp("softplus", 1, "np.log1p(np.exp({a}))", "torch.nn.functional.softplus({a})"),
    FuzzOp("log_sigmoid", 1, "-np.logaddexp(0, -{a})", "torch.nn.functional.logsigmoid({a})"),
    FuzzOp("expm1", 1, "np.expm1({a})", "torch.expm1({a})"),
    FuzzOp("log1p", 1, "np.log1p({a} * {a})", "torch.log1p({a} * {a})"),
    FuzzOp("exp2", 1, "np.exp2({a})", "torch.exp2({a})"),
    FuzzOp("log2", 1, "np.log2({a} * {a} + 1.0)", "torch.log2({a} * {a} + 1.0)"),
    FuzzOp("log10", 1, "np.log10({a} * {a} + 1.0)", "torch.log10({a} * {a} + 1.0)"),
    FuzzOp("clip", 1, "np.clip({a}, -1.0, 1.5)", "torch.clamp({a}, -1.0, 1.5)"),
    FuzzOp("relu", 1, "np.maximum({a}, 0)", "torch.relu({a})"),
    FuzzOp("scale", 1, "{a} * {c}", "{a} * {c}", _constant),
    FuzzOp("shift", 1, "{a} + {c}", "{a} + {c}", _constant),
    FuzzOp("divide_by_constant", 1, "{a} / {c}", "{a} / {c}", _constant),
    FuzzOp("constant_over", 1, "{c} / ({a} * {a} + 1.0)", "{c} / ({a} * {a} + 1.0)",
           _constant),
    FuzzOp("sqrt_of_square", 1, "np.sqrt({a} * {a})", "torch.abs({a})"),
    # -- elementwise, binary (numpy broadcasting) --------------------------------------------
    FuzzOp("add", 2, "{a} + {b}", "{a} + {b}"),
    FuzzOp("subtract", 2, "{a} - {b}", "{a} - {b}"),
    FuzzOp("multiply", 2, "{a} * {b}", "{a} * {b}"),
    FuzzOp("divide", 2, "{a} / ({b} * {b} + 1.0)", "{a} / ({b} * {b} + 1.0)"),
    FuzzOp("maximum", 2, "np.maximum({a}, {b})", "torch.maximum({a}, {b})"),
    FuzzOp("minimum", 2, "np.minimum({a}, {b})", "torch.minimum({a}, {b})"),
    FuzzOp("logaddexp", 2, "np.logaddexp({a}, {b})", "torch.logaddexp({a}, {b})"),
    FuzzOp("logaddexp2", 2, "np.logaddexp2({a}, {b})", "torch.logaddexp2({a}, {b})"),
    FuzzOp("hypot", 2, "np.hypot({a}, {b})", "torch.hypot({a}, {b})"),
    FuzzOp("where", 2, "np.where({a} > {b}, {a} * {b}, {b} - {a})",
           "torch.where({a} > {b}, {a} * {b}, {b} - {a})"),
    FuzzOp("arctan2", 2, "np.arctan2({a}, {b} * {b} + 0.5)",
           "torch.atan2({a}, {b} * {b} + 0.5)"),
    # -- reductions --------------------------------------------------------------------------
    FuzzOp("sum", 1, "np.sum({a}, axis={axis}, keepdims={keep})",
           "torch.sum({a}, dim={dims}, keepdim={keep})", _axis, R),
    FuzzOp("mean", 1, "np.mean({a}, axis={axis}, keepdims={keep})",
           "torch.mean({a}, dim={dims}, keepdim={keep})", _nonempty_axis, R),
    FuzzOp("max", 1, "np.max({a}, axis={axis}, keepdims={keep})",
           "torch.amax({a}, dim={dims}, keepdim={keep})", _nonempty_axis, R),
    FuzzOp("min", 1, "np.min({a}, axis={axis}, keepdims={keep})",
           "torch.amin({a}, dim={dims}, keepdim={keep})", _nonempty_axis, R),
    FuzzOp("prod", 1, "np.prod({a}, axis={axis}, keepdims={keep})",
           "torch.prod({a}, dim={dim}, keepdim={keep})", _one_axis_kept, R),
    FuzzOp("var", 1, "np.var({a}, axis={axis}, keepdims={keep})",
           "torch.var({a}, dim={dims}, keepdim={keep}, correction=0)", _nonempty_axis, R),
    FuzzOp("std", 1, "np.std({a}, axis={axis}, keepdims={keep})",
           "torch.std({a}, dim={dims}, keepdim={keep}, correction=0)", _spread_axis, R),
    FuzzOp("norm", 1, "np.linalg.norm({a}, axis={axis}, keepdims={keep})",
           "torch.linalg.vector_norm({a}, dim={dims}, keepdim={keep})", _nonempty_axis, R),
    FuzzOp("logsumexp", 1, "np.log(np.sum(np.exp({a}), axis={axis}, keepdims={keep}))",
           "torch.logsumexp({a}, dim={dims}, keepdim={keep})", _nonempty_axis, R),
    FuzzOp("softmax", 1, "np.exp({a}) / np.sum(np.exp({a}), axis={axis}, keepdims=True)",
           "torch.exp({a}) / torch.sum(torch.exp({a}), dim={dim}, keepdim=True)",
           _one_axis, R),
    FuzzOp("log_softmax", 1, "{a} - np.log(np.sum(np.exp({a}), axis={axis}, keepdims=True))",
           "torch.log_softmax({a}, dim={dim})", _one_axis, R),
    FuzzOp("cumsum", 1, "np.cumsum({a}, axis={axis})", "torch.cumsum({a}, dim={dim})",
           _one_axis, R),
    # -- movement ----------------------------------------------------------------------------
    FuzzOp("transpose", 1, "np.transpose({a}, {perm})", "{a}.permute({perm})", _perm, M),
    FuzzOp("T", 1, "{a}.T", "{a}.permute(tuple(reversed(range({a}.ndim))))", None, M),
    FuzzOp("reshape", 1, "np.reshape({a}, {shape})", "{a}.reshape({shape})",
           _reshape_target, M),
    FuzzOp("broadcast_to", 1, "np.broadcast_to({a}, {shape})", "{a}.expand({shape})",
           _broadcast_target, M),
    FuzzOp("expand_dims", 1, "{a}[None]", "{a}[None]", None, M),
    FuzzOp("slice", 1, "{a}[{index}]", "{a}[{index}]", _slice, M),
    FuzzOp("flip", 1, "{a}[::-1]", "torch.flip({a}, (0,))", _has_axes, M),
    FuzzOp("concatenate", 2, "np.concatenate([{a}, {b}], axis={axis})",
           "torch.cat([{a}, {b}], dim={axis})", _concat_axis, M),
    # -- linear algebra ----------------------------------------------------------------------
    FuzzOp("matmul", 2, "{a} @ {b}", "{a} @ {b}", _matrix_pair, L),
    FuzzOp("dot", 2, "np.dot({a}, {b})", "torch.matmul({a}, {b})", _matrix_pair, L),
    FuzzOp("inner", 2, "np.inner({a}, {b})", "torch.inner({a}, {b})", _last_axes_match, L),
    FuzzOp("outer", 2, "np.outer({a}, {b})", "torch.outer({a}, {b})", _vectors, L),
    FuzzOp("vdot", 2, "np.vdot({a}, {b})", "torch.dot({a}, {b})", _same_vector, L),
    FuzzOp("einsum", 2, "np.einsum({spec}, {a}, {b})", "torch.einsum({spec}, {a}, {b})",
           _einsum_pair, L),
    FuzzOp("tensordot", 2, "np.tensordot({a}, {b}, 1)", "torch.tensordot({a}, {b}, 1)",
           _tensordot, L),
    FuzzOp("trace", 1, "np.trace({a})", "torch.diagonal({a}).sum()", _square, L),
    FuzzOp("diagonal", 1, "np.diagonal({a})", "torch.diagonal({a})", _square, L),
)
