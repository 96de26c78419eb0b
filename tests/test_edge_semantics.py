"""No silent wrong numbers at the edges (issue 9): exact folding at NaN, inf, subnormals and
signed zero; results that never share memory with inputs or each other and are writable;
clear errors for complex, object and masked arrays; and every bug a fuzzer found, each checked
against numpy, PyTorch or central differences."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import symgrad as sg
from gradcheck import central_difference, torch_gradients

EDGES = np.array([0.0, -0.0, 5e-324, 1e-310, -1e-310, 1e308, -1e308, np.inf, -np.inf, np.nan,
                  2.0, -3.5])


def _same(a, b) -> bool:
    """Equal values, NaN where NaN, and the same sign of zero."""
    a, b = np.asarray(a), np.asarray(b)
    numbers = ~np.isnan(a) if a.shape == b.shape else None  # a NaN's sign means nothing
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(
        a, b, equal_nan=True) and np.array_equal(np.signbit(a[numbers]), np.signbit(b[numbers]))


# -- folding: exact for every float ----------------------------------------------------------
FOLDS = {
    "x/1e-310": lambda x: x / 1e-310,
    "x/5e-324": lambda x: x / 5e-324,
    "x/0.0": lambda x: x / 0.0,
    "x/0.1": lambda x: x / 0.1,
    "x/3.0": lambda x: x / 3.0,
    "x/0.5": lambda x: x / 0.5,
    "0*x": lambda x: 0 * x,
    "x*0.0": lambda x: x * 0.0,
    "-0.0*x": lambda x: -0.0 * x,
    "x-x": lambda x: x - x,
    "x+(-x)": lambda x: x + (-x),
    "x/x": lambda x: x / x,
    "2x-2x": lambda x: x * 2 - x * 2,
    "exp(x)-exp(x)": lambda x: np.exp(x) - np.exp(x),
    "x*0+x": lambda x: x * 0 + x,
    "x/abs(x)": lambda x: x / np.abs(x),
}


@pytest.mark.parametrize("name", FOLDS)
def test_folding_is_exact_at_edge_values(name):
    f = FOLDS[name]
    with np.errstate(all="ignore"):
        expected = f(EDGES.copy())
        got = sg.jit(f)(EDGES.copy())
    assert _same(got, expected), (name, got, expected)


def test_division_by_a_subnormal_constant_is_printed_as_a_division():
    source = sg.jit(lambda x: x / 1e-310).lower(EDGES).source
    assert "x/1e-310" in source and "np.inf" not in source


def test_cancelled_forms_keep_a_zero_gradient():
    x = np.array([1.5, -2.0, 3.0])
    value, g = sg.value_and_grad(lambda x: np.sum(x - x + 0 * x + x / x + x * x))(x)
    assert value == pytest.approx(np.sum(x * x) + 3)
    np.testing.assert_allclose(g, 2 * x)


# -- aliasing and writeability over every transform ------------------------------------------
def _results(out):
    if isinstance(out, (tuple, list)):
        return [r for o in out for r in _results(o)]
    return [out]


ALIASING = [
    ("grad of y.T", lambda: sg.grad(lambda x, y: np.sum(x * y.T), wrt="x"),
     (np.ones((2, 3)), np.arange(6.0).reshape(3, 2))),
    ("grad of broadcast_to", lambda: sg.grad(lambda x: np.sum(np.broadcast_to(x, (3, 2)))),
     (np.ones(2),)),
    ("two equal gradients", lambda: sg.grad(lambda a, b: np.sum(a + b), wrt=("a", "b")),
     (np.ones((2, 2)), np.ones((2, 2)))),
    ("value_and_grad identity", lambda: sg.value_and_grad(lambda x: np.sum(x * x)),
     (np.arange(3.0),)),
    ("vjp of a view", lambda: _vjp_and_pullback(lambda x: x.T), (np.arange(6.0).reshape(2, 3),
                                                                  np.ones((3, 2)))),
    ("jit views", lambda: sg.jit(lambda a: (a.T, a.reshape(-1), a[0], a, a, np.diagonal(a))),
     (np.arange(16.0).reshape(4, 4),)),
    ("jit view of a result", lambda: sg.jit(lambda a: (a * 2, (a * 2).T)),
     (np.arange(4.0).reshape(2, 2),)),
    ("jacobian", lambda: sg.jacobian(lambda x: x * 1.0), (np.arange(3.0),)),
    ("hessian", lambda: sg.hessian(lambda x: np.sum(x * x)), (np.arange(3.0),)),
]


def _vjp_and_pullback(f):
    """(value, gradient) of sg.vjp(f, x) with its pullback applied to `cotangent`."""
    def both(x, cotangent):
        out, pullback = sg.vjp(f, x, wrt=0)
        return out, pullback(cotangent)
    return both


@pytest.mark.parametrize("case", ALIASING, ids=[c[0] for c in ALIASING])
def test_results_are_fresh_writable_arrays(case):
    _, make, args = case
    saved = [a.copy() for a in args]
    results = _results(make()(*args))
    for k, r in enumerate(results):
        assert isinstance(r, np.ndarray) or np.isscalar(r)
        if isinstance(r, np.ndarray):
            assert r.flags.writeable
            assert not any(np.shares_memory(r, a) for a in args)
            assert not any(np.shares_memory(r, o) for o in results[:k]
                           if isinstance(o, np.ndarray))
            r *= 0.5  # never changes an input
    for a, s in zip(args, saved):
        np.testing.assert_array_equal(a, s)


# -- arguments numpy computes differently from symgrad: clear errors -------------------------
@pytest.mark.parametrize("array", [np.array([1 + 1j, 2.0]), np.array([1.0, 2.0], dtype=object),
                                   np.ma.array([1.0, 2.0, 3.0], mask=[0, 0, 1])],
                         ids=["complex", "object", "masked"])
@pytest.mark.parametrize("transform", [sg.jit, sg.grad])
def test_unsupported_arrays_are_clear_errors(array, transform):
    with pytest.raises(sg.ArgumentError, match="argument 'x'"):
        transform(lambda x: np.sum(x * x))(array)


def test_mean_of_an_empty_array_is_nan_as_numpy():
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(sg.jit(lambda x: np.mean(x))(np.zeros(0)))
        value, g = sg.value_and_grad(lambda x: np.mean(x))(np.zeros(0))
    assert np.isnan(value) and g.shape == (0,)


@pytest.mark.parametrize("f", [lambda x: x * True, lambda x: x + False, lambda x: x ** True,
                               lambda x: np.where(x > 0, True, x)])
def test_python_bools_in_arithmetic_are_one_and_zero(f):
    x = np.array([1.5, -2.0])
    got = sg.jit(f)(x)
    assert _same(got, f(x))


def test_a_static_bool_argument_compiles_and_differentiates():
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(sg.grad(lambda x, f: np.sum(x * f * x), wrt="x")(x, True), 2 * x)
    np.testing.assert_allclose(sg.grad(lambda x, f: np.sum(x * f + x), wrt="x")(x, False), 1)


# -- found by differential fuzzing -----------------------------------------------------------
A, B = np.random.default_rng(0).normal(size=(3, 4)), np.random.default_rng(1).normal(size=(4, 2))
V = np.array([1.0, 2.0, 3.0])
CONTRACTIONS = {
    "square(inner)": (lambda x: np.square(np.inner(x, x)), (V,)),
    "vdot**2": (lambda x: np.vdot(x, x) ** 2, (V,)),
    "sum(einsum**2)": (lambda a, b: np.sum(np.einsum("ij,jk->ik", a, b) ** 2), (A, B)),
    "c/einsum": (lambda a, b: np.sum(np.ones((3, 2)) / np.einsum("ij,jk->ik", a, b)), (A, B)),
    "tensordot**2": (lambda a, b: np.sum(np.tensordot(a, b, 1) ** 2), (A, B)),
    "-einsum": (lambda a, b: np.sum(-np.einsum("ij,jk->ik", a, b) ** 3), (A, B)),
}


@pytest.mark.parametrize("name", CONTRACTIONS)
def test_contractions_are_parenthesized_in_expressions(name):
    f, args = CONTRACTIONS[name]
    np.testing.assert_allclose(sg.jit(f)(*args), f(*args), rtol=1e-12)
    grads = sg.grad(f, wrt=tuple(range(len(args))))(*args)
    for k, g in enumerate(grads):
        np.testing.assert_allclose(g, central_difference(f, args, k), rtol=1e-5, atol=1e-6)


STRETCH_SHAPES = [(4, 4), (1, 1), (1, 4), (4, 1), (4,), (1,), ()]


@pytest.mark.parametrize("b_shape", STRETCH_SHAPES)
@pytest.mark.parametrize("a_shape", STRETCH_SHAPES)
def test_size_one_operands_sum_their_stretched_axes(a_shape, b_shape):
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=a_shape), rng.normal(size=b_shape)
    value, (ga, gb) = sg.value_and_grad(lambda a, b: np.sum(a * b + b), wrt=("a", "b"))(a, b)
    tv, (ta, tb) = torch_gradients(lambda a, b: (a * b + b).sum(), (a, b), (0, 1))
    assert value == pytest.approx(tv)
    np.testing.assert_allclose(ga, ta, atol=1e-12)
    np.testing.assert_allclose(gb, tb, atol=1e-12)
    assert ga.shape == a.shape and gb.shape == b.shape


def test_norm_of_a_0d_array_is_its_absolute_value():
    x = np.array(-2.0)
    assert sg.jit(lambda x: np.linalg.norm(x))(x) == 2.0
    assert sg.grad(lambda x: np.linalg.norm(x))(x) == -1.0


@pytest.mark.parametrize("f", [lambda x: np.std(x, keepdims=True),
                               lambda x: np.linalg.norm(x, keepdims=True),
                               lambda x: np.var(x, keepdims=True)], ids=["std", "norm", "var"])
def test_all_axis_reductions_of_3d_keep_dims(f):
    x = np.random.default_rng(2).normal(size=(2, 3, 4))
    got = sg.jit(f)(x)
    assert got.shape == (1, 1, 1)
    np.testing.assert_allclose(got, f(x))
    g = sg.grad(lambda x: np.sum(f(x)))(x)
    np.testing.assert_allclose(g, central_difference(lambda x: np.sum(f(x)), [x], 0),
                               rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("shape", [(2, 3), (3, 2), (3, 3)])
def test_trace_of_any_matrix(shape):
    x = np.arange(np.prod(shape), dtype=float).reshape(shape)
    assert sg.jit(lambda x: np.trace(x))(x) == np.trace(x)
    g = sg.grad(lambda x: np.trace(x))(x)
    np.testing.assert_array_equal(g, np.eye(*shape))


def test_float32_stays_float32_with_log2_constants():
    x = np.array([0.5, 1.0, 2.0], dtype=np.float32)
    for f in (lambda x: np.sum(np.logaddexp2(x, -x)), lambda x: np.sum(np.log2(x) * np.exp2(x))):
        value, g = sg.value_and_grad(f)(x)
        assert value.dtype == np.float32 and g.dtype == np.float32
        np.testing.assert_allclose(g, central_difference(f, [x.astype(np.float64)], 0),
                                   rtol=1e-4)


def test_sqrt_of_a_square_has_the_abs_convention_at_zero():
    x = np.array([0.0, -2.0, 3.0])
    np.testing.assert_array_equal(sg.grad(lambda x: np.sum(np.sqrt(x * x)))(x), [0, -1, 1])
    np.testing.assert_array_equal(sg.grad(lambda x: np.sum(np.abs(x)))(x), [0, -1, 1])
    np.testing.assert_array_equal(sg.jit(lambda x: np.sqrt(x * x))(x), np.abs(x))


BIG = np.array([[1000.0, -1000.0, 0.0], [1.0, 2.0, 3.0]])
SOFTMAXES = {
    "without keepdims": (lambda x: np.exp(x) / np.exp(x).sum(0),
                         lambda t: torch.softmax(t, 0)),
    "x*exp(x)/S": (lambda x: np.sum(x * np.exp(x) / np.exp(x).sum(1, keepdims=True), 1),
                   lambda t: (t * torch.softmax(t, 1)).sum(1)),
    "exp(x)*x/S": (lambda x: np.exp(x) * x / np.exp(x).sum(1, keepdims=True),
                   lambda t: t * torch.softmax(t, 1)),
    "log(softmax)": (lambda x: np.log(np.exp(x) / np.exp(x).sum(1, keepdims=True)),
                     lambda t: torch.log_softmax(t, 1)),
    "log(softmax) axis 0": (lambda x: np.log(np.exp(x) / np.exp(x).sum(0)),
                            lambda t: torch.log_softmax(t, 0)),
}


@pytest.mark.parametrize("name", SOFTMAXES)
def test_softmax_forms_are_finite_at_1000(name):
    f, tf = SOFTMAXES[name]
    value = sg.jit(f)(BIG)
    t = torch.tensor(BIG, requires_grad=True)
    expected = tf(t)
    weights = np.cos(np.arange(expected.numel())).reshape(tuple(expected.shape))
    (expected * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(value, expected.detach().numpy(), atol=1e-12)
    g = sg.grad(lambda x: np.sum(f(x) * weights))(BIG)
    np.testing.assert_allclose(g, t.grad.numpy(), atol=1e-12)


def test_softmax_along_a_trailing_axis_without_keepdims_is_not_rewritten():
    x = np.array([[0.1, 0.2], [0.3, 0.4]])  # e/e.sum(1) broadcasts row sums along columns
    f = lambda x: np.exp(x) / np.exp(x).sum(1)  # noqa: E731
    np.testing.assert_allclose(sg.jit(f)(x), f(x))


def test_numpy_scalar_promotion_warns_naming_the_line(monkeypatch):
    x = np.ones(3, dtype=np.float32)
    f = sg.jit(lambda x, d: x * (1.0 / np.sqrt(d)))
    with pytest.warns(sg.DtypePromotionWarning, match=r"test_edge_semantics.py:\d+: multiply"):
        assert f(x, 4).dtype == np.float64  # numpy's answer, said aloud
    monkeypatch.setenv("SYMGRAD_DTYPE_PROMOTION", "error")
    with pytest.raises(sg.DtypePromotionError, match="float32"):
        sg.jit(lambda x, d: x * (1.0 / np.sqrt(d)))(x, 9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sg.jit(lambda x, d: x * (1.0 / float(np.sqrt(d))),
                      static_argnames="d")(x, 4).dtype == np.float32
        assert sg.jit(lambda x, d: x * (1.0 / d ** 0.5))(x, 4).dtype == np.float32  # weak d


def test_logsumexp_of_rows_holding_inf_or_all_minus_inf_is_torchs():
    x = np.array([[np.inf, 1.0], [-np.inf, -np.inf], [1000.0, 2.0], [1.0, 2.0]])
    with np.errstate(divide="ignore"):  # log(0) of the -inf row, as numpy warns
        got = sg.jit(lambda x: np.log(np.sum(np.exp(x), axis=1)))(x)
    np.testing.assert_array_equal(got[:2], [np.inf, -np.inf])
    np.testing.assert_allclose(got, torch.logsumexp(torch.tensor(x), 1).numpy(), rtol=1e-15)


@pytest.mark.parametrize("f", [
    lambda x, y: y - (x + y - x), lambda x, y: x * (y / x), lambda x, y: (x + y) - y,
    lambda x, y: y / (x / x), lambda x, y: y - (x - x), lambda x, y: (x / 1e-310) ** 2,
    lambda x, y: x - (x + 3.0), lambda x, y: -(x - x) * y])
def test_cancelled_operands_are_computed_as_written(f):
    # found by the fuzzer: (x + y) - x is not y for floats (inf, rounding at 1e16), and a kept
    # x - (x + 3) needs its parentheses
    x, y = np.array([1.0, np.inf, 0.0, 2.0, 1e16, np.nan]), np.array([3.0, 3, 3, -1, 1, 1])
    with np.errstate(all="ignore"):
        assert _same(sg.jit(f)(x, y), f(x, y))
    a, b = np.array([1.5, -2.0]), np.array([0.5, 3.0])
    with np.errstate(all="ignore"):
        grads = sg.grad(lambda x, y: np.sum(f(x, y)), wrt=(0, 1))(a, b)
        for k, g in enumerate(grads):
            expected = central_difference(lambda x, y: np.sum(f(x, y)), [a, b], k)
            if not np.isfinite(expected).all():  # (x/1e-310)**2: the gradient is +-inf
                expected = np.sign(a) * np.inf if k == 0 else np.zeros(2)
            np.testing.assert_allclose(g, expected, atol=1e-6)


def test_where_of_a_cancelled_branch_has_the_gradient_of_torch():
    # found by the fuzzer: np.where(v > v, v*v, v - v) with v = -x
    g = sg.grad(lambda x: np.where(-x > -x, x * x, -x - -x))(np.array(1.0))
    assert g == 0.0


@pytest.mark.parametrize("f", [lambda x, y: np.square(x * y), lambda x, y: (x * y) ** 3,
                               lambda x, y: (x * y) ** -2, lambda x, y: y * (x * y) ** -3])
def test_a_power_of_a_product_is_not_distributed(f):
    # found by the fuzzer: SymPy writes (x*y)**2 as x**2*y**2, NaN at x = 1e-300, y = inf
    x, y = np.array([1e-300, 2.0, 3.0, -0.0]), np.array([np.inf, 3.0, -1.0, 2.0])
    with np.errstate(all="ignore"):
        assert _same(sg.jit(f)(x, y), f(x, y))
    a, b = np.array([1.5, -2.0]), np.array([0.5, 3.0])
    grads = sg.grad(lambda x, y: np.sum(f(x, y)), wrt=(0, 1))(a, b)
    for k, g in enumerate(grads):
        np.testing.assert_allclose(
            g, central_difference(lambda x, y: np.sum(f(x, y)), [a, b], k), rtol=1e-6)


def test_a_kept_power_is_parenthesized_as_a_base():
    # found by the fuzzer: np.square(np.mean(x)) ** 4 was printed (t0/3)**2**4, x**16
    x = np.array([[0.3, -1.2, 2.0]])
    for f in (lambda x: np.square(np.mean(2.0 * x)) ** 4, lambda x: ((x * x[:, :1]) ** -2) ** 3,
              lambda x: 1.0 / (x * x[:, :1]) ** -2):
        np.testing.assert_allclose(sg.jit(f)(x), f(x), rtol=1e-13)
