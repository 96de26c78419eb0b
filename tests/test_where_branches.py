"""np.where is branch-correct: the gradient takes only the selected branch, and the generated
code raises nothing under np.errstate(all="raise") where the true result is finite (statements
that compute possibly-unselected branches run with errors silenced; nothing else does)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import symgrad as sg
from gradcheck import central_difference


def _sqrt_branch(x):
    return np.sum(np.where(x > 0, np.sqrt(x), 0.0))


def _exp_branch(x):
    return np.sum(np.where(x < 10, np.exp(x), 1.0))


def _named_branch(x):
    s = np.sqrt(x)  # named and read twice: a value of its own, computed for every x
    return np.sum(np.where(x > 0, s * s + s, 0.0))


def _log_branch(x):
    return np.sum(np.where(x > 0, x * np.log(x) + np.log(x) ** 2, -x))


def _nested(x):
    return np.sum(np.where(x > 1, np.log(x - 1), np.where(x > 0, np.sqrt(x), x ** 2)))


def _sinc(x):
    return np.sum(np.where(x != 0, np.sin(x) / x, 1.0))


def _reciprocal_branch(x, y):
    return np.sum(np.where(y != 0, x / y, x))


def _branch_in_both_passes(x):
    r = np.where(x > 0, 1 / np.sqrt(x), 0.0)
    return np.sum(r * r + np.where(x > 0, np.sqrt(x), 0.0))


# (function, inputs including the points where the unselected branch is inf or NaN, expected
# gradient there from the selected branch only)
CASES = {
    "sqrt_at_negative": (_sqrt_branch, [np.array([-1.0, -1e-300, 0.0, 4.0])],
                         [np.array([0.0, 0.0, 0.0, 0.25])]),
    "exp_at_1000": (_exp_branch, [np.array([1000.0, 1e308, 1.0])],
                    [np.array([0.0, 0.0, np.e])]),
    "named_branch": (_named_branch, [np.array([-4.0, 0.0, 4.0])],
                     [np.array([0.0, 0.0, 1.25])]),
    "log_at_zero": (_log_branch, [np.array([0.0, -1.0, 1.0])],
                    [np.array([-1.0, -1.0, 1.0])]),
    "nested": (_nested, [np.array([-2.0, 0.0, 0.25, 3.0])],
               [np.array([-4.0, 0.0, 1.0, 0.5])]),
    "sinc_at_zero": (_sinc, [np.array([0.0, np.pi])], [np.array([0.0, -1 / np.pi])]),
    "reciprocal": (_reciprocal_branch, [np.array([1.0, 2.0]), np.array([0.0, 4.0])],
                   [np.array([1.0, 0.25]), np.array([0.0, -0.125])]),
    "both_passes": (_branch_in_both_passes, [np.array([-1.0, 0.0, 4.0])],
                    [np.array([0.0, 0.0, -0.0625 + 0.25])]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_takes_the_selected_branch_only(name):
    fn, args, expected = CASES[name]
    wrt = tuple(range(len(args)))
    with np.errstate(all="raise"):
        value, grads = sg.value_and_grad(fn, wrt=wrt)(*args)
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(value, fn(*args), rtol=1e-14)
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(g, e, rtol=1e-14, atol=0)


@pytest.mark.parametrize("name", sorted(CASES))
def test_away_from_the_branch_points_against_central_differences(name):
    fn, args, _ = CASES[name]
    rng = np.random.default_rng(0)
    args = [a + rng.uniform(0.01, 0.1, a.shape) for a in args]  # off the branch points
    wrt = tuple(range(len(args)))
    _, grads = sg.value_and_grad(fn, wrt=wrt)(*args)
    for i, g in enumerate(grads):
        with np.errstate(all="ignore"):  # numpy itself computes both branches
            expected = central_difference(fn, args, i)
        np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-8)


def test_pytorch_gives_nan_where_we_are_branch_correct():
    """The reason for the rule: torch.where's gradient is 0 * inf = NaN here."""
    x = torch.tensor([-1.0, 4.0], dtype=torch.float64, requires_grad=True)
    torch.where(x > 0, torch.sqrt(x), 0.0).sum().backward()
    assert np.isnan(x.grad[0].item())
    grad = sg.grad(_sqrt_branch)(np.array([-1.0, 4.0]))
    np.testing.assert_array_equal(grad, [0.0, 0.25])


def test_only_branch_statements_are_silenced():
    source = sg.value_and_grad(_sqrt_branch).lower(np.ones(3)).source
    body = source[source.index("def sqrt_branch"):]
    guarded = [line.strip() for block in body.split('with np.errstate(all="ignore")')[1:]
               for line in block.splitlines()[1:] if line.startswith(" " * 8)]
    assert any("np.sqrt(x)" in line for line in guarded)
    assert not any("np.sum" in line for line in guarded)  # reductions see selected values only


def test_hoisted_subexpressions_stay_guarded():
    """CSE shares sqrt(x) between value and gradient; every statement that computes it for
    x < 0 must be inside an errstate block, else errstate(all='raise') would raise."""
    x = np.array([-1.0, 4.0])
    for fn in (_sqrt_branch, _branch_in_both_passes, _named_branch):
        with np.errstate(all="raise"):
            sg.value_and_grad(fn)(x)
            sg.jit(fn)(x)
            sg.grad(sg.grad(lambda v: np.sum(np.where(v > 0, np.sqrt(v) ** 3, 0.0))))  # builds
