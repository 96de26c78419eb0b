"""np.isinf, np.isfinite, np.signbit (conditions, no gradient), np.degrees/np.radians (and
their aliases) and np.remainder (np.mod, %), np.fmod, np.floor_divide (//, divmod) on both CPU
backends: numpy's answer bit for bit at the special floats, in float64 and float32
(degrees/radians in float32 within one rounding: numpy rounds 180/pi to float32 first), with
PyTorch's gradients; the CUDA kernels of the divisions compile with nvcc."""
import numpy as np
import pytest
import torch

import symgrad as sg
from symgrad.backends.cuda import nvcc

SPECIAL = np.array([0.0, -0.0, 1.0, -2.5, np.inf, -np.inf, np.nan, -np.nan, 1e-310, -1e-310,
                    3.4e38, 1e300])

CONDITIONS = {
    "isinf": lambda x: np.where(np.isinf(x), 1.0, x * 2.0),
    "isfinite": lambda x: np.where(np.isfinite(x), x, 0.0),
    "signbit": lambda x: np.where(np.signbit(x), -1.0, 1.0),
    "isnan or isinf": lambda x: np.where(np.isnan(x) | np.isinf(x), 0.0, x),
}


def _same(got, want):
    return got.dtype == want.dtype and np.array_equal(got, want, equal_nan=True) and \
        np.array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(CONDITIONS))
def test_float_class_conditions_are_numpys(name, dtype, backend):
    fn = CONDITIONS[name]
    with np.errstate(all="ignore"):
        x = SPECIAL.astype(dtype)
        assert _same(sg.jit(fn, backend=backend)(x), fn(x))


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("fn, scale", [(np.degrees, 180 / np.pi), (np.rad2deg, 180 / np.pi),
                                       (np.radians, np.pi / 180), (np.deg2rad, np.pi / 180)])
def test_angle_conversions(fn, scale, backend):
    with np.errstate(all="ignore"):
        assert _same(sg.jit(fn, backend=backend)(SPECIAL), fn(SPECIAL))
        x32 = SPECIAL.astype(np.float32)
        got = sg.jit(fn, backend=backend)(x32)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, fn(x32), rtol=2e-7)
    x = np.array([-3.0, 0.5, 2.0])
    grad = sg.grad(lambda x: np.sum(fn(x) ** 2))(x)
    np.testing.assert_allclose(grad, 2 * scale * scale * x, rtol=1e-15)


def test_conditions_have_no_gradient_and_select_branches():
    x = np.array([-1.0, 2.0, -0.0, 0.0])
    grad = sg.grad(lambda x: np.sum(np.where(np.signbit(x), x ** 2, 3 * x)))(x)
    np.testing.assert_array_equal(grad, [-2.0, 3.0, -0.0, 3.0])


A = np.array([5.5, -5.5, 5.5, -5.5, 0.0, -0.0, 3.0, np.inf, -np.inf, np.nan, 1e308, 7.0, 1e-310,
              6.0, -6.0, -0.0])
B = np.array([2.0, 2.0, -2.0, -2.0, 3.0, 3.0, 0.0, 2.0, 2.0, 2.0, 1e-308, np.inf, 3.0, 3.0,
              -np.inf, -3.0])
DIVISIONS = {
    "remainder": np.remainder, "mod": np.mod, "%": lambda a, b: a % b, "fmod": np.fmod,
    "floor_divide": np.floor_divide, "//": lambda a, b: a // b,
    "divmod": lambda a, b: divmod(a, b)[0] * 3.0 + divmod(a, b)[1],
}


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(DIVISIONS))
def test_divisions_are_numpys_bit_for_bit(name, dtype, backend):
    fn = DIVISIONS[name]
    with np.errstate(all="ignore"):  # (1e308 is inf in float32)
        a, b = A.astype(dtype), B.astype(dtype)
        assert _same(sg.jit(fn, backend=backend)(a, b), fn(a, b))


@pytest.mark.parametrize("name, twin", [
    ("remainder", torch.remainder), ("fmod", torch.fmod),
    ("floor_divide", lambda a, b: torch.floor(a / b))])
def test_division_gradients_are_pytorchs(name, twin):
    rng = np.random.default_rng(3)
    a, b = rng.uniform(-5, 5, 40), rng.choice([-1.0, 1.0], 40) * rng.uniform(0.3, 2.0, 40)
    fn = DIVISIONS[name]
    grads = sg.grad(lambda a, b: np.sum(fn(a, b) * np.cos(a)), argnums=(0, 1))(a, b)
    ta, tb = (torch.tensor(v, requires_grad=True) for v in (a, b))
    torch.sum(twin(ta, tb) * torch.cos(ta)).backward()
    np.testing.assert_allclose(grads[0], ta.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads[1], tb.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(nvcc.nvcc() is None, reason="nvcc is not installed here")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_division_kernels_compile_for_the_gpu(dtype):
    fn = sg.value_and_grad(lambda a, b: np.sum(a % b + np.fmod(a, b) * (a // b)),
                           argnums=(0, 1), backend="cuda")
    a, b = np.linspace(-3, 3, 10).astype(dtype), np.full(10, 1.7, dtype=dtype)
    cu_text = fn.lower(a, b).path.with_suffix(".cu").read_text()
    assert "sg_divmod" in cu_text
    ptx = nvcc.device_compile(cu_text)
    if dtype == np.float32:
        assert nvcc.lint_ptx(ptx) == []
