"""Sorting and order statistics beyond the oracle case table (tests/sort_cases.py): exact ties
(split evenly, as `max`), numpy's definitions of the median and the linear quantile, NaN,
second derivatives against torch.autograd.functional.hessian, composite models, errors and
the printed numpy calls."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import symgrad as sg
from gradcheck import central_difference, convention_rows, torch_gradients
from symgrad.errors import ShapeError, TracingError, UnsupportedFunctionError

T64 = torch.float64


# ---------------------------------------------------------------------------------------------
# Ties and numpy's definitions
# ---------------------------------------------------------------------------------------------
def test_convention_sort_ties():
    x = np.array([1.0, 3.0, 1.0, 2.0])
    grad = sg.grad(lambda x: np.sum(np.sort(x) * np.array([1.0, 2.0, 3.0, 4.0])))(x)
    np.testing.assert_array_equal(grad, [1.5, 4.0, 1.5, 3.0])  # the two 1s: mean of 1 and 2


def test_convention_median_even():
    grad = sg.grad(np.median)(np.array([4.0, 1.0, 3.0, 2.0]))
    np.testing.assert_array_equal(grad, [0.0, 0.0, 0.5, 0.5])
    tied = sg.grad(np.median)(np.array([2.0, 1.0, 2.0, 3.0, 2.0]))
    np.testing.assert_allclose(tied, [1 / 3, 0.0, 1 / 3, 0.0, 1 / 3])  # three tied middles


def test_convention_quantile_linear():
    x = np.array([10.0, 0.0, 30.0, 20.0])  # sorted 0, 10, 20, 30; the 40th percentile: 12
    value, grad = sg.value_and_grad(lambda x: np.percentile(x, 40))(x)
    assert value == np.percentile(x, 40)
    np.testing.assert_allclose(grad, [0.8, 0.0, 0.0, 0.2])  # position 1.2: weights 0.8, 0.2


def test_convention_running_extremum_ties():
    x = np.array([1.0, 3.0, 3.0, 2.0, 3.0])
    weights = np.arange(1.0, 6.0)
    grad = sg.grad(lambda x: np.sum(np.maximum.accumulate(x) * weights))(x)
    third = 5.0 / 3.0
    np.testing.assert_allclose(grad, [1.0, 2.0 + 1.5 + 2.0 + third, 1.5 + 2.0 + third, 0.0,
                                      third])
    # without ties it is PyTorch's cummax
    y = np.random.default_rng(0).normal(size=(3, 6))
    ours = sg.grad(lambda y: np.sum(np.minimum.accumulate(y, axis=1) ** 2))(y)
    theirs = torch_gradients(lambda t: torch.sum(torch.cummin(t, 1)[0] ** 2), [y], (0,))[1][0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_convention_order_statistics_nan():
    x = np.array([[1.0, np.nan, 2.0], [3.0, 1.0, 2.0]])
    for f in (lambda x: np.median(x, axis=1), lambda x: np.quantile(x, 0.3, axis=1)):
        np.testing.assert_array_equal(sg.jit(f)(x), f(x))


@pytest.mark.parametrize("q", [0.0, 0.25, 0.5, 0.7, 1.0, [0.0, 0.33, 1.0]])
def test_quantile_values_are_numpys(q):
    x = np.random.default_rng(1).normal(size=(5, 7))
    for axis in (None, 0, 1, (0, 1)):
        np.testing.assert_allclose(sg.jit(lambda x: np.quantile(x, q, axis=axis))(x),
                                   np.quantile(x, q, axis=axis), rtol=0, atol=1e-15)


@pytest.mark.parametrize("n, m", [(6, 3), (3, 6), (5, 4), (4, 4), (7, 2), (1, 3)])
def test_convolve_and_correlate_values_are_numpys(n, m):
    rng = np.random.default_rng(n * 10 + m)
    a, v = rng.normal(size=n), rng.normal(size=m)
    for mode in ("full", "same", "valid"):
        np.testing.assert_allclose(sg.jit(lambda a, v: np.convolve(a, v, mode))(a, v),
                                   np.convolve(a, v, mode), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(sg.jit(lambda a, v: np.correlate(a, v, mode))(a, v),
                                   np.correlate(a, v, mode), rtol=1e-12, atol=1e-14)


def test_convention_interp_knots():
    xp, fp = np.array([0.0, 1.0, 3.0]), np.array([2.0, 4.0, 0.0])
    x = np.array([-1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(sg.jit(np.interp)(x, xp, fp), np.interp(x, xp, fp))
    grad_x = sg.grad(lambda x: np.sum(np.interp(x, xp, fp)))(x)
    # slope of the segment to the right of a knot; 0 outside; fp[-1] held at the last knot
    np.testing.assert_array_equal(grad_x, [0.0, 2.0, 2.0, -2.0, -2.0, 0.0, 0.0])
    grad_fp = sg.grad(lambda fp: np.sum(np.interp(x, xp, fp)))(fp)
    np.testing.assert_allclose(grad_fp, [2.5, 2.0, 2.5])


def test_every_sorting_convention_is_tested():
    rows = convention_rows("Sorting and order statistics")
    assert len(rows) >= 6
    for row in rows:
        assert f"test_convention_{row.replace('-', '_')}" in globals(), row


# ---------------------------------------------------------------------------------------------
# Second derivatives
# ---------------------------------------------------------------------------------------------
W = np.arange(1.0, 7.0)
TW = torch.tensor(W)
HESSIAN_CASES = [
    ("sort", lambda x: np.sum(np.sort(x) ** 3 * W), lambda t: torch.sum(torch.sort(t)[0] ** 3 * TW)),
    ("median", lambda x: np.median(x ** 3) * np.sum(x), lambda t: torch.quantile(t ** 3, 0.5)
     * torch.sum(t)),
    ("quantile", lambda x: np.quantile(x ** 2, 0.3) ** 2,
     lambda t: torch.quantile(t ** 2, 0.3) ** 2),
    ("cummax", lambda x: np.sum(np.maximum.accumulate(x) ** 3 * W),
     lambda t: torch.sum(torch.cummax(t, 0)[0] ** 3 * TW)),
    ("partition", lambda x: np.sum(np.partition(x, 2)[:3] ** 3),
     lambda t: torch.sum(torch.sort(t)[0][:3] ** 3)),
    ("convolve", lambda x: np.sum(np.convolve(x, x ** 2) ** 2),
     lambda t: torch.sum(F.conv1d(t.view(1, 1, -1), (t ** 2).flip(0).view(1, 1, -1),
                                  padding=5).view(-1) ** 2)),
]


@pytest.mark.parametrize("name, f, torch_f", HESSIAN_CASES, ids=[c[0] for c in HESSIAN_CASES])
def test_hessian_matches_torch(name, f, torch_f):
    x = np.random.default_rng(2).normal(size=6)
    np.testing.assert_allclose(sg.hessian(f)(x), torch.autograd.functional.hessian(
        torch_f, torch.tensor(x)).numpy(), rtol=1e-9, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# Composite models
# ---------------------------------------------------------------------------------------------
def test_trimmed_mean_regression_loss():
    rng = np.random.default_rng(3)
    x, y, w = rng.normal(size=(12, 3)), rng.normal(size=12), rng.normal(size=3)
    y[::5] += 10  # outliers, trimmed away

    def loss(w, x, y):
        return np.mean(np.sort((y - x @ w) ** 2)[2:-2])

    def torch_loss(w, x, y):
        return torch.mean(torch.sort((y - x @ w) ** 2)[0][2:-2])

    value, grad = sg.value_and_grad(loss)(w, x, y)
    torch_value, (torch_grad,) = torch_gradients(torch_loss, [w, x, y], (0,))
    np.testing.assert_allclose(value, torch_value, rtol=1e-12)
    np.testing.assert_allclose(grad, torch_grad, rtol=1e-10)
    np.testing.assert_allclose(grad, central_difference(loss, [w, x, y], 0), rtol=1e-6)


def test_median_absolute_deviation_and_quantile_loss():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4, 9))

    def loss(x):
        mad = np.median(np.abs(x - np.median(x, axis=1, keepdims=True)), axis=1)
        return np.sum(mad) + np.sum(np.percentile(x, [10, 90], axis=1) ** 2)

    np.testing.assert_allclose(sg.grad(loss)(x), central_difference(loss, [x], 0), rtol=1e-6,
                               atol=1e-8)


def test_float32_stays_float32():
    x = np.random.default_rng(5).normal(size=(3, 8)).astype(np.float32)

    def loss(x):
        return (np.sum(np.sort(x, axis=1)[:, :3]) + np.median(x) + np.sum(
            np.maximum.accumulate(x, axis=1)) + np.quantile(x, 0.25))

    value, grad = sg.value_and_grad(loss)(x)
    assert np.asarray(value).dtype == np.float32 and grad.dtype == np.float32
    np.testing.assert_allclose(grad, sg.grad(loss)(x.astype(np.float64)), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Errors and printed code
# ---------------------------------------------------------------------------------------------
def test_traced_quantile_is_refused():
    with pytest.raises(TracingError, match="q must be a constant.*test_sort.py"):
        sg.grad(lambda x, q: np.quantile(x, q))(np.ones(3), np.array(0.5))


def test_unsupported_quantile_method_is_named():
    with pytest.raises(UnsupportedFunctionError, match="method='nearest'"):
        sg.grad(lambda x: np.quantile(x, 0.5, method="nearest"))(np.ones(3))


def test_window_larger_than_the_axis_is_a_shape_error():
    with pytest.raises(ShapeError, match="sliding_window_view.*window of 4"):
        sg.jit(lambda x: np.lib.stride_tricks.sliding_window_view(x, 4))(np.ones(3))


def test_generated_code_calls_numpy_sort():
    source = sg.value_and_grad(lambda x: np.sum(np.sort(x)[1:]) + np.sum(
        np.maximum.accumulate(x))).lower(np.ones(4)).source
    assert "np.sort(x, axis=0)" in source and "np.argsort(x, axis=0)" in source
    assert "np.maximum.accumulate(x, axis=0)" in source
