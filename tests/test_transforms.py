"""Every transform, and every composition of two, against torch.func and finite differences.

Each function is written twice (numpy for symgrad, torch for the oracle); each transform is a
function-to-function map on both sides, so a pair (outer, inner) is checked as one number.
"""
from __future__ import annotations

import dataclasses
from collections import namedtuple

import numpy as np
import pytest
import torch
import torch.func as tf

import symgrad as sg

RNG = np.random.default_rng(7)
X = RNG.normal(size=3)
V = RNG.normal(size=3)
W = RNG.normal(size=(3, 4))


def f_np(x):
    return np.sum(np.sin(x) * x ** 2 + np.log1p(np.exp(x)) * x[0])


def f_t(x):
    return torch.sum(torch.sin(x) * x ** 2 + torch.log1p(torch.exp(x)) * x[0])


def g_np(x):  # R^3 -> R^4
    return np.tanh(x @ W) * np.exp(x[1])


def g_t(x):
    return torch.tanh(x @ torch.tensor(W)) * torch.exp(x[1])


def _sum_sq(np_or_torch, fn):
    return lambda x: np_or_torch.sum(fn(x) ** 2)


# Transforms as function -> function maps: (symgrad version, torch version, needs scalar).
TRANSFORMS = {
    "jit": (sg.jit, lambda f: f, False),
    "grad": (sg.grad, tf.grad, True),
    "jacrev": (sg.jacrev, tf.jacrev, False),
    "jacfwd": (sg.jacfwd, tf.jacfwd, False),
    "jacobian": (sg.jacobian, tf.jacrev, False),
    "hessian": (sg.hessian, tf.hessian, True),
    "vjp": (lambda f: (lambda x: _pull_ones(*sg.vjp(f, x, wrt=0))),
            lambda f: (lambda x: tf.vjp(f, x)[1](torch.ones_like(f(x)))[0]), False),
    "jvp": (lambda f: (lambda x: sg.jvp(f, (x,), (np.ones(3),))[1]),
            lambda f: (lambda x: tf.jvp(f, (x,), (torch.ones(3, dtype=torch.float64),))[1]),
            False),
    "hvp": (lambda f: (lambda x: sg.hvp(f)(x, V)),
            lambda f: (lambda x: tf.jvp(tf.grad(f), (x,), (torch.tensor(V),))[1]), True),
}


def _pull_ones(out, pullback):
    return pullback(np.ones_like(out))


def _torch(fn, x):
    return fn(torch.tensor(x)).detach().numpy()


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
@pytest.mark.parametrize("function", ["scalar", "vector"])
def test_single_transform_matches_torch(name, function):
    ours, theirs, scalar = TRANSFORMS[name]
    f, t = (f_np, f_t) if function == "scalar" else (g_np, g_t)
    if scalar and function == "vector":
        f, t = _sum_sq(np, g_np), _sum_sq(torch, g_t)
    np.testing.assert_allclose(ours(f)(X), _torch(theirs(t), X), rtol=1e-10, atol=1e-12)


# The inner transform's result is reduced to a scalar (sum of squares) when the outer one
# needs a scalar; otherwise the outer one is applied to it directly.
@pytest.mark.parametrize("outer", sorted(TRANSFORMS))
@pytest.mark.parametrize("inner", sorted(TRANSFORMS))
def test_every_pair_of_transforms_matches_torch(outer, inner):
    i_scalar = TRANSFORMS[inner][2]
    f, t = (f_np, f_t) if i_scalar else (g_np, g_t)
    if outer in ("jacrev", "jacfwd", "jacobian", "hessian") and inner in (
            "jacrev", "jacfwd", "jacobian", "hessian"):
        f, t = (f_np, f_t) if i_scalar else (lambda x: g_np(x)[:2], lambda x: g_t(x)[:2])
    check_pair(outer, inner, f, t)


def check_pair(outer: str, inner: str, f, t) -> None:
    """outer(inner(f)) at X against the same pair of torch.func transforms of t."""
    o_ours, o_theirs, o_scalar = TRANSFORMS[outer]
    i_ours, i_theirs, _ = TRANSFORMS[inner]
    inner_ours, inner_theirs = i_ours(f), i_theirs(t)
    if o_scalar:
        inner_ours, inner_theirs = _sum_sq(np, inner_ours), _sum_sq(torch, inner_theirs)
    ours = o_ours(inner_ours)(X)
    theirs = _torch(o_theirs(inner_theirs), X)
    assert np.shape(ours) == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-11)


def test_grad_of_grad_is_the_second_derivative():
    f = lambda x: np.sin(x) * x ** 2  # noqa: E731
    x = 0.3
    expected = -np.sin(x) * x ** 2 + 4 * x * np.cos(x) + 2 * np.sin(x)
    assert sg.grad(sg.grad(f))(x) == pytest.approx(expected, rel=1e-13)
    assert sg.grad(sg.grad(sg.grad(f)))(x) == pytest.approx(
        -np.cos(x) * x ** 2 - 6 * x * np.sin(x) + 6 * np.cos(x), rel=1e-12)
    # The outer transform is its own object: nothing of the inner one is copied onto it.
    outer = sg.grad(sg.grad(f))
    assert outer.kind == "grad" and outer.fn is not f


def test_grad_of_jit_and_hessian_of_jit():
    h = lambda x: np.sum(np.exp(x) * x)  # noqa: E731
    np.testing.assert_allclose(sg.grad(sg.jit(h))(X), np.exp(X) * (1 + X), rtol=1e-13)
    np.testing.assert_allclose(sg.hessian(sg.jit(h))(X), np.diag(np.exp(X) * (2 + X)),
                               rtol=1e-13)


def test_closed_over_traced_value_is_a_constant_inside_and_differentiated_outside():
    # Inner: d/dy sum(x * y**2) = 2 x y, at y = x: 2 x**2; outer: d/dx sum(2 x**2) = 4 x.
    # (Perturbation confusion -- differentiating the inner one through x too -- gives 6 x.)
    def outer(x):
        return np.sum(sg.grad(lambda y: np.sum(x * y ** 2))(x))

    np.testing.assert_allclose(sg.grad(outer)(X), 4 * X, rtol=1e-13)


def test_stop_gradient_under_composition():
    f = lambda x: sg.stop_gradient(x) * x ** 2  # noqa: E731
    t = lambda x: x.detach() * x ** 2  # noqa: E731
    x = 0.7
    assert sg.grad(sg.grad(f))(x) == pytest.approx(
        tf.grad(tf.grad(t))(torch.tensor(x, dtype=torch.float64)).item(), rel=1e-13)
    assert sg.grad(sg.grad(f))(x) == pytest.approx(2 * x, rel=1e-13)


def test_composition_is_one_compilation_with_readable_source():
    outer = sg.grad(lambda x: np.sum(sg.grad(lambda y: np.sum(np.tanh(y) ** 2))(x)))
    low = outer.lower(np.ones(3))
    assert "call" in low.graph.pretty()
    assert "import sympy" not in low.source and low.source.count("def ") >= 1
    np.testing.assert_allclose(outer(X), _torch(tf.grad(lambda x: torch.sum(
        tf.grad(lambda y: torch.sum(torch.tanh(y) ** 2))(x))), X), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# vjp, jvp, hvp in JAX's shapes
# ---------------------------------------------------------------------------------------------
def test_vjp_pullback_many_times_and_several_outputs():
    def two(x, w):
        return np.tanh(x @ w), np.sum(x ** 2)

    out, pullback = sg.vjp(two, X, W)
    assert isinstance(out, tuple) and out[0].shape == (4,)
    for seed in range(3):
        ct = (np.random.default_rng(seed).normal(size=4), 2.0 + seed)
        gx, gw = pullback((ct[0], np.float64(ct[1])))
        (tx, tw) = tf.vjp(lambda a, b: (torch.tanh(a @ b), torch.sum(a ** 2)),
                          torch.tensor(X), torch.tensor(W))[1](
            (torch.tensor(ct[0]), torch.tensor(ct[1], dtype=torch.float64)))
        np.testing.assert_allclose(gx, tx.numpy(), rtol=1e-12)
        np.testing.assert_allclose(gw, tw.numpy(), rtol=1e-12)


def test_vjp_cotangent_is_checked():
    out, pullback = sg.vjp(lambda x: np.sin(x), X)
    with pytest.raises(sg.ArgumentError, match=r"cotangent must be float64\[3\].*float64\[7\]"):
        pullback(np.ones(7))
    with pytest.raises(sg.ArgumentError, match="float32"):
        pullback(np.ones(3, np.float32))
    with pytest.raises(sg.ArgumentError, match="structure"):
        pullback((np.ones(3), np.ones(3)))
    single = sg.vjp(lambda x: np.sin(x), X, wrt=0)[1](np.ones(3))
    assert isinstance(single, np.ndarray)
    np.testing.assert_allclose(single, np.cos(X), rtol=1e-14)
    default = sg.vjp(lambda x: np.sin(x), X)[1](np.ones(3))
    assert isinstance(default, tuple) and len(default) == 1


def test_jvp_matches_torch_and_finite_differences():
    out, tangent = sg.jvp(g_np, (X,), (V,))
    t_out, t_tan = tf.jvp(g_t, (torch.tensor(X),), (torch.tensor(V),))
    np.testing.assert_allclose(out, t_out.numpy(), rtol=1e-13)
    np.testing.assert_allclose(tangent, t_tan.numpy(), rtol=1e-12)
    h = 1e-6
    np.testing.assert_allclose(tangent, (g_np(X + h * V) - g_np(X - h * V)) / (2 * h),
                               rtol=1e-7)


def test_jvp_integer_primal_takes_none_and_tangent_dtype_is_checked():
    f = lambda x, n: x * n  # noqa: E731
    out, tangent = sg.jvp(f, (X, np.int64(3)), (V, None))
    np.testing.assert_allclose(tangent, 3 * V)
    with pytest.raises(sg.ArgumentError, match="tangent must be float64"):
        sg.jvp(np.sin, (X,), (V.astype(np.float32),))
    with pytest.raises(sg.ArgumentError, match="tangent must be float64\\[3\\]"):
        sg.jvp(np.sin, (X,), (np.ones(4),))


def test_hvp_without_forming_the_hessian():
    loss = lambda x, w: np.sum(np.tanh(x @ w) ** 2)  # noqa: E731
    t_loss = lambda x, w: torch.sum(torch.tanh(x @ w) ** 2)  # noqa: E731
    vw = RNG.normal(size=W.shape)
    ours = sg.hvp(loss, wrt="w")(X, W, vw)
    theirs = tf.jvp(lambda w: tf.grad(t_loss, argnums=1)(torch.tensor(X), w),
                    (torch.tensor(W),), (torch.tensor(vw),))[1]
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-12)
    both = sg.hvp(loss, wrt=("x", "w"))(X, W, (V, vw))
    full = sg.hessian(loss, wrt=("x", "w"))(X, W)
    np.testing.assert_allclose(both[0], full[0][0] @ V + full[0][1].reshape(3, -1) @ vw.ravel(),
                               rtol=1e-12)


def test_jacobians_of_several_arguments_have_jax_shapes():
    jr = sg.jacrev(lambda x, w: np.tanh(x @ w), wrt=(0, 1))(X, W)
    jf = sg.jacfwd(lambda x, w: np.tanh(x @ w), argnums=(0, 1))(X, W)
    tj = tf.jacrev(lambda x, w: torch.tanh(x @ w), argnums=(0, 1))(torch.tensor(X),
                                                                 torch.tensor(W))
    for a, b, c in zip(jr, jf, tj):
        assert a.shape == b.shape == tuple(c.shape)
        np.testing.assert_allclose(a, c.numpy(), rtol=1e-12)
        np.testing.assert_allclose(b, c.numpy(), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# has_aux, argnums, keyword-only and *args
# ---------------------------------------------------------------------------------------------
def loss_aux(w, x):
    z = x @ w
    return np.sum(z ** 2), {"z": z, "norm": np.sum(w ** 2)}


def test_has_aux_shapes_per_transform():
    (value, aux), g = sg.value_and_grad(loss_aux, has_aux=True)(W, X)
    assert set(aux) == {"z", "norm"}
    np.testing.assert_allclose(aux["z"], X @ W)
    expected = 2 * np.outer(X, X @ W)
    np.testing.assert_allclose(g, expected, rtol=1e-13)
    g2, aux2 = sg.grad(loss_aux, has_aux=True)(W, X)
    np.testing.assert_allclose(g2, expected, rtol=1e-13)
    np.testing.assert_allclose(aux2["norm"], np.sum(W ** 2))
    out, pullback, aux3 = sg.vjp(loss_aux, W, X, wrt=0, has_aux=True)
    np.testing.assert_allclose(pullback(np.float64(1.0)), expected, rtol=1e-13)
    jac, aux4 = sg.jacrev(lambda w: (np.tanh(X @ w), w.sum()), has_aux=True)(W)
    assert jac.shape == (4, 3, 4) and np.ndim(aux4) == 0
    with pytest.raises(sg.ArgumentError, match="has_aux=True needs the function to return a pair"):
        sg.grad(lambda w: np.sum(w), has_aux=True)(W)


def test_argnums_and_wrt_and_keyword_only_and_varargs():
    f = lambda x, w: np.sum(np.tanh(x @ w))  # noqa: E731
    a = sg.grad(f, argnums=1)(X, W)
    b = sg.grad(f, wrt="w")(X, W)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(sg.ArgumentError, match="not both"):
        sg.grad(f, wrt=1, argnums=1)

    def kw(x, *, scale):
        return np.sum(scale * x ** 2)

    np.testing.assert_allclose(sg.grad(kw, wrt="scale")(X, scale=np.float64(2.0)),
                               np.sum(X ** 2))

    def var(*xs):
        return np.sum(xs[0] * xs[1])

    gx, gy = sg.grad(var, wrt=(0, 1))(X, V)
    np.testing.assert_allclose(gx, V)
    np.testing.assert_allclose(gy, X)


# ---------------------------------------------------------------------------------------------
# Pytrees
# ---------------------------------------------------------------------------------------------
Params = namedtuple("Params", ["w", "b"])


@dataclasses.dataclass
class Layer:
    w: np.ndarray
    b: np.ndarray


class Pair:
    def __init__(self, a, b):
        self.a, self.b = a, b


sg.register_pytree_node(Pair, lambda p: ((p.a, p.b), None), lambda _, c: Pair(*c))


def _mlp(params, x):
    return np.sum(np.tanh(x @ params["w"] + params["b"]) ** 2)


def test_dict_params_match_torch_and_keep_their_structure():
    params = {"w": W, "b": RNG.normal(size=4)}
    g = sg.grad(_mlp)(params, X)
    assert set(g) == {"w", "b"}
    t = tf.grad(lambda p, x: torch.sum(torch.tanh(x @ p["w"] + p["b"]) ** 2))(
        {k: torch.tensor(v) for k, v in params.items()}, torch.tensor(X))
    for k in params:
        np.testing.assert_allclose(g[k], t[k].numpy(), rtol=1e-12)


@pytest.mark.parametrize("make", [lambda w, b: Params(w, b), lambda w, b: Layer(w, b),
                                  lambda w, b: Pair(w, b), lambda w, b: [w, (b,)]],
                         ids=["namedtuple", "dataclass", "registered", "nested-list"])
def test_pytree_round_trips(make):
    b = RNG.normal(size=4)

    def loss(p, x):
        leaves, _ = sg.tree_flatten(p)
        return np.sum(np.tanh(x @ leaves[0] + leaves[1]) ** 2)

    params = make(W, b)
    g = sg.grad(loss)(params, X)
    assert type(g) is type(params)
    expected = sg.grad(_mlp)({"w": W, "b": b}, X)
    leaves = sg.tree_flatten(g)[0]
    np.testing.assert_allclose(leaves[0], expected["w"], rtol=1e-13)
    np.testing.assert_allclose(leaves[1], expected["b"], rtol=1e-13)


def test_ragged_list_is_never_stacked_and_structure_is_part_of_the_signature():
    f = lambda xs: np.sum(xs[0]) + np.sum(xs[1] ** 2)  # noqa: E731
    g = sg.grad(f)([np.ones(2), np.ones(3)])
    assert isinstance(g, list) and [a.shape for a in g] == [(2,), (3,)]
    np.testing.assert_allclose(g[1], 2 * np.ones(3))
    same = sg.grad(f)
    as_list = same([np.ones(2), np.ones(2)])
    as_tuple = same((np.ones(2), np.ones(2)))
    assert isinstance(as_list, list) and isinstance(as_tuple, tuple)


def test_dict_keys_never_reach_generated_code_unsanitised():
    hostile = {"w; import os": W, "b\nprint(1)": np.ones(4)}

    def loss(p, x):
        a, b = (p[k] for k in sorted(p))
        return np.sum(np.tanh(x @ b + a) ** 2)

    g = sg.grad(loss)
    result = g(hostile, X)
    source = g.lower(hostile, X).source
    assert "import os" not in source and "print(1)" not in source
    assert set(result) == set(hostile)


def test_pytree_outputs_of_jit_and_jvp():
    f = lambda x: {"s": np.sin(x), "c": np.cos(x)}  # noqa: E731
    out = sg.jit(f)(X)
    np.testing.assert_allclose(out["s"], np.sin(X))
    out, tangent = sg.jvp(f, (X,), (V,))
    np.testing.assert_allclose(tangent["s"], np.cos(X) * V, rtol=1e-14)
    np.testing.assert_allclose(tangent["c"], -np.sin(X) * V, rtol=1e-14)


def test_python_floats_are_differentiable_primals():
    assert sg.grad(lambda x: x ** 3)(2.0) == pytest.approx(12.0)
    out, t = sg.jvp(lambda x: x ** 3, (2.0,), (1.0,))
    assert t == pytest.approx(12.0)


def test_pullback_runs_only_the_backward_part():
    def layer(x, w):
        z = x @ w
        return np.tanh(z) * 2

    out, pullback = sg.vjp(layer, X, W)
    forward, backward = pullback.lower()
    statement = "\n    z = x @ w\n"
    assert statement in forward.source and statement not in backward.source
    assert "cotangent" in backward.source.split("def ")[1].split(")")[0]
    for seed in range(2):
        ct = np.random.default_rng(seed).normal(size=4)
        gx, gw = pullback(ct)
        tx, tw = tf.vjp(lambda a, b: torch.tanh(a @ b) * 2, torch.tensor(X),
                        torch.tensor(W))[1](torch.tensor(ct))
        np.testing.assert_allclose(gx, tx.numpy(), rtol=1e-12)
        np.testing.assert_allclose(gw, tw.numpy(), rtol=1e-12)


def test_bad_input_errors_name_the_users_line():
    out, pullback = sg.vjp(np.sin, X)
    with pytest.raises(sg.ArgumentError, match=r"test_transforms.py:\d+"):
        pullback(np.ones(4))
    with pytest.raises(sg.ArgumentError, match=r"structure.*test_transforms.py:\d+"):
        pullback([np.ones(3)])
    with pytest.raises(sg.ArgumentError, match=r"not both.*test_transforms.py:\d+"):
        sg.grad(np.sin, wrt=0, argnums=0)
    with pytest.raises(sg.ArgumentError, match=r"pair.*test_transforms.py:\d+"):
        sg.value_and_grad(lambda x: np.sum(x), has_aux=True)(X)


def test_scalar_results_are_numpy_scalars_whatever_the_transform():
    """A 0-d result is a numpy scalar (as np.sum gives it), from every transform alike; the
    Jacobians of scalar functions were 0-d arrays."""
    f = lambda s: s ** 3  # noqa: E731
    s = np.array(2.0)
    out, pullback = sg.vjp(f, s)
    results = {"jit": sg.jit(f)(s), "grad": sg.grad(f)(s), "value": sg.value_and_grad(f)(s)[0],
               "jvp": sg.jvp(f, (s,), (np.array(1.0),))[1], "vjp": out,
               "pullback": pullback(np.array(1.0))[0], "hessian": sg.hessian(f)(s),
               "jacrev": sg.jacrev(f)(s), "jacfwd": sg.jacfwd(f)(s)}
    expected = {"jit": 8.0, "value": 8.0, "vjp": 8.0, "hessian": 12.0}
    for name, value in results.items():
        assert type(value) is np.float64, (name, type(value))
        assert value == expected.get(name, 12.0), (name, value)
