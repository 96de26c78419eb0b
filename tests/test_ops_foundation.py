"""The foundation's ops, each composed into a scalar loss and checked against central
differences (float64) and PyTorch, over broadcasting patterns and random shapes."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

import symgrad as sg
from gradcheck import central_difference, torch_gradients

# (name, numpy function, torch function, shapes, input domain)
CASES = [
    ("add", lambda a, b: np.sum(np.sin(a + b)), lambda a, b: torch.sum(torch.sin(a + b)),
     [(3, 4), (4,)], "any"),
    ("subtract", lambda a, b: np.sum((a - b) ** 2), lambda a, b: torch.sum((a - b) ** 2),
     [(2, 1, 3), (4, 1)], "any"),
    ("multiply", lambda a, b: np.sum(a * b * a), lambda a, b: torch.sum(a * b * a),
     [(5,), ()], "any"),
    ("divide", lambda a, b: np.sum(a / b), lambda a, b: torch.sum(a / b),
     [(3, 2), (3, 1)], "positive"),
    ("power_int", lambda a: np.sum(a ** 3), lambda a: torch.sum(a ** 3), [(6,)], "any"),
    ("power_float", lambda a: np.sum(a ** 1.5), lambda a: torch.sum(a ** 1.5), [(6,)], "positive"),
    ("power_both", lambda a, b: np.sum(a ** b), lambda a, b: torch.sum(a ** b),
     [(4,), (4,)], "positive"),
    ("rpow", lambda a: np.sum(2.0 ** a), lambda a: torch.sum(2.0 ** a), [(4,)], "any"),
    ("negative", lambda a: np.sum(np.exp(-a)), lambda a: torch.sum(torch.exp(-a)), [(4,)], "any"),
    ("matmul_2d", lambda a, b: np.sum(np.tanh(a @ b)), lambda a, b: torch.sum(torch.tanh(a @ b)),
     [(3, 4), (4, 2)], "any"),
    ("matmul_vec_mat", lambda a, b: np.sum(np.tanh(a @ b)),
     lambda a, b: torch.sum(torch.tanh(a @ b)), [(4,), (4, 2)], "any"),
    ("matmul_mat_vec", lambda a, b: np.sum(np.tanh(np.matmul(a, b))),
     lambda a, b: torch.sum(torch.tanh(a @ b)), [(3, 4), (4,)], "any"),
    ("matmul_inner", lambda a, b: a @ b, lambda a, b: a @ b, [(5,), (5,)], "any"),
    ("matmul_batched", lambda a, b: np.sum(np.tanh(a @ b)),
     lambda a, b: torch.sum(torch.tanh(a @ b)), [(2, 3, 4), (4, 5)], "any"),
    ("matmul_batched_both", lambda a, b: np.sum(np.tanh(a @ b)),
     lambda a, b: torch.sum(torch.tanh(a @ b)), [(2, 1, 3, 4), (3, 4, 2)], "any"),
    ("matmul_batched_vec", lambda a, b: np.sum(np.tanh(a @ b)),
     lambda a, b: torch.sum(torch.tanh(a @ b)), [(2, 3, 4), (4,)], "any"),
    ("exp", lambda a: np.sum(np.exp(a)), lambda a: torch.sum(torch.exp(a)), [(5,)], "any"),
    ("log", lambda a: np.sum(np.log(a)), lambda a: torch.sum(torch.log(a)), [(5,)], "positive"),
    ("log1p", lambda a: np.sum(np.log1p(a)), lambda a: torch.sum(torch.log1p(a)), [(5,)],
     "positive"),
    ("abs", lambda a: np.sum(np.abs(a) * a), lambda a: torch.sum(torch.abs(a) * a), [(5,)], "any"),
    ("maximum", lambda a, b: np.sum(np.maximum(a, b) ** 2),
     lambda a, b: torch.sum(torch.maximum(a, b) ** 2), [(3, 4), (4,)], "any"),
    ("maximum_scalar", lambda a: np.sum(np.maximum(a, 0) * a),
     lambda a: torch.sum(torch.clamp(a, min=0) * a), [(7,)], "any"),
    ("sum_axis", lambda a: np.sum(np.sum(a, axis=1) ** 2), lambda a: torch.sum(a.sum(1) ** 2),
     [(3, 4, 2)], "any"),
    ("sum_axes_keepdims", lambda a: np.sum(a * np.sum(a, axis=(0, 2), keepdims=True)),
     lambda a: torch.sum(a * a.sum((0, 2), keepdim=True)), [(3, 4, 2)], "any"),
    ("sum_method", lambda a: (a ** 2).sum(), lambda a: (a ** 2).sum(), [(3, 2)], "any"),
    ("mean", lambda a: np.mean(np.exp(a)), lambda a: torch.mean(torch.exp(a)), [(4, 3)], "any"),
    ("mean_axis", lambda a: np.sum(np.mean(a, axis=0) ** 2), lambda a: torch.sum(a.mean(0) ** 2),
     [(4, 3)], "any"),
    ("mean_keepdims", lambda a: np.sum((a - a.mean(axis=-1, keepdims=True)) ** 2),
     lambda a: torch.sum((a - a.mean(-1, keepdim=True)) ** 2), [(4, 3)], "any"),
    ("transpose", lambda a, b: np.sum(np.sin(a.T @ b)), lambda a, b: torch.sum(torch.sin(a.T @ b)),
     [(3, 4), (3, 2)], "any"),
    ("slicing", lambda a: np.sum(a[1:, ::2] ** 3) + np.sum(a[0] * a[-1]),
     lambda a: torch.sum(a[1:, ::2] ** 3) + torch.sum(a[0] * a[-1]), [(4, 5)], "any"),
    ("slicing_none", lambda a: np.sum(a[:, None] * a[None, :]),
     lambda a: torch.sum(a[:, None] * a[None, :]), [(4,)], "any"),
    ("python_scalars", lambda a: np.sum(2 * a + 1.5 - a / 4 + 3 ** a),
     lambda a: torch.sum(2 * a + 1.5 - a / 4 + 3 ** a), [(4,)], "any"),
    ("numpy_scalars", lambda a: np.sum(np.float64(2.5) * a + np.float64(1)),
     lambda a: torch.sum(2.5 * a + 1), [(4,)], "any"),
]

DOMAINS = {
    "any": lambda rng, shape: rng.normal(size=shape),
    "positive": lambda rng, shape: rng.uniform(0.5, 2.0, size=shape),
}


def _args(case, seed=0):
    rng = np.random.default_rng(seed)
    return [np.asarray(DOMAINS[case[4]](rng, shape)) for shape in case[3]]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_gradient_matches_central_differences_and_torch(case):
    name, f, torch_f, shapes, _ = case
    args = _args(case)
    wrt = tuple(range(len(args)))
    value, grads = sg.value_and_grad(f, wrt=wrt)(*args)
    assert np.allclose(value, f(*args), rtol=1e-12, atol=1e-12)
    torch_value, torch_grads = torch_gradients(torch_f, args, wrt)
    assert np.allclose(value, torch_value, rtol=1e-10)
    for i, g in enumerate(grads):
        assert g.shape == np.shape(args[i]) and g.dtype == np.float64
        np.testing.assert_allclose(g, central_difference(f, args, i), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(g, torch_grads[i], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_float32_stays_float32(case):
    name, f, _, shapes, _ = case
    args = [a.astype(np.float32) for a in _args(case, seed=1)]
    wrt = tuple(range(len(args)))
    promotes = name == "numpy_scalars"  # said once, naming the line (symgrad/ir/promotion.py)
    with pytest.warns(sg.DtypePromotionWarning) if promotes else contextlib.nullcontext():
        value, grads = sg.value_and_grad(f, wrt=wrt)(*args)
    assert np.asarray(value).dtype == np.asarray(f(*args)).dtype  # numpy's own promotion
    if name != "numpy_scalars":  # np.float64(2.5) * float32 is float64 in numpy itself
        assert np.asarray(value).dtype == np.float32
    reference = sg.value_and_grad(f, wrt=wrt)(*[a.astype(np.float64) for a in args])
    for g, a, g64 in zip(grads, args, reference[1]):
        assert g.dtype == np.float32 and g.shape == a.shape
        np.testing.assert_allclose(g, g64, rtol=2e-4, atol=2e-5)


def test_new_signature_is_compiled_not_reused():
    f = sg.grad(lambda a: np.sum(a ** 2))
    assert f(np.ones(3)).shape == (3,)
    assert f(np.ones((2, 2))).shape == (2, 2)
    assert f(np.ones(3, np.float32)).dtype == np.float32
    np.testing.assert_array_equal(f(np.arange(3.0)), 2 * np.arange(3.0))


@pytest.mark.parametrize("seed", range(6))
def test_random_broadcasting_patterns(seed):
    rng = np.random.default_rng(seed)
    ndim = rng.integers(1, 4)
    full = tuple(int(d) for d in rng.integers(1, 4, size=ndim))
    shapes = []
    for _ in range(3):
        shape = [d if rng.random() < 0.6 else 1 for d in full]
        shapes.append(tuple(shape[rng.integers(0, ndim + 1):]))

    def f(a, b, c):
        return np.mean(np.exp(a * b - c) / (1 + c * c) + np.abs(a - b) * c)

    args = [rng.normal(size=s) for s in shapes]
    grads = sg.grad(f, wrt=(0, 1, 2))(*args)
    for i, g in enumerate(grads):
        assert g.shape == shapes[i]
        np.testing.assert_allclose(g, central_difference(f, args, i), rtol=1e-5, atol=1e-7)
