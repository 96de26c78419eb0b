"""Each stability rule, at extreme inputs: naive formulas that overflow in numpy (and in
PyTorch) give finite, right values and gradients, checked against PyTorch's stable primitives.
A rule of `STABILITY_RULES` without a case here fails `test_every_rule_has_a_case`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import scipy.special as sc
import torch
import torch.nn.functional as F

import symgrad as sg
from symgrad.symbolic import STABILITY_RULES

Z = np.array([-1000.0, -50.0, -1.0, -1e-300, 0.0, 1e-300, 0.5, 50.0, 1000.0])
A, B = (g.ravel() for g in np.meshgrid(Z, Z[::2], indexing="ij"))


def _bce_naive(z, y):
    s = 1 / (1 + np.exp(-z))
    return -(y * np.log(s) + (1 - y) * np.log(1 - s))


def _log_sigmoid_pair(z):
    s = 1 / (1 + np.exp(-z))
    return np.log(s) + np.log(1 - s)


def _softplus_named(z):
    e = np.exp(z)
    return np.log(1 + e)


@dataclass(frozen=True)
class Stable:
    naive: Callable  # what a user writes (elementwise)
    reference: Callable  # PyTorch, with stable primitives
    inputs: tuple[np.ndarray, ...]
    rules: tuple[str, ...]  # rules that must fire


CASES: dict[str, Stable] = {
    "softplus-log1p": Stable(lambda z: np.log1p(np.exp(z)), F.softplus, (Z,),
                             ("softplus: log1p(exp(a))",)),
    "softplus-log": Stable(lambda z: np.log(1 + np.exp(z)), F.softplus, (Z,),
                           ("softplus: log(1 + exp(a))", "sigmoid: exp(a)/(1 + exp(a))")),
    "softplus-named": Stable(_softplus_named, F.softplus, (Z,),
                             ("softplus: log(1 + exp(a))",)),
    "sigmoid": Stable(lambda z: 1 / (1 + np.exp(-z)), torch.sigmoid, (Z,),
                      ("sigmoid: 1/(1 + exp(a))",)),
    "sigmoid-ratio": Stable(lambda z: np.exp(z) / (1 + np.exp(z)), torch.sigmoid, (Z,),
                            ("sigmoid: exp(a)/(1 + exp(a))",)),
    "one-minus-sigmoid": Stable(lambda z: 1 - 1 / (1 + np.exp(-z)),
                                lambda z: torch.sigmoid(-z), (Z,),
                                ("sigmoid: 1 - sigmoid(a)",)),
    "log-sigmoid": Stable(lambda z: np.log(1 / (1 + np.exp(-z))), F.logsigmoid, (Z,),
                          ("log-sigmoid: log(sigmoid(a))",)),
    "log-one-minus-sigmoid": Stable(lambda z: np.log(1 - 1 / (1 + np.exp(-z))),
                                    lambda z: F.logsigmoid(-z), (Z,),
                                    ("sigmoid: 1 - sigmoid(a)",
                                     "log-sigmoid: log(sigmoid(a))")),
    "log-sigmoid-pair": Stable(_log_sigmoid_pair,
                               lambda z: F.logsigmoid(z) + F.logsigmoid(-z), (Z,),
                               ("sigmoid: sigmoid(a) * (1 + exp(-a)) = 1",)),
    "log-sigmoid-pair-inline": Stable(
        lambda z: np.log(1 / (1 + np.exp(-z))) + np.log(1 - 1 / (1 + np.exp(-z))),
        lambda z: F.logsigmoid(z) + F.logsigmoid(-z), (Z,),
        ("sigmoid: exp(-a)*(sigmoid(a)*u + v)",)),
    "exp-times-sigmoid": Stable(lambda z: np.exp(-z) * sc.expit(z), lambda z: torch.sigmoid(-z),
                                (Z,), ("sigmoid: exp(-a)*sigmoid(a) = sigmoid(-a)",)),
    "bce-naive": Stable(_bce_naive,
                        lambda z, y: F.binary_cross_entropy_with_logits(z, y, reduction="none"),
                        (A, (B > 0) * 0.7 + 0.1),
                        ("sigmoid: sigmoid(a) * (1 + exp(-a)) = 1",)),
    "logaddexp": Stable(lambda a, b: np.log(np.exp(a) + np.exp(b)), torch.logaddexp, (A, B),
                        ("logaddexp: log(exp(a) + exp(b) + ...)",
                         "softmax: exp(u)/(exp(a) + exp(b) + ...)")),
    "logsumexp-3": Stable(lambda a, b: np.log(np.exp(a) + np.exp(b) + np.exp(a - b)),
                          lambda a, b: torch.logsumexp(torch.stack([a, b, a - b]), 0),
                          (A, B), ("logaddexp: log(exp(a) + exp(b) + ...)",)),
    "softmax-2": Stable(lambda a, b: np.exp(a) / (np.exp(a) + np.exp(b)),
                        lambda a, b: torch.softmax(torch.stack([a, b]), 0)[0], (A, B),
                        ("softmax: exp(u)/(exp(a) + exp(b) + ...)",
                         "softmax: exp(u)*(exp(v - logaddexp(...)) + ...)")),
    "xlogx": Stable(lambda x: x * np.log(x), lambda x: torch.xlogy(x, x),
                    (np.array([0.0, 1e-300, 1e-5, 0.5, 1.0, 1e300]),), ("xlogy: x*log(x)",)),
    "hypot": Stable(lambda a, b: np.sqrt(a ** 2 + b ** 2), torch.hypot,
                    (np.array([1e200, 1e-200, 3.0, -1e-300, 0.0]),
                     np.array([1e200, -1e-200, 4.0, 1e-300, 1e-300])),
                    ("hypot: sqrt(a**2 + b**2)", "hypot: a/hypot(a, b), 0 at the origin")),
    "sqrt-of-square": Stable(lambda x: np.sqrt(x * x), torch.abs,
                             (np.array([0.0, -0.0, -1e-300, 3.0, -2.0, 1e200]),),
                             ("sign: a/|a|, 0 at 0",)),
}


def test_every_rule_has_a_case():
    tested = {rule for case in CASES.values() for rule in case.rules}
    assert sorted({r.name for r in STABILITY_RULES} - tested) == []


def _named(fn, n):
    return {1: lambda a: np.sum(fn(a)), 2: lambda a, b: np.sum(fn(a, b))}[n]


@pytest.mark.parametrize("name", sorted(CASES))
def test_naive_formula_is_finite_and_right_at_extremes(name):
    case = CASES[name]
    n = len(case.inputs)
    wrt = tuple(range(n))
    # Differentiate only float inputs that vary (the BCE target is data, not a parameter).
    wrt = (0,) if name == "bce-naive" else wrt
    fn = {1: lambda a: case.naive(a), 2: lambda a, b: case.naive(a, b)}[n]
    tensors = [torch.tensor(x, requires_grad=i in wrt) for i, x in enumerate(case.inputs)]
    reference = case.reference(*tensors)
    expected = torch.autograd.grad(reference, [tensors[i] for i in wrt],
                                   torch.ones_like(reference))
    # Where every true result is finite, nothing may raise (underflow to 0 is not an error).
    all_finite = all(np.isfinite(e.numpy()).all() for e in expected)
    with np.errstate(all="raise" if all_finite else "ignore", under="ignore"):
        value, pullback = sg.vjp(fn, *case.inputs, wrt=wrt)
        grads = pullback(np.ones(case.inputs[0].shape))
    finite = np.isfinite(reference.detach().numpy())
    # atol: torch.logsumexp rounds log(1 + 1e-22) to 0, the nested logaddexp does not.
    np.testing.assert_allclose(value[finite], reference.detach().numpy()[finite], rtol=1e-12,
                               atol=1e-15)
    for g, e in zip(grads, expected):
        e = e.numpy()
        usable = finite & np.isfinite(e)
        assert np.isfinite(g[usable]).all()
        np.testing.assert_allclose(g[usable], e[usable], rtol=1e-12, atol=1e-15)
    compiled = sg.CompiledFunction(fn, "vjp", wrt=wrt)
    fired = compiled.lower(*case.inputs, np.ones(case.inputs[0].shape)).rewrites
    assert set(case.rules) <= set(fired), fired


def test_naive_formulas_do_overflow_in_plain_numpy_and_torch():
    """What the rules are for: the same formulas without them."""
    z = torch.tensor([1000.0], dtype=torch.float64, requires_grad=True)
    torch.log(1 + torch.exp(z)).sum().backward()
    assert torch.isnan(z.grad).all()
    with np.errstate(all="ignore"):
        assert np.isinf(np.log(1 + np.exp(1000.0)))
    assert np.isfinite(sg.value_and_grad(_named(lambda v: np.log(1 + np.exp(v)), 1))(
        np.array([1000.0]))[1]).all()


def test_xlogx_value_at_zero_and_gradient_limit():
    with np.errstate(divide="ignore"):  # the gradient at 0 is -inf: log(0)
        value, grad = sg.value_and_grad(lambda x: np.sum(x * np.log(x)))(np.array([0.0, 1e-300]))
    assert value == 1e-300 * np.log(1e-300)
    np.testing.assert_array_equal(grad, [-np.inf, np.log(1e-300) + 1])


def test_hypot_rule_gives_min_norm_subgradient_at_origin():
    grads = sg.grad(lambda a, b: np.sum(np.sqrt(a ** 2 + b ** 2)), wrt=(0, 1))(
        np.zeros(2), np.zeros(2))
    np.testing.assert_array_equal(grads, np.zeros((2, 2)))
