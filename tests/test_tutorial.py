"""The autograd tutorial against a gradient derived by hand, and the demo command."""
from __future__ import annotations

import runpy
import subprocess
import sys

import numpy as np

import symgrad as sg
from symgrad.cli import tutorial_path

tutorial = runpy.run_path(str(tutorial_path()))


def _inputs():
    rng = np.random.default_rng(3)
    return np.ones(5), np.zeros(3), rng.standard_normal((5, 3)), rng.standard_normal(3)


def test_bce_gradient_matches_hand_derivation():
    x, y, w, b = _inputs()
    value, (gw, gb) = sg.value_and_grad(tutorial["loss"], wrt=("w", "b"))(x, y, w, b)
    z = x @ w + b
    sigmoid = 1 / (1 + np.exp(-z))
    # d/dz mean(softplus(z) - z*y) = (sigmoid(z) - y) / n
    z_bar = (sigmoid - y) / z.size
    np.testing.assert_allclose(gb, z_bar, rtol=1e-13)
    np.testing.assert_allclose(gw, np.outer(x, z_bar), rtol=1e-13)
    np.testing.assert_allclose(value, np.mean(np.logaddexp(0, z) - z * y), rtol=1e-13)


def test_generated_gradient_is_simplified_to_sigmoid_minus_y():
    x, y, w, b = _inputs()
    source = sg.value_and_grad(tutorial["loss"], wrt=("w", "b")).lower(x, y, w, b).source
    assert "b_bar = (_sigmoid(z) - y)/3" in source and "return value, (w_bar, b_bar)" in source
    assert "np.heaviside" not in source and "np.sign" not in source


def test_single_wrt_gives_single_array_and_jit_is_forward_only():
    x, y, w, b = _inputs()
    gw = sg.grad(tutorial["loss"], wrt="w")(x, y, w, b)
    assert isinstance(gw, np.ndarray) and gw.shape == (5, 3)
    z = sg.jit(tutorial["forward"])(x, w, b)
    np.testing.assert_allclose(z, x @ w + b)
    assert "_bar" not in sg.jit(tutorial["forward"]).lower(x, w, b).source


def test_jacobian_product_example():
    inp = np.eye(4, 5)
    v = np.ones((5, 4))
    g = sg.grad(tutorial["weighted_output"], wrt="inp")(inp, v)
    np.testing.assert_array_equal(g, 2 * (inp + 1))


def test_demo_command_runs(tmp_path):
    result = subprocess.run([sys.executable, "-m", "symgrad", "demo"], capture_output=True,
                            text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "agreement with central finite differences" in result.stdout
    assert "(ok)" in result.stdout
    assert "def loss_value_and_grad(x, y, w, b):" in result.stdout
