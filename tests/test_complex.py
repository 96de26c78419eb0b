"""Complex arguments are refused, never cast silently; complex-number functions of real arrays
are their real-input values (frontend_complex.py). Complex intermediates: tests/test_fft.py."""
from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from gradcheck import central_difference

Z = np.array([1 + 2j, 3j])


def test_a_complex_argument_is_a_clear_error_not_a_silent_cast():
    with pytest.raises(sg.TracingError, match="'z' is a complex128 array.*np.real"):
        sg.value_and_grad(lambda x, z: np.sum(x * np.abs(z)), wrt=0)(np.ones(2), Z)
    with pytest.raises(sg.SymgradError, match="complex128"):
        sg.grad(lambda z: np.sum(np.abs(z) ** 2))(Z)
    with pytest.raises(sg.TracingError, match="complex"):
        sg.jit(lambda z: np.abs(z))(Z)


def test_fft_of_a_real_argument_is_traced():
    x = np.array([0.5, -1.0, 2.0, 0.25])
    grad = sg.grad(lambda x: np.sum(np.abs(np.fft.rfft(x)) ** 2))(x)
    np.testing.assert_allclose(grad, central_difference(
        lambda x: np.sum(np.abs(np.fft.rfft(x)) ** 2), [x], 0), rtol=1e-7)


def test_complex_functions_of_real_arrays():
    x = np.array([1.0, -2.0, -0.0, 0.0, 3.5])

    def f(x):
        return np.sum(np.real(x) * 2 + np.imag(x) + np.conj(x) ** 2 + x.real * x.imag
                      + x.conj() + np.angle(x) + np.angle(x, deg=True) * x)

    value, grad = sg.value_and_grad(f)(x)
    assert value == f(x)
    np.testing.assert_allclose(grad, [5.0, 179.0, 183.0, 3.0, 10.0])  # angle: 0 or 180 deg
    smooth = np.array([1.0, -2.0, 3.5])
    np.testing.assert_allclose(sg.grad(f)(smooth), central_difference(f, [smooth], 0),
                               rtol=1e-6)
