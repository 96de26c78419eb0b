"""SymPy joins the parts of two operands as it builds (numbers folded, a number distributed over
a sum, like terms merged, powers cancelled); for floats that is another computation, far from
numpy's where it overflows or cancels. The generated code computes what the user wrote, bit
for bit, on ordinary and extreme inputs; `fast_math=True` lets SymPy's folds stand."""
import numpy as np
import pytest

import symgrad as sg

X = np.array([0.0, -0.0, 1.0, -1.0, 1 + 2**-52, 1.5, 3.0, 32.000001, -7.25, 1e-310, 5e-324,
              1e200, -1e200, 1e308, np.inf, -np.inf, np.nan])

CASES = {
    "(x*1e200)*1e-200": lambda x: (x * 1e200) * 1e-200,  # inf in numpy where x*1e200 overflows
    "(x+1e16)-1e16": lambda x: (x + 1e16) - 1e16,  # cancellation as written
    "(x-1)*1e16": lambda x: (x - 1.0) * 1e16,  # not 1e16*x - 1e16
    "(t-32)*5/9": lambda x: (x - 32) * 5 / 9,
    "3*(x+0.1)": lambda x: 3.0 * (x + 0.1),
    "(x*0.1)*3": lambda x: (x * 0.1) * 3.0,
    "(x/3)*3": lambda x: (x / 3.0) * 3.0,
    "(x*x)/x": lambda x: (x * x) / x,  # NaN at 0 and inf, inf at 1e200
    "x/(x*2)": lambda x: x / (x * 2.0),
    "2*x-x": lambda x: 2 * x - x,  # NaN at inf
    "x+0": lambda x: x + 0.0,  # +0.0 at -0.0
    "(x+1)+(x+2)": lambda x: (x + 1.0) + (x + 2.0),
    "0.5*(x+1)": lambda x: 0.5 * (x + 1.0),
    "x/3": lambda x: x / 3,  # not x times a rounded 0.333... (C printed it so)
    "-x/3+x/16": lambda x: -x / 3 + x / 16,
}


def _same_bits(got, want):
    got, want = np.asarray(got), np.asarray(want)
    return np.array_equal(got.view(np.int64), want.view(np.int64)) or (
        np.array_equal(np.isnan(got), np.isnan(want))
        and np.array_equal(np.where(np.isnan(got), 0, got).view(np.int64),
                           np.where(np.isnan(want), 0, want).view(np.int64)))


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_the_generated_code_computes_what_was_written(name, backend):
    fn = CASES[name]
    with np.errstate(all="ignore"):
        want = fn(X)
        got = sg.jit(fn, backend=backend)(X)
    assert _same_bits(got, want), (name, [(x, g, w) for x, g, w in zip(X, got, want)
                                          if not _same_bits(g, w)])


def test_what_is_exact_stays_as_sympy_writes_it():
    source = sg.jit(lambda x: (x * x + x * x) - x * 3.0).lower(X).source
    assert "2*x**2" in source  # c*x + c*x is 2c*x; x*x is x**2 (numpy squares by x*x)
    signed = lambda x: -x * 3.0 + 1.0 * x  # noqa: E731 (a sign and a 1.0 join exactly)
    with np.errstate(all="ignore"):
        assert _same_bits(sg.jit(signed)(X), signed(X))


def test_gradients_through_kept_operations_are_the_derivatives():
    def f(x):
        return np.sum(((x - 1.0) * 1e3) ** 2 + (x * 0.1) * 3.0 + (x * x) / x)

    x = np.array([0.3, 1.7, -2.2])
    value, grad = sg.value_and_grad(f)(x)
    assert value == pytest.approx(f(x), rel=1e-15)
    eps = 1e-6
    central = [(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(3)]
    np.testing.assert_allclose(grad, central, rtol=1e-7)
    np.testing.assert_allclose(grad, 2e6 * (x - 1.0) + 0.3 + 1.0, rtol=1e-12)


def test_fast_math_lets_the_folds_stand():
    fn = lambda x: (x * 1e200) * 1e-200  # noqa: E731
    assert "1e+200" in sg.jit(fn).lower(X).source
    fast = sg.jit(fn, fast_math=True)
    assert "1e+200" not in fast.lower(X).source
    np.testing.assert_array_equal(fast(np.array([1e200, 2.0])), [1e200, 2.0])
