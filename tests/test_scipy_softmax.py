"""scipy.special.logsumexp, softmax and log_softmax traced as the ops they are
(frontend_scipy.py): both spellings (`from scipy.special import logsumexp` and
`scipy.special.softmax`), against PyTorch and central differences, at extreme inputs."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sc
import torch
from scipy.special import log_softmax, logsumexp, softmax

import symgrad as sg
from gradcheck import central_difference, torch_gradients

X = np.random.default_rng(0).normal(size=(3, 4))
W = np.arange(12.0).reshape(3, 4) / 7
TW = torch.tensor(W)

CASES = [
    ("logsumexp_axis", lambda x: np.sum(logsumexp(x, axis=1) ** 2),
     lambda t: torch.sum(torch.logsumexp(t, 1) ** 2)),
    ("logsumexp_all_keepdims", lambda x: np.sum(x * logsumexp(x, keepdims=True)),
     lambda t: torch.sum(t * torch.logsumexp(t.reshape(-1), 0))),
    ("logsumexp_weights", lambda x: np.sin(sc.logsumexp(x, b=W + 0.5)),
     lambda t: torch.sin(torch.logsumexp(t + torch.log(TW + 0.5), (0, 1)))),
    ("softmax", lambda x: np.sum(softmax(x, axis=0) * W),
     lambda t: torch.sum(torch.softmax(t, 0) * TW)),
    ("softmax_all", lambda x: np.sum(sc.softmax(x) * W),
     lambda t: torch.sum(torch.softmax(t.reshape(-1), 0).reshape(3, 4) * TW)),
    ("log_softmax", lambda x: np.sum(np.sin(log_softmax(x, axis=-1))),
     lambda t: torch.sum(torch.sin(torch.log_softmax(t, -1)))),
]


@pytest.mark.parametrize("name, f, torch_f", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_matches_torch_and_central_differences(name, f, torch_f, scale):
    x = X * scale
    value, grad = sg.value_and_grad(f)(x)
    torch_value, (torch_grad,) = torch_gradients(torch_f, [x], (0,))
    np.testing.assert_allclose(value, f(x), rtol=1e-12)
    np.testing.assert_allclose(value, torch_value, rtol=1e-12)
    np.testing.assert_allclose(grad, torch_grad, rtol=1e-10, atol=1e-12)
    if scale == 1.0:
        np.testing.assert_allclose(grad, central_difference(f, [x], 0), rtol=1e-6, atol=1e-8)


def test_hessian_matches_torch():
    def f(x):
        return np.sum(logsumexp(x, axis=0) ** 2) + np.sum(softmax(x, axis=1) * W)

    def tf(t):
        return torch.sum(torch.logsumexp(t, 0) ** 2) + torch.sum(torch.softmax(t, 1) * TW)

    np.testing.assert_allclose(sg.hessian(f)(X), torch.autograd.functional.hessian(
        tf, torch.tensor(X)).numpy(), rtol=1e-9, atol=1e-11)


def test_float32_stays_float32():
    x = X.astype(np.float32)
    w = W.astype(np.float32)
    value, grad = sg.value_and_grad(lambda x: logsumexp(x) + np.sum(softmax(x) * w))(x)
    assert np.asarray(value).dtype == np.float32 and grad.dtype == np.float32


def test_scipy_itself_is_restored_and_still_used_for_constants():
    assert logsumexp is sc.logsumexp and softmax is sc.softmax
    constant = np.array([1.0, 2.0])
    value = sg.jit(lambda x: x + logsumexp(constant))(np.zeros(2))
    np.testing.assert_allclose(value, logsumexp(constant))
    assert logsumexp.__module__.startswith("scipy")


def test_generated_code_is_the_op():
    source = sg.value_and_grad(lambda x: np.sum(logsumexp(x, axis=1))).lower(X).source
    assert "np.max(x, axis=1, keepdims=True)" in source and "_array_api" not in source


def test_return_sign_is_named():
    with pytest.raises(sg.UnsupportedFunctionError, match="return_sign"):
        sg.grad(lambda x: logsumexp(x, return_sign=True)[0])(X)
