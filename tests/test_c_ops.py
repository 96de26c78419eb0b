"""The ops backend="c" runs beyond fused elementwise work: linear algebra, sorting and updates
as numpy steps between kernels (the whole structural table of test_c_backend.py checks them
against the numpy backend; here the helpers they need), the one family still refused (loop
drivers) with its clear error, and the C printing of operations kept as written."""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import symgrad as sg
from symgrad.backends import C_NOT_YET
from symgrad.backends.c import backend as c_backend
from symgrad.backends.c import CExpressionPrinter
from symgrad.errors import CompilerError
from symgrad.symbolic import true_divide, unfolded

try:
    c_backend.toolchain()
    HAS_COMPILER = True
except CompilerError:  # pragma: no cover - CI installs gcc
    HAS_COMPILER = False
needs_compiler = pytest.mark.skipif(not HAS_COMPILER, reason="no C compiler")
RNG = np.random.default_rng(7)


def test_only_loop_drivers_and_fft_are_refused():
    assert C_NOT_YET == {"scan", "while", "cond", "while_vjp", "loop_out", "fft", "rfft", "irfft"}


@needs_compiler
def test_a_loop_is_refused_by_name():
    def f(x):
        return np.sum(sg.fori_loop(0, 3, lambda i, v: np.sin(v), x))

    with pytest.raises(sg.GeneratedCodeError, match=r"does not support \w+ yet .*numpy"):
        sg.grad(f, backend="c")(np.ones(3))


@needs_compiler
def test_linalg_steps_with_their_numpy_helpers_match_numpy_backend():
    """det's gradient calls `_adjugate`, eigenvectors' `_pair_reciprocals`: the launcher
    holds them as the templates do (and its grammar check accepts them)."""
    def f(a):
        spd = a @ a.T + np.eye(4)
        return (np.linalg.det(a) + np.sum(np.linalg.eigh(spd)[1] ** 2 * np.arange(16.0).reshape(4, 4))
                + np.sum(np.linalg.solve(spd, np.sort(a, axis=1))))

    a = RNG.standard_normal((4, 4))
    compiled = sg.value_and_grad(f, backend="c")
    c, n = compiled(a), sg.value_and_grad(f)(a)
    np.testing.assert_allclose(c[0], n[0], rtol=1e-12)
    np.testing.assert_allclose(c[1], n[1], rtol=1e-10, atol=1e-12)
    source = compiled.lower(a).source
    assert "def _adjugate(" in source and "def _pair_reciprocals(" in source


def _c(expr, *symbols):
    texts = {s: s.name for s in symbols}
    return CExpressionPrinter("float64", texts, {s: "float64" for s in symbols}).doprint(expr)


def test_kept_operations_parenthesize_their_operands():
    a, b = sp.symbols("a b", real=True)
    assert _c(unfolded(2, b - a, sp.Float(0.0)), a, b) == "((-a + b) * 0.0)"
    assert _c(unfolded(1, a, a + b), a, b) == "(a - (a + b))"
    assert _c(true_divide(a + b, sp.Float(1e-310)), a, b) == "((a + b) / 1e-310)"


@needs_compiler
def test_kept_operations_compute_as_numpy_does():
    def f(a, b):
        return a + (b - a) * 0.0 + (a + b) / 1e-310 * 1e-300 - (b - b) * (a + b)

    a, b = np.array([1.0, 2.0, np.inf]), np.array([2.0, -0.5, 1.0])
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(sg.jit(f, backend="c")(a, b), sg.jit(f)(a, b))
