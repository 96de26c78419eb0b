"""Every row of docs/conventions.md, checked exactly (NaN where NaN, the sign of zero included)
against PyTorch 2.13, or, for the rows where we deviate on purpose, against the documented
values of both. The upstream gradient is 1 (the gradient of a sum)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import scipy.special as sc
import torch

import symgrad as sg

T = torch
NAN, INF = np.nan, np.inf
DOC = Path(__file__).resolve().parent.parent / "docs" / "conventions.md"


@dataclass(frozen=True)
class Row:
    numpy: Callable
    torch: Callable
    points: list[tuple[float, ...]]  # operand values, one tuple per point
    # Rows where we deviate: our gradients (one list per operand) and PyTorch's, as documented.
    ours: list[list[float]] | None = None
    theirs: list[list[float]] | None = None


ZEROS = [(0.0,), (-0.0,)]
TIES = [(1.0, 1.0), (0.0, 0.0), (-0.0, 0.0), (-2.5, -2.5)]

ROWS: dict[str, Row] = {
    "abs-at-zero": Row(np.abs, T.abs, ZEROS + [(1.0,), (-1.0,)]),
    "sign": Row(lambda x: np.sign(x) + x, lambda x: T.sign(x) + x, ZEROS + [(2.0,), (-3.0,)]),
    "maximum-tie": Row(np.maximum, T.maximum, TIES + [(1.0, 2.0)]),
    "minimum-tie": Row(np.minimum, T.minimum, TIES + [(1.0, 2.0)]),
    "relu-as-maximum": Row(lambda x: np.maximum(x, 0.0),
                           lambda x: T.maximum(x, T.zeros_like(x)), ZEROS + [(1.0,)]),
    "fmax-tie-and-nan": Row(np.fmax, T.fmax, TIES + [(NAN, 1.0), (1.0, NAN), (NAN, NAN)]),
    "fmin-tie-and-nan": Row(np.fmin, T.fmin, TIES + [(NAN, 1.0), (1.0, NAN), (NAN, NAN)]),
    "clip-at-bounds": Row(np.clip, T.clamp, [
        (x, lo, hi) for x in (-1.0, 0.0, 0.5, 1.0, 2.0) for lo in (0.0, 1.0)
        for hi in (0.0, 1.0)] + [(NAN, 0.0, 1.0)]),
    "clip-one-bound": Row(lambda x: np.clip(x, 0.0, None) + x.clip(None, 1.0),
                          lambda x: T.clamp(x, min=0.0) + T.clamp(x, max=1.0),
                          [(0.0,), (1.0,), (-1.0,), (2.0,), (0.5,)]),
    "power-base-zero": Row(np.power, T.pow, [
        (x, y) for x in (0.0, -0.0) for y in (0.0, 0.5, 1.0, 2.0, 3.0, -1.0, -0.5)]),
    "power-exponent-constant": Row(lambda x: x ** 0.5 + x ** 2 + x ** 1 + x ** 0,
                                   lambda x: x ** 0.5 + x ** 2 + x ** 1 + x ** 0, ZEROS),
    "power-base-constant": Row(lambda y: 0.0 ** y + 2.0 ** y, lambda y: 0.0 ** y + 2.0 ** y,
                               [(0.0,), (1.0,), (-1.0,)]),
    "arctan2-origin": Row(np.arctan2, T.atan2, [(0.0, 0.0), (-0.0, 0.0), (0.0, -0.0),
                                                 (-0.0, -0.0), (1.0, 0.0), (0.0, -1.0)]),
    "hypot-origin": Row(np.hypot, T.hypot, [(0.0, 0.0), (-0.0, 0.0), (3.0, 4.0)],
                        ours=[[0.0, 0.0, 0.6], [0.0, 0.0, 0.8]],
                        theirs=[[NAN, NAN, 0.6], [NAN, NAN, 0.8]]),
    "rounding": Row(lambda x: np.floor(x) + np.ceil(x) + np.rint(x) + np.trunc(x) + np.round(x),
                    lambda x: T.floor(x) + T.ceil(x) + 2 * T.round(x) + T.trunc(x),
                    [(0.0,), (0.5,), (1.0,), (-1.5,), (2.5,)]),
    "sqrt-at-zero": Row(np.sqrt, T.sqrt, ZEROS + [(4.0,)]),
    "where-unselected-branch": Row(
        lambda x: np.where(x > 0, np.sqrt(x), 0.0), lambda x: T.where(x > 0, T.sqrt(x), 0.0),
        [(-1.0,), (0.0,), (4.0,)], ours=[[0.0, 0.0, 0.25]], theirs=[[NAN, NAN, 0.25]]),
    "comparisons": Row(lambda x, y: np.where(x > y, x, 2 * y) * (x == y),
                       lambda x, y: T.where(x > y, x, 2 * y) * (x == y),
                       [(1.0, 1.0), (1.0, 2.0), (2.0, 1.0)]),
    "xlogy-at-zero": Row(sc.xlogy, T.xlogy,
                         [(0.0, 0.0), (0.0, 2.0), (1.0, 0.0), (2.0, 3.0), (0.0, -1.0)],
                         ours=[[0.0, np.log(2.0), -INF, np.log(3.0), 0.0],
                               [0.0, 0.0, INF, 2 / 3, -0.0]],
                         theirs=[[0.0, np.log(2.0), -INF, np.log(3.0), 0.0],
                                 [NAN, 0.0, INF, 2 / 3, -0.0]]),
    "xlog1py-at-zero": Row(sc.xlog1py, T.special.xlog1py,
                           [(0.0, -1.0), (0.0, 3.0), (1.0, -1.0), (0.0, -2.0)],
                           ours=[[0.0, np.log1p(3.0), -INF, 0.0], [0.0, 0.0, INF, -0.0]],
                           theirs=[[0.0, np.log1p(3.0), -INF, 0.0], [NAN, 0.0, INF, -0.0]]),
    "log-at-zero": Row(np.log, T.log, ZEROS + [(1.0,)]),
}


def _ours(row: Row, args: list[np.ndarray]) -> list[np.ndarray]:
    n = len(args)
    fn = {1: lambda a: row.numpy(a), 2: lambda a, b: row.numpy(a, b),
          3: lambda a, b, c: row.numpy(a, b, c)}[n]
    with np.errstate(all="ignore"):
        cotangent = np.ones(np.broadcast_shapes(*[a.shape for a in args]))
        _, pullback = sg.vjp(fn, *args, wrt=tuple(range(n)))
        grads = pullback(cotangent)
    return [np.asarray(g) for g in grads]


def _theirs(row: Row, args: list[np.ndarray]) -> list[np.ndarray]:
    tensors = [torch.tensor(a, requires_grad=True) for a in args]
    out = row.torch(*tensors)
    grads = torch.autograd.grad(out, tensors, torch.ones_like(out), allow_unused=True)
    return [np.zeros(a.shape) if g is None else g.numpy() for g, a in zip(grads, args)]


def _exactly_equal(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    same_zero_sign = np.array_equal(np.signbit(a[a == 0]), np.signbit(b[b == 0]))
    return np.array_equal(a, b, equal_nan=True) and same_zero_sign


def test_every_documented_row_is_checked_and_every_checked_row_documented():
    table = DOC.read_text().split("\n## ")[0]  # the conventions table comes first
    documented = re.findall(r"^\| `([a-z0-9-]+)` \|", table, flags=re.M)
    assert sorted(documented) == sorted(ROWS)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_convention(name: str):
    row = ROWS[name]
    args = [np.array(column, dtype=np.float64) for column in zip(*row.points)]
    ours, theirs = _ours(row, args), _theirs(row, args)
    if row.ours is None:
        for k, (g, t) in enumerate(zip(ours, theirs)):
            assert _exactly_equal(g, t), f"operand {k}: ours {g.tolist()}, torch {t.tolist()}"
        return
    for k, (g, t) in enumerate(zip(ours, theirs)):
        assert _exactly_equal(g, row.ours[k]), f"operand {k}: ours {g.tolist()}"
        assert _exactly_equal(t, row.theirs[k]), f"operand {k}: torch {t.tolist()}"
