"""`fast_math=True`, the one option for speed over exactness, on every transform and both
backends: the unsafe algebraic folds (x - x -> 0, 0*x -> 0, x/x -> 1) happen with it and not
without (NaN and inf inputs tell them apart), it is in the cache key and in the generated
file's header, and the C compiler gets -ffast-math (without flushing subnormals here)."""
from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from symgrad.backends.c import backend as c_backend
from symgrad.errors import ArgumentError, CompilerError

try:
    c_backend.toolchain()
    BACKENDS = ["numpy", "c"]
except CompilerError:  # pragma: no cover - CI installs gcc
    BACKENDS = ["numpy"]

X = np.array([0.5, np.inf, -2.0, np.nan, 3.0])
FINITE = np.isfinite(X)


def folded(x):
    """sin(x - x) is sin(0) = 0 once folded; NaN at inf and NaN when computed."""
    return np.sum(np.sin(x - x) * x ** 2) + np.sum(x * 0.0 + x / x)


def elementwise(x):
    return np.sin(x - x) * x ** 2 + x


def cases():
    """(transform name, call, exact answer at X, folded answer at X)."""
    n = len(X)
    finite_value = np.sum(FINITE)  # x/x is 1, 0*x is 0, sin(x - x) is 0
    ones = np.ones(n)
    nan_at = np.where(FINITE, 1.0, np.nan)
    zero_but_nan = np.where(np.isnan(X), np.nan, 0.0)  # folded at inf; at NaN: either
    return [
        ("jit", lambda **o: sg.jit(folded, **o)(X), np.nan, float(n)),
        ("grad", lambda **o: sg.grad(folded, **o)(X), nan_at * 0, np.zeros(n)),
        ("value_and_grad", lambda **o: sg.value_and_grad(folded, **o)(X)[0], np.nan, float(n)),
        ("vjp", lambda **o: sg.vjp(elementwise, X, **o)[1](ones)[0], nan_at, ones),
        ("jvp", lambda **o: sg.jvp(elementwise, (X,), (ones,), **o)[1], nan_at, ones),
        ("hvp", lambda **o: sg.hvp(folded, **o)(X, ones), nan_at * 0, zero_but_nan),
        ("jacrev", lambda **o: np.diag(sg.jacrev(elementwise, **o)(X)), nan_at, ones),
        ("jacfwd", lambda **o: np.diag(sg.jacfwd(elementwise, **o)(X)), nan_at, ones),
        ("hessian", lambda **o: np.diag(sg.hessian(folded, **o)(X)), nan_at * 0,
         zero_but_nan),
        ("vmap", lambda **o: sg.vmap(elementwise, **o)(X), np.where(FINITE, X, np.nan),
         np.where(np.isnan(X), np.nan, X)),
    ]


CASES = cases()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,call,exact,fast", CASES, ids=[c[0] for c in CASES])
def test_folds_happen_with_fast_math_and_not_without(name, call, exact, fast, backend):
    with np.errstate(all="ignore"):
        exact_got = call(backend=backend)
        fast_got = call(backend=backend, fast_math=True)
    # NaN where the folds are refused, the folded value where they happen
    np.testing.assert_array_equal(np.asarray(exact_got), np.asarray(exact))
    fast_got, fast = np.asarray(fast_got), np.asarray(fast)
    if name in ("hvp", "hessian"):  # a NaN input may stay NaN through a second derivative
        fast_got, fast = fast_got[~np.isnan(X)], fast[~np.isnan(X)]
    np.testing.assert_array_equal(fast_got, fast)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fast_math_agrees_at_finite_inputs(backend):
    x = np.linspace(-2, 2, 8)
    exact = sg.value_and_grad(folded, backend=backend)(x)
    fast = sg.value_and_grad(folded, backend=backend, fast_math=True)(x)
    np.testing.assert_allclose(fast[0], exact[0], rtol=1e-14)
    np.testing.assert_allclose(fast[1], exact[1], rtol=1e-14, atol=1e-14)
    assert np.isclose(fast[0], 8.0)  # sin(0) terms vanish, x/x is 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_fast_math_is_in_the_cache_key_and_the_header(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))
    x = np.linspace(1, 2, 5)
    exact = sg.grad(folded, backend=backend).lower(x)
    fast = sg.grad(folded, backend=backend, fast_math=True).lower(x)
    assert exact.key != fast.key
    assert "fast math: on" in fast.source.split('"""', 2)[1]
    assert "fast math: on" not in exact.source.split('"""', 2)[1]
    if backend == "c":
        c_header = fast.path.with_suffix(".c").read_text().split("*/", 1)[0]
        assert "fast math: on" in c_header and "-ffast-math" in c_header
        assert "fast math: off" in exact.path.with_suffix(".c").read_text().split("*/", 1)[0]
        assert '"-ffast-math"]' in fast.source  # an exported launcher compiles it so
        assert "-ffast-math" in c_backend.key_components(True)["c_flags"]
        assert "-ffast-math" not in c_backend.key_components(False)["c_flags"]
        # the fast-math library must not flush subnormals in this process (crtfastmath.o)
        np.testing.assert_array_equal(fast.function(x), exact.function(x))
        tiny = np.array([5e-324, 1e-310])
        assert tiny[0] > 0 and tiny[1] / 2 > 0
    # a second process loads the fast entry from the cache (its own key, no recompile)
    again = sg.grad(folded, backend=backend, fast_math=True).lower(x)
    assert again.key == fast.key and again.from_cache


def test_a_division_wrong_everywhere_stays_a_division():
    """x/1e-310 is not x*(1/1e-310) = x*inf even with fast math; x/3.0 may be x*0.333..."""
    x = np.array([1e-300, 2.0])
    got = sg.jit(lambda x: x / 1e-310, fast_math=True)(x)
    np.testing.assert_array_equal(got, x / 1e-310)
    third = sg.jit(lambda x: x / 3.0, fast_math=True)(x)
    np.testing.assert_allclose(third, x / 3.0, rtol=2e-16)


def test_fast_math_must_be_a_bool():
    with pytest.raises(ArgumentError, match="fast_math"):
        sg.grad(folded, fast_math="yes")


def test_command_line_fast_math(tmp_path, capsys):
    from symgrad.cli import main

    source = tmp_path / "model.py"
    source.write_text("import numpy as np\n\ndef f(x):\n    return np.sum(x - x)\n")
    for flags, expected in (([], "x - x"), (["--fast-math"], "fast math: on")):
        main(["show", f"{source}:f", "--arg", "x=f64[3]", "--mode", "jit", *flags])
        assert expected in capsys.readouterr().out


def test_inside_another_transform_the_outer_setting_holds():
    x = np.array([np.inf, 1.0])
    with np.errstate(all="ignore"):
        fast_inner = sg.jit(lambda x: x - x, fast_math=True)
        exact_inner = sg.jit(lambda x: x - x)
        np.testing.assert_array_equal(fast_inner(x), [0.0, 0.0])
        np.testing.assert_array_equal(sg.jit(lambda x: fast_inner(x) + 1)(x), [np.nan, 1.0])
        np.testing.assert_array_equal(sg.jit(lambda x: exact_inner(x) + 1, fast_math=True)(x),
                                      [1.0, 1.0])
