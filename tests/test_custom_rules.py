"""custom_jvp and custom_vjp: gradients, Hessians (the derivative of the rule) and forward
mode against torch.autograd.Function equivalents; nondiff_argnums, pytrees, vmap; errors."""
from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(7)
X = RNG.standard_normal(4)


def t(x):
    return torch.tensor(x, dtype=torch.float64, requires_grad=True)


def torch_hessian(f, x):
    return torch.autograd.functional.hessian(lambda x: f(x), torch.tensor(x)).numpy()


# -- custom_jvp -------------------------------------------------------------------------------
@sg.custom_jvp
def log1pexp(x):
    return np.log1p(np.exp(x))


@log1pexp.defjvp
def log1pexp_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return log1pexp(x), dx * (1 - 1 / (1 + np.exp(x)))


def test_custom_jvp_gradient_is_finite_where_the_plain_one_is_not():
    x = np.array([100.0, 800.0, 0.0, -30.0])
    g = sg.grad(lambda x: np.sum(log1pexp(x)))(x)
    expected = torch.sigmoid(torch.tensor(x)).numpy()
    np.testing.assert_allclose(g, expected, rtol=1e-14)
    assert np.all(np.isfinite(g))


@sg.custom_jvp
def twice_cos_sin(x):
    """sin, with a rule that is not its derivative: the tests can tell which one is used."""
    return np.sin(x)


@twice_cos_sin.defjvp
def _(primals, tangents):
    (x,), (dx,) = primals, tangents
    return np.sin(x), 2 * np.cos(x) * dx


class TwiceCosSin(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 2 * torch.cos(x)


def test_custom_jvp_gradient_hessian_and_forward_mode_use_the_rule():
    def f(x):
        return np.sum(twice_cos_sin(x) * x)

    def f_t(x):
        return torch.sum(TwiceCosSin.apply(x) * x)

    x = t(X)
    (expected,) = torch.autograd.grad(f_t(x), x)
    np.testing.assert_allclose(sg.grad(f)(X), expected.numpy(), rtol=1e-14)
    h = sg.hessian(f)(X)  # the derivative of the rule, not of sin's true derivative
    np.testing.assert_allclose(h, torch_hessian(f_t, X), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(np.diag(h), -2 * np.sin(X) * X + 4 * np.cos(X), rtol=1e-13)
    tangent = RNG.standard_normal(4)
    _, out = sg.jvp(lambda x: twice_cos_sin(x) * 3.0, (X,), (tangent,))
    np.testing.assert_allclose(out, 6 * np.cos(X) * tangent, rtol=1e-14)
    third = sg.grad(lambda x: np.sum(sg.grad(lambda y: np.sum(sg.grad(f)(y)))(x)))(X)
    np.testing.assert_allclose(third, -2 * np.cos(X) * X - 6 * np.sin(X), rtol=1e-12)


def test_custom_jvp_with_nondiff_argnums_and_two_arguments():
    @sg.custom_jvp(nondiff_argnums=(0,))
    def scaled_product(k, a, b):
        return k * a * b

    @scaled_product.defjvp
    def rule(k, primals, tangents):
        (a, b), (da, db) = primals, tangents
        return k * a * b, k * (da * b + a * db) * 10  # ten times the true tangent

    a, b = RNG.standard_normal(3), RNG.standard_normal(3)
    ga, gb = sg.grad(lambda a, b: np.sum(scaled_product(2.0, a, b)), wrt=(0, 1))(a, b)
    np.testing.assert_allclose(ga, 20 * b)
    np.testing.assert_allclose(gb, 20 * a)
    hab = sg.jacrev(sg.grad(lambda a, b: np.sum(scaled_product(2.0, a, b)), wrt=0), wrt=1)(a, b)
    np.testing.assert_allclose(hab, 20 * np.eye(3))


# -- custom_vjp -------------------------------------------------------------------------------
@sg.custom_vjp
def round_ste(x):
    return np.rint(x)


round_ste.defvjp(lambda x: (np.rint(x), None), lambda _, g: (g,))


class RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, g):
        return g


def test_straight_through_estimator_against_torch():
    w = RNG.standard_normal(4)

    def f(x, w):
        return np.sum(np.tanh(round_ste(x * 3) * w))

    def f_t(x, w):
        return torch.sum(torch.tanh(RoundSTE.apply(x * 3) * w))

    x = t(X)
    (expected,) = torch.autograd.grad(f_t(x, torch.tensor(w)), x)
    np.testing.assert_allclose(sg.grad(f)(X, w), expected.numpy(), rtol=1e-14)
    assert np.array_equal(sg.jit(lambda x: round_ste(x))(X), np.rint(X))


@sg.custom_vjp
def cube(x):
    return x ** 3


def _cube_fwd(x):
    return x ** 3, (x, x ** 2)


def _cube_bwd(residuals, g):
    x, x2 = residuals
    return (g * 3 * x2 + g * np.sin(x),)  # not the true derivative: the rule is what counts


cube.defvjp(_cube_fwd, _cube_bwd)


class Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x ** 2 + g * torch.sin(x)


def test_custom_vjp_hessian_differentiates_bwd_through_residuals_and_cotangent():
    def f(x):
        return np.sum(cube(x) * np.cos(x))

    def f_t(x):
        return torch.sum(Cube.apply(x) * torch.cos(x))

    x = t(X)
    (expected,) = torch.autograd.grad(f_t(x), x)
    np.testing.assert_allclose(sg.grad(f)(X), expected.numpy(), rtol=1e-13)
    np.testing.assert_allclose(sg.hessian(f)(X), torch_hessian(f_t, X), rtol=1e-12,
                               atol=1e-14)
    v = RNG.standard_normal(4)
    np.testing.assert_allclose(sg.hvp(f)(X, v), torch_hessian(f_t, X) @ v, rtol=1e-12)


def test_gradient_clipping_with_nondiff_argnums_and_forward_mode():
    @sg.custom_vjp(nondiff_argnums=(0, 1))
    def clip_gradient(lo, hi, x):
        return x

    clip_gradient.defvjp(lambda lo, hi, x: (x, None),
                         lambda lo, hi, _, g: (np.clip(g, lo, hi),))
    x = np.linspace(-1, 1, 5)
    g = sg.grad(lambda x: np.sum(clip_gradient(-0.5, 0.25, x) * np.arange(-2.0, 3.0)))(x)
    np.testing.assert_allclose(g, np.clip(np.arange(-2.0, 3.0), -0.5, 0.25))
    # forward mode: bwd linearised at a zero cotangent, where the clip's slope is 1
    _, tangent = sg.jvp(lambda x: clip_gradient(-0.5, 0.25, x) * 2, (x,), (np.arange(5.0),))
    np.testing.assert_allclose(tangent, 2 * np.arange(5.0))


def test_pytree_arguments_and_several_outputs():
    @sg.custom_vjp
    def affine(params, x):
        return params["w"] * x + params["b"], np.sum(x)

    def fwd(params, x):
        return affine(params, x), (params["w"], x)

    def bwd(residuals, g):
        w, x = residuals
        gy, gs = g
        return {"w": gy * x * 2, "b": gy * 2}, gy * w + gs

    affine.defvjp(fwd, bwd)
    params = {"w": RNG.standard_normal(3), "b": RNG.standard_normal(3)}
    x = RNG.standard_normal(3)

    def loss(params, x):
        y, s = affine(params, x)
        return np.sum(y ** 2) + 3 * s

    gp, gx = sg.grad(loss, wrt=(0, 1))(params, x)
    y = params["w"] * x + params["b"]
    np.testing.assert_allclose(gp["w"], 2 * y * x * 2)
    np.testing.assert_allclose(gp["b"], 2 * y * 2)
    np.testing.assert_allclose(gx, 2 * y * params["w"] + 3)


def test_vmap_of_custom_rules_both_ways():
    xs = RNG.standard_normal((5, 4))

    def f(x):
        return np.sum(cube(x) * np.cos(x)) + np.sum(twice_cos_sin(x) ** 2)

    per_example = sg.vmap(sg.grad(f))(xs)
    np.testing.assert_allclose(per_example, np.stack([sg.grad(f)(x) for x in xs]), rtol=1e-13)
    hessians = sg.vmap(sg.hessian(f))(xs)
    np.testing.assert_allclose(hessians, np.stack([sg.hessian(f)(x) for x in xs]), rtol=1e-12)
    summed = sg.grad(lambda xs: np.sum(sg.vmap(f)(xs)))(xs)
    np.testing.assert_allclose(summed, per_example, rtol=1e-13)
    w = RNG.standard_normal(4)
    shared = sg.vmap(sg.grad(lambda w, x: np.sum(cube(w * x))), in_axes=(None, 0))(w, xs)
    np.testing.assert_allclose(shared, np.stack([3 * (w * x) ** 2 * x + np.sin(w * x) * x
                                                 for x in xs]), rtol=1e-13)


# -- errors -----------------------------------------------------------------------------------
def test_a_bwd_that_cannot_be_traced_is_refused_with_its_name():
    @sg.custom_vjp
    def f(x):
        return x * 2

    f.defvjp(lambda x: (x * 2, x), lambda x, g: (g * float(np.sum(x)),))
    with pytest.raises(sg.TracingError, match="custom_vjp rule of f could not be traced"):
        sg.grad(lambda x: np.sum(f(x)))(X)


def test_rule_errors():
    @sg.custom_jvp
    def square(x):
        return x ** 2

    with pytest.raises(sg.ArgumentError, match="no rule yet.*defjvp"):
        sg.grad(lambda x: np.sum(square(x)))(X)
    square.defjvp(lambda p, tg: (p[0] ** 2, tg[0] * tg[0]))
    with pytest.raises(sg.GradientError, match="not linear in its tangents"):
        sg.grad(lambda x: np.sum(square(x)))(X)

    @sg.custom_vjp
    def g(x):
        return x

    g.defvjp(lambda x: (x, None), lambda _, ct: (ct[:2],))
    with pytest.raises(sg.ShapeError, match="shaped like the values it pairs with"):
        sg.grad(lambda x: np.sum(g(x)))(X)
    g.defvjp(lambda x: (x, None), lambda _, ct: ct)
    with pytest.raises(sg.ArgumentError, match="one entry per differentiated argument"):
        sg.grad(lambda x: np.sum(g(x)))(X)


def test_plain_numpy_calls_run_the_function():
    assert np.array_equal(cube(X), X ** 3)
    assert np.allclose(log1pexp(X), np.log1p(np.exp(X)))


# -- user-defined elementwise primitives ------------------------------------------------------
sp = pytest.importorskip("sympy")
softclip = sg.elementwise("soft clip", lambda x, c: c * sp.tanh(x / c))
huber = sg.elementwise("huber", lambda r, d: sp.Piecewise(
    (r ** 2 / 2, sp.Abs(r) <= d), (d * (sp.Abs(r) - d / 2), True)))


def test_elementwise_primitive_values_gradients_and_hessians_against_torch():
    x = np.array([-3.0, -0.4, 0.5, 4.0])

    def f(x):
        return np.sum(softclip(x, 2.0) * x + huber(x, 1.0))

    def f_t(x):
        return torch.sum(2.0 * torch.tanh(x / 2.0) * x
                         + torch.nn.functional.huber_loss(x, torch.zeros_like(x), reduction="none",
                                                          delta=1.0))

    np.testing.assert_allclose(softclip(x, 2.0), 2 * np.tanh(x / 2), rtol=1e-15)
    np.testing.assert_allclose(sg.jit(f)(x), f_t(torch.tensor(x)).item(), rtol=1e-14)
    xt = t(x)
    (expected,) = torch.autograd.grad(f_t(xt), xt)
    np.testing.assert_allclose(sg.grad(f)(x), expected.numpy(), rtol=1e-14)
    np.testing.assert_allclose(sg.hessian(f)(x), torch_hessian(f_t, x), rtol=1e-13, atol=1e-15)


def test_elementwise_primitive_third_derivative_and_vmap():
    x = np.array([0.3, -1.2])
    third = sg.grad(lambda x: np.sum(sg.grad(lambda y: np.sum(sg.grad(
        lambda z: np.sum(softclip(z, 1.5)))(y)))(x)))(x)
    s = np.tanh(x / 1.5)
    np.testing.assert_allclose(third, (-2 / 1.5 ** 2) * (1 - s ** 2) * (1 - 3 * s ** 2),
                               rtol=1e-13)
    xs = RNG.standard_normal((3, 2))
    np.testing.assert_allclose(sg.vmap(sg.grad(lambda x: np.sum(huber(x, 0.5))))(xs),
                               np.clip(xs, -0.5, 0.5), rtol=1e-15)


def test_elementwise_primitive_names_are_sanitised():
    weird = sg.elementwise("1 bad-name!\n__import__('os')", lambda x: x * 2)
    assert weird.name == "f_1_bad_name___import___os"
    assert sg.elementwise("lambda", lambda x: x).name == "lambda_"
    low = sg.grad(lambda x: np.sum(weird(x) ** 2)).lower("f64[3]")
    assert "import__" not in low.source and "name=f_1_bad_name___import___os" in str(low.graph)


def test_tracing_an_elementwise_primitive_builds_no_sympy_objects(monkeypatch):
    from symgrad.specs import ArgSpec
    from symgrad.trace import trace_function

    made = []
    original = sp.Basic.__new__

    def counting(cls, *args, **kwargs):
        made.append(cls)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(sp.Basic, "__new__", staticmethod(counting))
    graph, _ = trace_function(lambda x: np.sum(softclip(x, 2.0) + huber(x, 1.0)),
                              [ArgSpec("x", (3,), "float64")])
    monkeypatch.undo()
    assert made == []
    exprs = [n.param("expr") for n in graph.nodes() if n.op == "ew"]
    assert exprs[0] is softclip.expr and exprs[1] is huber.expr


def test_elementwise_definition_errors():
    with pytest.raises(sg.ArgumentError, match="symbols other than its arguments: y"):
        sg.elementwise("f", lambda x: x + sp.Symbol("y"))
    with pytest.raises(sg.ArgumentError, match="no numpy printer for besselj"):
        sg.elementwise("bessel", lambda x: sp.besselj(0, x))
    with pytest.raises(sg.ArgumentError, match="takes 2 arguments, got 1"):
        huber(X)


# -- check_grads ------------------------------------------------------------------------------
def test_check_grads_passes_on_right_derivatives_to_third_order():
    x, w = RNG.standard_normal(3), RNG.standard_normal((3, 2))
    report = sg.check_grads(lambda x, w: (np.tanh(x @ w), np.sum(x ** 3)), (x, w), order=3)
    assert [(o, m) for o, m, _ in report] == [(o, m) for o in (1, 2, 3) for m in ("fwd", "rev")]
    assert all(worst <= 1 for _, _, worst in report)
    sg.check_grads(lambda x: log1pexp(x) * softclip(x, 2.0), (X,), order=2)


def test_check_grads_reports_the_worst_element_of_a_wrong_rule():
    with pytest.raises(sg.GradientCheckError, match=r"order 1 forward mode \(JVP\) differs from "
                       r"central differences; worst element out\[\d\]: symgrad .*, finite "
                       r"differences"):
        sg.check_grads(twice_cos_sin, (X,), order=1, modes=("fwd",))
    with pytest.raises(sg.GradientCheckError, match=r"order 1 reverse mode \(VJP\), projected"):
        sg.check_grads(lambda x: cube(x), (X,), order=1, modes=("rev",))


def test_check_grads_finds_a_rule_that_is_right_only_at_first_order():
    @sg.custom_jvp
    def frozen_sin(x):
        return np.sin(x)

    @frozen_sin.defjvp
    def _(primals, tangents):
        (x,), (dx,) = primals, tangents
        return np.sin(x), sg.stop_gradient(np.cos(x)) * dx  # its derivative is lost

    sg.check_grads(frozen_sin, (X,), order=1)
    with pytest.raises(sg.GradientCheckError, match="order 2"):
        sg.check_grads(frozen_sin, (X,), order=2)


def test_check_grads_arguments():
    with pytest.raises(sg.ArgumentError, match="modes are 'fwd' and 'rev'"):
        sg.check_grads(np.sin, (X,), modes=("backward",))
    with pytest.raises(sg.ArgumentError, match="no float array"):
        sg.check_grads(lambda n: n, (np.arange(3),))
