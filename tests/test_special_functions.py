"""scipy.special functions in generated code: numpy-only helpers, checked against scipy and,
where scipy itself loses digits (near the zeros of gammaln and digamma), against mpmath."""
from __future__ import annotations

import ast
import subprocess
import sys

import mpmath
import numpy as np
import pytest
import scipy.special as sc

import symgrad as sg


def _all_specials(x, y):
    return np.sum(sc.erf(x) + sc.erfc(x) + sc.gammaln(y) + sc.digamma(y) + sc.expit(x)
                  + sc.log_expit(x) + sc.logit(sc.expit(x)) + sc.xlogy(x, y) + sc.xlog1py(x, y))


@pytest.fixture(scope="module")
def helpers() -> dict:
    """The generated module of a function that uses every helper, executed."""
    source = sg.value_and_grad(_all_specials, wrt=(0, 1)).lower(np.ones(3), np.ones(3)).source
    namespace: dict = {}
    exec(compile(source, "<generated>", "exec"), namespace)
    return namespace


def test_generated_module_imports_numpy_only():
    source = sg.value_and_grad(_all_specials, wrt=(0, 1)).lower(np.ones(3), np.ones(3)).source
    imports = [a.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Import)
               for a in n.names]
    assert imports == ["numpy"] and "scipy" not in source.replace("scipy.special", "")


def test_symgrad_never_imports_scipy_itself():
    code = ("import numpy as np, sys, symgrad as sg\n"
            "sg.grad(lambda x: np.sum(np.exp(x)))(np.ones(2))\n"
            "assert 'scipy' not in sys.modules, 'scipy imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _relative_error(ours: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Relative error; values below the normal range count as equal (scipy's erfc(27) is 0,
    the true value a subnormal 5.2e-319, which ours gives)."""
    tiny = np.finfo(np.float64).tiny
    same = (ours == reference) | (np.isnan(ours) & np.isnan(reference)) | (
        (np.abs(ours) < tiny) & (np.abs(reference) < tiny))
    with np.errstate(all="ignore"):
        error = np.abs(ours - reference) / np.abs(reference)
    return np.where(same, 0.0, error)


RNG = np.random.default_rng(7)
WIDE = np.concatenate([RNG.uniform(-6, 6, 4000), RNG.uniform(-30, 30, 500),
                       np.logspace(-300, 300, 300), -np.logspace(-300, 300, 300)])
SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, 2.0, -1.0, -2.0, 0.5, 27.0])


@pytest.mark.parametrize("name, reference", [("_erf", sc.erf), ("_erfc", sc.erfc)])
def test_error_functions(helpers, name, reference):
    x = np.concatenate([WIDE, SPECIAL])
    assert _relative_error(helpers[name](x), reference(x)).max() < 2e-13


@pytest.mark.parametrize("name, reference", [
    ("_gammaln", sc.gammaln), ("_digamma", sc.digamma),
    ("_trigamma", lambda x: sc.polygamma(1, x))])
def test_gamma_family_for_positive_arguments(helpers, name, reference):
    x = np.concatenate([RNG.uniform(0, 20, 4000), np.logspace(-300, 300, 600)])
    x = x[(np.abs(x - 1) > 0.01) & (np.abs(x - 2) > 0.01) & (np.abs(x - 1.4616) > 0.01)]
    assert _relative_error(helpers[name](x), reference(x)).max() < 1e-13


@pytest.mark.parametrize("name, reference", [
    ("_gammaln", sc.gammaln), ("_digamma", sc.digamma),
    ("_trigamma", lambda x: sc.polygamma(1, x))])
def test_gamma_family_for_negative_arguments_and_poles(helpers, name, reference):
    x = np.concatenate([RNG.uniform(-20, 0, 4000), -np.arange(0.0, 30.0), SPECIAL])
    ours, theirs = helpers[name](x), reference(x)
    assert np.array_equal(np.isnan(ours), np.isnan(theirs))
    assert np.array_equal(ours[np.isinf(theirs)], theirs[np.isinf(theirs)])
    finite = np.isfinite(theirs)
    # Reflection loses relative accuracy next to the negative zeros, as scipy's does.
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-12, atol=1e-13)


def test_gammaln_and_digamma_near_their_zeros_against_mpmath(helpers):
    offsets = np.concatenate([np.logspace(-15, -1, 60), -np.logspace(-15, -1, 60)])
    mpmath.mp.dps = 40
    for zero in (1.0, 2.0):
        x = zero + offsets
        exact = np.array([float(mpmath.log(abs(mpmath.gamma(mpmath.mpf(v))))) for v in x])
        assert _relative_error(helpers["_gammaln"](x), exact).max() < 1e-14
    x = 1.4616321449683622 + offsets
    exact = np.array([float(mpmath.digamma(mpmath.mpf(v))) for v in x])
    assert _relative_error(helpers["_digamma"](x), exact).max() < 1e-14


def test_logit_xlogy_xlog1py(helpers):
    p = np.concatenate([RNG.uniform(0, 1, 3000), [0.0, 1.0, 0.5, 0.3, 0.65, np.nan]])
    assert _relative_error(helpers["_logit"](p), sc.logit(p)).max() < 4e-16
    x = np.concatenate([RNG.normal(size=500), np.zeros(5)])
    y = np.concatenate([RNG.uniform(-2, 3, 500), [0.0, -1.0, np.nan, 2.0, np.inf]])
    assert _relative_error(helpers["_xlogy"](x, y), sc.xlogy(x, y)).max() < 4e-16
    assert _relative_error(helpers["_xlog1py"](x, y), sc.xlog1py(x, y)).max() < 4e-16


def test_helpers_keep_float32(helpers):
    x = np.linspace(-3, 3, 7, dtype=np.float32)
    for name in ("_erf", "_erfc", "_logit"):
        assert helpers[name](x).dtype == np.float32
    for name in ("_gammaln", "_digamma", "_trigamma"):
        assert helpers[name](np.abs(x) + 0.5).dtype == np.float32


def test_third_derivative_of_gammaln_is_refused_by_name():
    def third(x):
        return np.sum(sc.digamma(x))

    second = sg.hessian(third)
    with pytest.raises(sg.GradientError, match="trigamma"):
        second(np.ones(2))
