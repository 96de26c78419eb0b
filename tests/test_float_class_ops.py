"""np.isinf, np.isfinite, np.signbit (conditions, no gradient) and np.degrees/np.radians (and
their aliases) on both CPU backends: numpy's answer bit for bit at the special floats, in
float64 and float32 (degrees/radians in float32 within one rounding: numpy rounds 180/pi to
float32 first), with the gradient of the conversions their constant."""
import numpy as np
import pytest

import symgrad as sg

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
