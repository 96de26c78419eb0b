"""Every elementwise op, from the case table: float64 against central differences and PyTorch
over random shapes and broadcasting, float32 against float64, and an extreme-input sweep in
which our gradient is finite (and agrees) wherever PyTorch's is."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import symgrad as sg
from elementwise_cases import CASE_IDS, CASES, DOMAINS, Case
from gradcheck import central_difference
from symgrad.ir import OPS, Group
from symgrad.autodiff import VJP_RULES

ELEMENTWISE_OPS = sorted(name for name, record in OPS.items()
                         if record.group is Group.ELEMENTWISE and name != "ew")


def _named(fn, arity: int):
    """symgrad reads parameter names: the same function with `arity` named parameters."""
    return {1: lambda a: fn(a), 2: lambda a, b: fn(a, b), 3: lambda a, b, c: fn(a, b, c)}[arity]


def _weighted_loss(fn, weights: np.ndarray, arity: int):
    return _named(lambda *args: np.sum(fn(*args) * weights), arity)


def _shapes(rng: np.random.Generator, arity: int, pattern: int) -> list[tuple[int, ...]]:
    """Pattern 0: one shape for all; otherwise operands broadcasting against a random shape."""
    if pattern == 0:
        return [(3, 4)] * arity
    full = tuple(int(d) for d in rng.integers(2, 5, size=rng.integers(1, 4)))
    shapes = []
    for _ in range(arity):
        shape = [d if rng.random() < 0.6 else 1 for d in full]
        shapes.append(tuple(shape[rng.integers(0, len(full) + 1):]))
    return shapes


def _torch_value_and_grads(case: Case, args: list[np.ndarray], weights: np.ndarray):
    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in args]
    out = (case.torch(*tensors) * torch.tensor(weights)).sum()
    grads = torch.autograd.grad(out, tensors, allow_unused=True)
    return float(out.detach()), [np.zeros(a.shape) if g is None else g.numpy()
                                 for g, a in zip(grads, args)]


def test_every_elementwise_op_has_a_case():
    covered = {case.op for case in CASES}
    assert sorted(set(ELEMENTWISE_OPS) - covered) == []
    assert sorted(covered - set(ELEMENTWISE_OPS)) == []


def test_no_elementwise_op_has_a_hand_written_vjp_rule():
    assert sorted(set(VJP_RULES) & {name for name, r in OPS.items()
                                    if r.group is Group.ELEMENTWISE}) == []


@pytest.mark.parametrize("pattern", [0, 1])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_float64_matches_central_differences_and_torch(case: Case, pattern: int):
    rng = np.random.default_rng([pattern, CASE_IDS.index(case.id)])
    shapes = _shapes(rng, case.arity, pattern)
    args = [DOMAINS[d](rng, s) for d, s in zip(case.domains, shapes)]
    weights = rng.normal(size=np.broadcast_shapes(*shapes))
    loss = _weighted_loss(case.numpy, weights, case.arity)
    wrt = tuple(range(case.arity))

    value, grads = sg.value_and_grad(loss, wrt=wrt)(*args)
    np.testing.assert_allclose(value, loss(*args), rtol=1e-12, atol=1e-300)
    torch_value, torch_grads = _torch_value_and_grads(case, args, weights)
    np.testing.assert_allclose(value, torch_value, rtol=1e-10, atol=1e-12)
    for i, g in enumerate(grads):
        assert g.shape == shapes[i] and g.dtype == np.float64
        np.testing.assert_allclose(g, torch_grads[i], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(g, central_difference(loss, args, i), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_float32_in_float32_out(case: Case):
    rng = np.random.default_rng([2, CASE_IDS.index(case.id)])
    shapes = _shapes(rng, case.arity, 1)
    args = [DOMAINS[d](rng, s).astype(np.float32) for d, s in zip(case.domains, shapes)]
    weights = rng.normal(size=np.broadcast_shapes(*shapes)).astype(np.float32)
    loss = _weighted_loss(case.numpy, weights, case.arity)
    wrt = tuple(range(case.arity))

    value, grads = sg.value_and_grad(loss, wrt=wrt)(*args)
    expected_dtype = np.asarray(loss(*args)).dtype  # numpy's own promotion
    assert np.asarray(value).dtype == expected_dtype
    if case.variant != "float_power":  # float_power computes in float64 by definition
        assert expected_dtype == np.float32
    value64, grads64 = sg.value_and_grad(loss, wrt=wrt)(*[a.astype(np.float64) for a in args])
    np.testing.assert_allclose(value, value64, rtol=2e-5, atol=2e-5 * np.abs(value64) + 1e-6)
    for g, a, g64 in zip(grads, args, grads64):
        assert g.dtype == np.float32 and g.shape == a.shape
        scale = np.max(np.abs(g64), initial=1.0)
        np.testing.assert_allclose(g, g64, rtol=1e-4, atol=1e-5 * scale)


EXTREMES = np.array([-1e3, -30.0, -1.5, -1.0, -1e-300, -0.0, 0.0, 1e-300, 0.5, 1.0, 2.0, 1e3])


def _grid(arity: int) -> list[np.ndarray]:
    """Every combination of extreme values, one flat array per operand."""
    return [g.ravel().copy() for g in np.meshgrid(*[EXTREMES] * arity, indexing="ij")]


# PyTorch's gradient loses digits here; ours is the exact formula (checked in test_stability).
LESS_ACCURATE_IN_TORCH = {
    "expm1": 1e-3,  # PyTorch: expm1(x) + 1, which cancels for x << 0; ours: exp(x)
}


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_extreme_inputs_finite_wherever_torch_is(case: Case):
    args = _grid(case.arity)
    fn = _named(case.numpy, case.arity)
    wrt = tuple(range(case.arity))
    with np.errstate(all="ignore"):
        expected = case.numpy(*args)
        value, pullback = sg.vjp(fn, *args, wrt=wrt)
        grads = pullback(np.ones_like(expected))
    np.testing.assert_allclose(value, expected, rtol=1e-12, atol=0, equal_nan=True)

    tensors = [torch.tensor(a, requires_grad=True) for a in args]
    out = case.torch(*tensors)
    torch_grads = torch.autograd.grad(out, tensors, torch.ones_like(out), allow_unused=True)
    # A gradient is checked where PyTorch's value and gradient are both finite (outside the
    # domain, e.g. arccosh(-2), PyTorch still returns numbers for the gradient).
    checked = np.isfinite(out.detach().numpy())
    rtol = LESS_ACCURATE_IN_TORCH.get(case.op, 1e-9)
    for i, (g, tg) in enumerate(zip(grads, torch_grads)):
        tg = np.zeros_like(g) if tg is None else tg.numpy()
        finite = np.isfinite(tg) & checked
        bad = finite & ~(np.isfinite(g) & np.isclose(g, tg, rtol=rtol, atol=1e-300))
        where = [tuple(float(a[k]) for a in args) for k in np.flatnonzero(bad)[:5]]
        assert not bad.any(), (f"{case.id}: d/d(arg {i}) differs from PyTorch at {where}: "
                               f"ours {g[bad][:5]}, torch {tg[bad][:5]}")


# The second derivative of digamma is polygamma(2, x), which has no numpy helper: refused by
# name (tests/test_special_functions.py).
SECOND_ORDER = [c for c in CASES if c.op != "digamma"]


@pytest.mark.parametrize("case", SECOND_ORDER, ids=[c.id for c in SECOND_ORDER])
def test_second_derivatives_match_torch(case: Case):
    """Reverse over reverse: the conventions and helpers are differentiable SymPy forms too."""
    rng = np.random.default_rng([3, CASE_IDS.index(case.id)])
    args = [DOMAINS[d](rng, (3,)) for d in case.domains]
    weights = rng.normal(size=3)
    loss = _weighted_loss(case.numpy, weights, case.arity)
    ours = sg.hessian(loss, wrt=0)(*args)

    def torch_loss(first):
        rest = [torch.tensor(a) for a in args[1:]]
        return (case.torch(first, *rest) * torch.tensor(weights)).sum()

    theirs = torch.autograd.functional.hessian(torch_loss, torch.tensor(args[0])).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-10)
