"""sg.vmap composed with the loops (scan, fori_loop, while_loop, cond, switch, checkpoint).

Each function of one example is written twice: with symgrad's loops (numpy), and unrolled in
torch (torch.func is the oracle for every composition: vmap, vmap of grad, grad of a sum of
vmap, jvp of vmap, vmap of jvp, hessian, vmap of hessian). Called on plain numpy values the
loops run eagerly in Python, which gives the numbers for central differences.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.func as tf

import symgrad as sg
from test_control import grow, grow_numpy  # the trip count depends on the example
from test_loops import central, nested

RNG = np.random.default_rng(17)
B = 4
U = RNG.normal(size=(3, 4)) * 0.5
DT = 0.05


def T(a):
    return torch.tensor(np.asarray(a))


# -- the functions of one example: f(p, x) -> scalar, p shared, x the example ---------------
def rnn(w, xs):  # scan with a pytree carry
    def cell(state, x):
        h, acc = state
        h = np.tanh(h * w + x @ U)
        return (h, acc + np.sum(h * w)), np.sum(h ** 2)

    (h, acc), ys = sg.scan(cell, (np.zeros(4), 0.0), xs)
    return np.sum(ys * np.arange(1.0, 7.0)) + acc + np.sum(np.sin(h))


def rnn_t(w, xs):
    h, acc, total = torch.zeros(4, dtype=torch.float64), 0, 0
    for t in range(6):
        h = torch.tanh(h * w + xs[t] @ T(U))
        acc = acc + torch.sum(h * w)
        total = total + torch.sum(h ** 2) * (t + 1)
    return total + acc + torch.sum(torch.sin(h))


def ode(k, x0):  # fori_loop: a damped, forced pendulum; the body reads the counter
    def step(i, state):
        x, v = state
        a = -k[0] * np.sin(x) - k[1] * v + 0.3 * np.cos(DT * i)
        return x + DT * v, v + DT * a

    x, v = sg.fori_loop(0, 12, step, (x0[0], x0[1]))
    return x * x + 0.5 * v * v + k[0] * x


def ode_t(k, x0):
    x, v = x0[0], x0[1]
    for i in range(12):
        a = -k[0] * torch.sin(x) - k[1] * v + 0.3 * np.cos(DT * i)
        x, v = x + DT * v, v + DT * a
    return x * x + 0.5 * v * v + k[0] * x


def checkpointed(w, xs):  # scan with checkpoint_every, and sg.checkpoint inside the body
    block = sg.checkpoint(lambda h, x: np.tanh(h * w + x @ U))

    def cell(h, x):
        h = block(h, x)
        return h, np.sum(h * h)

    h, ys = sg.scan(cell, np.zeros(4), xs, checkpoint_every=2)
    return np.sum(ys) + np.sum(h * w)


def checkpointed_t(w, xs):
    h, total = torch.zeros(4, dtype=torch.float64), 0
    for t in range(6):
        h = torch.tanh(h * w + xs[t] @ T(U))
        total = total + torch.sum(h * h)
    return total + torch.sum(h * w)


def branchy(w, x):  # cond: the predicate depends on the example
    y = sg.cond(np.sum(x) > 0, lambda a: np.sin(a * w) * a, lambda a: np.cos(a) * w, x)
    return np.sum(y * y)


def branchy_t(w, x):
    y = torch.where(torch.sum(x) > 0, torch.sin(x * w) * x, torch.cos(x) * w)
    return torch.sum(y * y)


def shared_branch(w, x):  # cond: the predicate is the same for every example
    y = sg.cond(np.sum(w) > 0, lambda a: np.sin(a * w) * a, lambda a: np.cos(a) * w, x)
    return np.sum(y * y)


def shared_branch_t(w, x):
    y = torch.sin(x * w) * x if torch.sum(w) > 0 else torch.cos(x) * w
    return torch.sum(y * y)


def switched(w, x):  # switch over three branches, the index from the example
    index = np.sum(x > 0)
    y = sg.switch(index, [lambda a: a * w, lambda a: np.sin(a) * w * w, lambda a: np.exp(a * w)],
                  x)
    return np.sum(y * x)


def switched_t(w, x):
    index = torch.clamp(torch.sum(x > 0), 0, 2)
    y = torch.where(index == 0, x * w, torch.where(index == 1, torch.sin(x) * w * w,
                                                     torch.exp(x * w)))
    return torch.sum(y * x)


W4 = RNG.normal(size=4) * 0.7
K = np.array([1.3, 0.4])
W3 = np.array([0.8, -0.5, 1.1])
SIGNED = np.array([[0.5, 0.2, 0.9], [-0.3, -0.8, 0.1], [0.4, -0.2, -0.1], [-1.0, -0.3, -0.6]])
# name: (numpy function, torch function, shared p, batched x (B first))
CASES = {
    "scan_rnn": (rnn, rnn_t, W4, RNG.normal(size=(B, 6, 3))),
    "fori_ode": (ode, ode_t, K, RNG.normal(size=(B, 2))),
    "checkpoint": (checkpointed, checkpointed_t, W4, RNG.normal(size=(B, 6, 3))),
    "cond_batched": (branchy, branchy_t, W3, SIGNED),
    "cond_shared": (shared_branch, shared_branch_t, W3, SIGNED),
    "switch_batched": (switched, switched_t, W3, SIGNED),
}


def _np(t):
    return t.detach().numpy()


# composition: (symgrad, torch), each a map (f, p, X) -> array
COMPOSITIONS = {
    "vmap": (lambda f, p, X: sg.vmap(f, in_axes=(None, 0))(p, X),
             lambda f, p, X: tf.vmap(f, in_dims=(None, 0))(p, X)),
    "vmap_in_axis_1": (lambda f, p, X: sg.vmap(f, in_axes=(None, 1))(p, np.moveaxis(X, 0, 1)),
                       lambda f, p, X: tf.vmap(f, in_dims=(None, 0))(p, X)),
    "vmap_grad_p": (lambda f, p, X: sg.vmap(sg.grad(f), in_axes=(None, 0))(p, X),
                    lambda f, p, X: tf.vmap(tf.grad(f), in_dims=(None, 0))(p, X)),
    "vmap_grad_p_out_axis_1": (
        lambda f, p, X: sg.vmap(sg.grad(f), in_axes=(None, 0), out_axes=1)(p, X),
        lambda f, p, X: tf.vmap(tf.grad(f), in_dims=(None, 0))(p, X).T),
    "vmap_grad_x": (lambda f, p, X: sg.vmap(sg.grad(f, argnums=1), in_axes=(None, 0))(p, X),
                    lambda f, p, X: tf.vmap(tf.grad(f, argnums=1), in_dims=(None, 0))(p, X)),
    "grad_of_sum_of_vmap": (
        lambda f, p, X: sg.grad(lambda p, X: np.sum(sg.vmap(f, in_axes=(None, 0))(p, X)))(p, X),
        lambda f, p, X: tf.grad(lambda p: torch.sum(tf.vmap(f, in_dims=(None, 0))(p, X)))(p)),
    "grad_x_of_sum_of_vmap": (
        lambda f, p, X: sg.grad(lambda p, X: np.sum(sg.vmap(f, in_axes=(None, 0))(p, X) ** 2),
                                argnums=1)(p, X),
        lambda f, p, X: tf.grad(lambda X: torch.sum(tf.vmap(f, in_dims=(None, 0))(p, X) ** 2))(
            X)),
    "jvp_of_vmap": (
        lambda f, p, X: sg.jvp(sg.vmap(f, in_axes=(None, 0)), (p, X),
                               (np.ones_like(p), np.full_like(X, 0.5)))[1],
        lambda f, p, X: tf.jvp(tf.vmap(f, in_dims=(None, 0)), (p, X),
                               (torch.ones_like(p), torch.full_like(X, 0.5)))[1]),
    "vmap_of_jvp": (
        lambda f, p, X: sg.vmap(lambda p, x, dx: sg.jvp(f, (p, x), (np.ones_like(p), dx))[1],
                                in_axes=(None, 0, 0))(p, X, np.full_like(X, 0.5)),
        lambda f, p, X: tf.vmap(lambda p, x, dx: tf.jvp(f, (p, x), (torch.ones_like(p), dx))[1],
                                in_dims=(None, 0, 0))(p, X, torch.full_like(X, 0.5))),
    "hessian": (lambda f, p, X: sg.hessian(f)(p, X[0]),
                lambda f, p, X: tf.hessian(f)(p, X[0])),
    "vmap_hessian_p": (lambda f, p, X: sg.vmap(sg.hessian(f), in_axes=(None, 0))(p, X),
                       lambda f, p, X: tf.vmap(tf.hessian(f), in_dims=(None, 0))(p, X)),
    "vmap_hessian_x": (
        lambda f, p, X: sg.vmap(sg.hessian(f, argnums=1), in_axes=(None, 0))(p, X),
        lambda f, p, X: tf.vmap(tf.hessian(f, argnums=1), in_dims=(None, 0))(p, X)),
    "hessian_of_sum_of_vmap": (
        lambda f, p, X: sg.hessian(lambda p, X: np.sum(sg.vmap(f, in_axes=(None, 0))(p, X)))(
            p, X),
        lambda f, p, X: tf.hessian(lambda p: torch.sum(tf.vmap(f, in_dims=(None, 0))(p, X)))(
            p)),
}


@pytest.mark.parametrize("composition", sorted(COMPOSITIONS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_composition_with_loops_matches_torch(case, composition):
    f, f_t, p, X = CASES[case]
    ours, theirs = COMPOSITIONS[composition]
    got = ours(f, p, X)
    expected = _np(theirs(f_t, T(p), T(X)))
    assert np.shape(got) == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("case", sorted(CASES))
def test_batched_gradients_match_central_differences(case):
    """The oracle independent of torch: the loops run eagerly on numpy values."""
    f, _, p, X = CASES[case]
    total = lambda p: sum(f(p, x) for x in X)  # noqa: E731
    np.testing.assert_allclose(sg.vmap(f, in_axes=(None, 0))(p, X), [f(p, x) for x in X],
                               rtol=1e-12)
    g = sg.grad(lambda p, X: np.sum(sg.vmap(f, in_axes=(None, 0))(p, X)))(p, X)
    np.testing.assert_allclose(g, central(total, p.copy()), rtol=1e-6, atol=1e-8)
    per = sg.vmap(sg.grad(f, argnums=1), in_axes=(None, 0))(p, X)
    numeric = np.stack([central(lambda x: f(p, x), x.copy()) for x in X])
    np.testing.assert_allclose(per, numeric, rtol=1e-6, atol=1e-8)


# -- while_loop: forward and forward mode (reverse mode is refused, as in JAX) ----------------
def grow_torch(x, a):  # the same steps, unrolled to a known count
    i, v = 0, x
    while torch.sum(v) < 10.0:
        i, v = i + 1, torch.sin(v * a) + v
    return v


XS = np.array([[1.0, 2.0], [0.2, 0.1], [4.0, 5.0], [3.0, 1.5]])
A = np.array([0.3, 0.9])


def test_vmap_of_while_loop_runs_each_example_its_own_number_of_steps():
    steps, v = sg.vmap(grow, in_axes=(0, None))(XS, A)
    expected = [grow_numpy(x, A) for x in XS]
    assert len({s for s, _ in expected}) > 1  # the examples do take different counts
    np.testing.assert_array_equal(steps, [s for s, _ in expected])
    np.testing.assert_allclose(v, np.stack([e for _, e in expected]), rtol=1e-13)
    source = sg.vmap(grow, in_axes=(0, None)).lower(XS, A).source
    assert [line.strip() for line in source.splitlines() if line.lstrip().startswith(
        "while ")] == ["while cond_fun(c_0, c_1, a)[0]:"]
    assert "np.where(running[:, None], " in source  # the examples done keep their values
    # a predicate the same for every example: an ordinary while loop over batched carries
    shared = sg.vmap(lambda x, n: sg.while_loop(lambda c: c[0] < n, lambda c: (
        c[0] + 1, c[1] * 1.5), (0, x))[1], in_axes=(0, None))(XS, 3)
    np.testing.assert_allclose(shared, XS * 1.5 ** 3, rtol=1e-14)


def test_forward_mode_composes_with_vmap_of_a_while_loop():
    tx, ta = np.array([0.1, -0.4]), np.array([1.0, 0.5])
    expected = np.stack([_np(tf.jvp(grow_torch, (T(x), T(A)), (T(tx), T(ta)))[1]) for x in XS])
    eps = 1e-6
    numeric = np.stack([(grow_numpy(x + eps * tx, A + eps * ta)[1]
                         - grow_numpy(x - eps * tx, A - eps * ta)[1]) / (2 * eps) for x in XS])
    np.testing.assert_allclose(expected, numeric, rtol=1e-6)
    inner = sg.vmap(lambda x, a, dx: sg.jvp(grow, (x, a), (dx, ta))[1][1], in_axes=(0, None, 0))
    np.testing.assert_allclose(inner(XS, A, np.tile(tx, (B, 1))), expected, rtol=1e-10)
    _, (_, outer) = sg.jvp(sg.vmap(grow, in_axes=(0, None)), (XS, A), (np.tile(tx, (B, 1)), ta))
    np.testing.assert_allclose(outer, expected, rtol=1e-10)
    jac = sg.vmap(sg.jacfwd(lambda x, a: grow(x, a)[1]), in_axes=(0, None))(XS, A)
    expected = np.stack([_np(tf.jacfwd(grow_torch)(T(x), T(A))) for x in XS])
    np.testing.assert_allclose(jac, expected, rtol=1e-10)


def test_reverse_mode_through_a_batched_while_loop_is_refused_naming_the_line():
    with pytest.raises(sg.GradientError, match=r"while_loop \(at test_control.py:\d+\)"):
        sg.vmap(sg.grad(lambda x, a: np.sum(grow(x, a)[1])), in_axes=(0, None))(XS, A)
    with pytest.raises(sg.GradientError, match=r"while_loop \(at test_control.py:\d+\)"):
        sg.grad(lambda x, a: np.sum(sg.vmap(grow, in_axes=(0, None))(x, a)[1]))(XS, A)


# -- the generated code ---------------------------------------------------------------------
def test_batched_scan_stays_one_for_loop_over_the_steps():
    f, _, p, X = CASES["scan_rnn"]
    source = sg.vmap(f, in_axes=(None, 0)).lower(p, X).source
    loops = [line.strip() for line in source.splitlines() if line.lstrip().startswith("for ")]
    assert loops == ["for step in range(6):"]  # over the 6 steps, never over the 4 examples
    grads = sg.vmap(sg.grad(f), in_axes=(None, 0)).lower(p, X).source
    loops = [line.strip() for line in grads.splitlines() if line.lstrip().startswith("for ")]
    assert loops == ["for step in range(6):", "for step in range(5, -1, -1):"]


def test_batched_index_selects_and_a_shared_one_stays_a_branch():
    """A cond whose predicate varies runs both branches and selects (documented); one whose
    predicate is shared keeps its `if`, running only the chosen branch."""
    _, _, p, X = CASES["cond_batched"]
    selected = sg.vmap(branchy, in_axes=(None, 0)).lower(p, X).source
    assert "if index == 0:" not in selected and "np.where(" in selected
    kept = sg.vmap(shared_branch, in_axes=(None, 0)).lower(p, X).source
    assert "if index == 0:" in kept
    # a NaN in the branch an example does not take reaches neither its value nor its gradient
    def guarded(x):
        return sg.cond(x > 0, lambda a: np.sqrt(a), lambda a: -a, x)

    xs = np.array([4.0, -1.0, 0.25])
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(sg.vmap(guarded)(xs), [2.0, 1.0, 0.5])
        np.testing.assert_allclose(sg.vmap(sg.grad(guarded))(xs), [0.25, -1.0, 1.0])


def test_unbatched_carry_made_to_vary_is_promoted():
    """The carry starts the same for every example (zeros, or a shared argument) but the
    body mixes in a batched value; an unbatched carry beside it stays unbatched."""
    def f(c0, x):
        def body(i, state):
            acc, count = state
            return acc * 0.9 + x * i, count + 1.0
        return sg.fori_loop(0, 5, body, (c0, 0.0))

    c0, xs = np.array([1.0, -2.0]), RNG.normal(size=(3, 2))
    acc, count = sg.vmap(f, in_axes=(None, 0))(c0, xs)
    expected = [f(c0, x) for x in xs]
    np.testing.assert_allclose(acc, np.stack([e[0] for e in expected]), rtol=1e-14)
    np.testing.assert_array_equal(count, [5.0, 5.0, 5.0])
    source = sg.vmap(f, in_axes=(None, 0)).lower(c0, xs).source
    assert "np.broadcast_to(c0, (3, 2))" in source  # promoted once, before the loop
    assert "    out1 = state_1 + 1\n" in source  # the count stays one number in the loop


def test_scan_over_a_batched_xs_with_a_batched_shared_closure():
    """Both the scanned array and a closed-over parameter batched, ys out at axis 1."""
    def f(w, xs):
        return sg.scan(lambda h, x: (np.tanh(h * w + x), h * x), np.zeros(3), xs)

    ws, xs = RNG.normal(size=(2, 3)), RNG.normal(size=(5, 2, 3))  # xs batched along axis 1
    h, ys = sg.vmap(f, in_axes=(0, 1), out_axes=(0, 1))(ws, xs)
    for b in range(2):
        eh, eys = f(ws[b], xs[:, b])
        np.testing.assert_allclose(h[b], eh, rtol=1e-14)
        np.testing.assert_allclose(ys[:, b], eys, rtol=1e-14)


def test_the_counter_read_as_a_float_in_a_body():
    """The step counter is a Python int in the generated loop: a cast of it prints as
    np.float64(i) (i.astype failed in reverse mode before)."""
    x0 = np.array([0.3, -0.2])
    g = sg.grad(ode)(K, x0)
    np.testing.assert_allclose(g, _np(tf.grad(ode_t)(T(K), T(x0))), rtol=1e-11)
    assert "np.float64(i)" in sg.grad(ode).lower(K, x0).source


def test_nested_loops_and_vmap_of_vmap():
    """A scan in a scan with an int carry, batched; and a vmap of a vmap of a scan."""
    a, grids = np.array(0.7), RNG.normal(size=(3, 2, 4))
    np.testing.assert_allclose(sg.vmap(nested, in_axes=(None, 0))(a, grids),
                               [nested(a, g) for g in grids], rtol=1e-13)
    g = sg.vmap(sg.grad(nested, argnums=1), in_axes=(None, 0))(a, grids)
    np.testing.assert_allclose(g, np.stack([central(lambda x: nested(a, x), x.copy())
                                            for x in grids]), rtol=1e-6, atol=1e-9)
    ws = RNG.normal(size=(2, 3, 4)) * 0.5
    xs = RNG.normal(size=(3, 6, 3))
    twice = sg.vmap(sg.vmap(rnn, in_axes=(0, 0)), in_axes=(0, None))(ws, xs)
    expected = tf.vmap(tf.vmap(rnn_t, in_dims=(0, 0)), in_dims=(0, None))(T(ws), T(xs))
    np.testing.assert_allclose(twice, _np(expected), rtol=1e-12)


# -- every pair of transforms (tests/test_transforms.py's table) on functions with loops ------
def f_loop(x):  # R^3 -> R: a scan over the elements of x
    def cell(h, v):
        h = np.sin(h * v + v * v) + 0.5 * h
        return h, h * v

    h, ys = sg.scan(cell, x[0], x)
    return np.sum(ys) + h * h


def f_loop_t(x):
    h, total = x[0], 0
    for t in range(3):
        h = torch.sin(h * x[t] + x[t] * x[t]) + 0.5 * h
        total = total + h * x[t]
    return total + h * h


def g_loop(x):  # R^3 -> R^2: a fori_loop reading the counter, then a cond on the data
    def step(i, v):
        return np.tanh(v * x[i] + x * 0.3)

    v = sg.fori_loop(0, 3, step, x)
    y = sg.cond(np.sum(x) > 0, lambda v: v[:2] * np.exp(v[2]), lambda v: np.cos(v[1:]), v)
    return y


def g_loop_t(x):
    v = x
    for i in range(3):
        v = torch.tanh(v * x[i] + x * 0.3)
    return v[:2] * torch.exp(v[2]) if torch.sum(x) > 0 else torch.cos(v[1:])


@pytest.mark.parametrize("outer", ["grad", "hessian", "hvp", "jacfwd", "jacrev", "jit",
                                   "jvp", "vjp"])
@pytest.mark.parametrize("inner", ["grad", "hessian", "hvp", "jacfwd", "jacrev", "jit",
                                   "jvp", "vjp"])
def test_every_pair_of_transforms_through_loops(outer, inner):
    from test_transforms import TRANSFORMS, check_pair

    scalar = TRANSFORMS[inner][2]
    check_pair(outer, inner, *((f_loop, f_loop_t) if scalar else (g_loop, g_loop_t)))


def test_hvp_of_a_function_holding_a_grad_of_a_scan():
    """Two loop_out nodes reading the same result of a scan (one from the expanded inner
    grad, one from its pullback) add their adjoints: one was dropped before (a wrong
    third derivative through sg.hvp and sg.hessian)."""
    x, v = np.array([0.3, -0.5, 0.8]), np.array([1.0, 0.3, -0.2])

    def f(x):
        return sg.scan(lambda h, s: (np.sin(h * s), None), 0.5, x)[0]

    def f_t(x):
        h = 0.5
        for t in range(3):
            h = torch.sin(h * x[t])
        return h

    got = sg.hvp(lambda x: np.sum(sg.grad(f)(x)))(x, v)
    expected = tf.jvp(tf.grad(lambda x: torch.sum(tf.grad(f_t)(x))), (T(x),), (T(v),))[1]
    np.testing.assert_allclose(got, _np(expected), rtol=1e-10)


def test_pytree_arguments_partly_batched_through_a_scan():
    """in_axes as a pytree prefix: a dict of parameters with one leaf batched (axis 1) and one
    shared, scanned over shared inputs; per-example gradients of both leaves."""
    def loss(params, xs):
        def cell(h, x):
            h = np.tanh(h * params["w"] + x @ U + params["b"])
            return h, np.sum(h)
        h, ys = sg.scan(cell, np.zeros(4), xs)
        return np.sum(ys * ys) + np.sum(h)

    def loss_t(w, b, xs):
        h, total = torch.zeros(4, dtype=torch.float64), 0
        for x in xs:
            h = torch.tanh(h * w + x @ T(U) + b)
            total = total + torch.sum(h) ** 2
        return total + torch.sum(h)

    ws, b, xs = RNG.normal(size=(4, 3)), RNG.normal(size=4) * 0.1, RNG.normal(size=(5, 3))
    params = {"w": ws, "b": b}  # ws: one column per example
    axes = ({"w": 1, "b": None}, None)
    np.testing.assert_allclose(sg.vmap(loss, in_axes=axes)(params, xs),
                               [loss({"w": ws[:, k], "b": b}, xs) for k in range(3)],
                               rtol=1e-12)
    grads = sg.vmap(sg.grad(loss), in_axes=axes)(params, xs)
    gw, gb = tf.vmap(tf.grad(loss_t, argnums=(0, 1)), in_dims=(1, None, None))(
        T(ws), T(b), T(xs))
    np.testing.assert_allclose(grads["w"], _np(gw), rtol=1e-10)
    np.testing.assert_allclose(grads["b"], _np(gb), rtol=1e-10)


# -- out_axes=None on a loop result that does not vary (JAX's per-carry batching) ------------
def _two_carries(x, w):
    """Carry `a` reads only the shared w; carry `b` reads the example x."""
    def step(carry, k):
        a, b = carry
        return (a * 0.5 + np.sum(w) * k, b * 0.5 + x * a), a[0]

    (a, b), firsts = sg.scan(step, (w, x), np.arange(1.0, 4.0))
    return a, b, firsts


def _two_carries_numpy(x, w):
    a, b, firsts = w, x, []
    for k in (1.0, 2.0, 3.0):
        firsts.append(a[0])  # what a step returns reads the carry it was given
        a, b = a * 0.5 + np.sum(w) * k, b * 0.5 + x * a
    return a, b, np.array(firsts)


def _two_whiles(x, w):
    def more(carry):
        return carry[2] < 3

    def step(carry):
        a, b, i = carry
        return a * 0.5 + np.sum(w), b + x * a, i + 1

    a, b, _ = sg.while_loop(more, step, (w, x, 0))
    return a, b


def test_out_axes_none_on_a_carry_that_reads_only_shared_values():
    X = RNG.normal(size=(B, 3))
    w = RNG.normal(size=3)
    a, b, firsts = sg.vmap(_two_carries, in_axes=(0, None), out_axes=(None, 0, None))(X, w)
    want = [_two_carries_numpy(x, w) for x in X]
    np.testing.assert_allclose(a, want[0][0], rtol=1e-13)
    np.testing.assert_allclose(firsts, want[0][2], rtol=1e-13)
    np.testing.assert_allclose(b, np.stack([m[1] for m in want]), rtol=1e-13)
    assert a.shape == (3,) and firsts.shape == (3,) and b.shape == (B, 3)

    a, b = sg.vmap(_two_whiles, in_axes=(0, None), out_axes=(None, 0))(X, w)
    plain = [_two_whiles(x, w) for x in X]  # called on numpy values the loop runs eagerly
    np.testing.assert_allclose(a, plain[0][0], rtol=1e-13)
    np.testing.assert_allclose(b, np.stack([p[1] for p in plain]), rtol=1e-13)


def test_out_axes_none_on_a_varying_carry_is_refused_and_gradients_compose():
    X = RNG.normal(size=(B, 3))
    w = RNG.normal(size=3)
    with pytest.raises(sg.ArgumentError, match="out_axes is None for output 1, but it varies"):
        sg.vmap(_two_carries, in_axes=(0, None), out_axes=(None, None, None))(X, w)

    def total(w, X):  # the shared carry once, the per-example carries summed
        a, b, firsts = sg.vmap(_two_carries, in_axes=(0, None), out_axes=(None, 0, None))(X, w)
        return np.sum(a ** 2) + np.sum(np.sin(b)) + np.sum(firsts)

    def total_numpy(w):
        runs = [_two_carries_numpy(x, w) for x in X]
        return np.sum(runs[0][0] ** 2) + sum(np.sum(np.sin(r[1])) for r in runs) \
            + np.sum(runs[0][2])

    got = sg.grad(total)(w, X)
    eps = 1e-6
    want = [(total_numpy(w + eps * e) - total_numpy(w - eps * e)) / (2 * eps) for e in np.eye(3)]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)
