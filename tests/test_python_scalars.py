"""Python numbers are traced as weakly typed 0-d values (JAX's rule): one compilation for
every value, and they take the dtype of the arrays they meet. static_argnums/static_argnames
bake a value in, for shapes and loop counts."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import symgrad as sg


def test_fifty_learning_rates_compile_once():
    step = sg.grad(lambda w, x, lr: lr * np.sum(np.tanh(x @ w) ** 2))
    x, w = np.random.default_rng(0).normal(size=(4, 3)), np.full(3, 0.1)
    base = step(w, x, 1.0)
    for lr in np.linspace(0.01, 0.5, 50):
        np.testing.assert_allclose(step(w, x, float(lr)), lr * base, rtol=1e-13)
    assert len(step._signatures) == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weak_scalars_keep_the_array_dtype(dtype):
    x = np.linspace(-1, 1, 5).astype(dtype)
    for f in (lambda x, s: x * s, lambda x, s: x * (s * 2 + 1), lambda x, n: x ** 2 * n):
        for value in (2.5, 3):
            out = sg.jit(f)(x, value)
            assert out.dtype == dtype
            np.testing.assert_allclose(out, f(x, value), rtol=1e-6)
    g = sg.grad(lambda x, s: np.sum(np.sin(x) * s))(x, 0.5)
    assert g.dtype == dtype
    expected = torch.func.grad(lambda t: torch.sum(torch.sin(t) * 0.5))(torch.tensor(x))
    np.testing.assert_allclose(g, expected.numpy(), rtol=1e-6)


def test_gradient_with_respect_to_a_python_float():
    f = lambda x, s: np.sum(np.exp(s * x))  # noqa: E731
    x = np.array([0.1, 0.2])
    ours = sg.grad(f, wrt="s")(x, 1.5)
    assert ours == pytest.approx(np.sum(x * np.exp(1.5 * x)), rel=1e-13)


def test_static_arguments_decide_shapes_and_traced_ones_say_how():
    f = lambda x, n: np.zeros(n) + x  # noqa: E731
    np.testing.assert_array_equal(sg.jit(f, static_argnames="n")(np.float64(2.0), 3), [2.0] * 3)
    np.testing.assert_array_equal(sg.jit(f, static_argnums=1)(np.float64(2.0), 2), [2.0] * 2)
    with pytest.raises(sg.TracingError, match=r"static_argnames.*static_argnums") as info:
        sg.jit(f)(np.float64(2.0), 3)
    assert "'n' is a Python number" in str(info.value)
    assert "test_python_scalars.py" in str(info.value)
    with pytest.raises(sg.ArgumentError, match="both static and differentiated"):
        sg.grad(lambda x, s: np.sum(x * s), wrt="s", static_argnames="s")(np.ones(2), 1.0)


def test_bools_stay_static():
    f = sg.jit(lambda x, flag: x * 2 if flag else x)
    np.testing.assert_array_equal(f(np.ones(2), True), [2.0, 2.0])
    np.testing.assert_array_equal(f(np.ones(2), False), [1.0, 1.0])
    assert len(f._signatures) == 2
