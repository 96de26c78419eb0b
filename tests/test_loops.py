"""Loops that stay loops: scan and fori_loop against an unrolled torch.func reference and
central differences; the generated code is one `for` loop whatever the trip count."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import symgrad as sg

RNG = np.random.default_rng(7)
W = RNG.normal(size=(4, 4)) * 0.4
U = RNG.normal(size=(3, 4)) * 0.5


def T(a):
    return torch.tensor(np.asarray(a))


def rnn(params, xs, reverse=False, checkpoint_every=None):
    def cell(h, x):
        h = np.tanh(h @ params["W"] + x @ params["U"])
        return h, np.sum(h ** 2)

    h, ys = sg.scan(cell, np.zeros(4), xs, reverse=reverse, checkpoint_every=checkpoint_every)
    return np.sum(ys) + np.sum(np.sin(h))


def rnn_torch(W, U, xs, reverse=False):
    h = torch.zeros(4, dtype=torch.float64)
    total = 0
    steps = range(xs.shape[0])
    for t in (reversed(steps) if reverse else steps):
        h = torch.tanh(h @ W + xs[t] @ U)
        total = total + torch.sum(h ** 2)
    return total + torch.sum(torch.sin(h))


def central(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += eps
        down[idx] -= eps
        g[idx] = (f(up) - f(down)) / (2 * eps)
    return g


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("checkpoint_every", [None, 3])
def test_scan_value_and_grad_matches_torch(reverse, checkpoint_every):
    xs = RNG.normal(size=(9, 3))

    def loss(params, xs):
        return rnn(params, xs, reverse, checkpoint_every)

    value, g = sg.value_and_grad(loss)({"W": W, "U": U}, xs)
    tW, tU = T(W).requires_grad_(), T(U).requires_grad_()
    expected = rnn_torch(tW, tU, T(xs), reverse)
    expected.backward()
    np.testing.assert_allclose(value, expected.item(), rtol=1e-12)
    np.testing.assert_allclose(g["W"], tW.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g["U"], tU.grad.numpy(), rtol=1e-10, atol=1e-12)
    gx = sg.grad(loss, wrt="xs")({"W": W, "U": U}, xs)
    np.testing.assert_allclose(gx, torch.func.grad(rnn_torch, argnums=2)(
        T(W), T(U), T(xs), reverse).numpy(), rtol=1e-10, atol=1e-12)


def test_200_step_recurrence_through_value_and_grad_matches_central_differences():
    a = RNG.normal(size=5) * 0.3
    forcing = RNG.normal(size=(200, 5)) * 0.1

    def integrate(a, forcing):
        def step(x, f):
            x = x + 0.05 * (np.sin(a * x) - 0.3 * x + f)
            return x, np.mean(x ** 2)

        x, energy = sg.scan(step, np.ones(5), forcing)
        return np.sum(energy) + np.sum(x * a)

    def unrolled(a):
        x = np.ones(5)
        total = 0.0
        for f in forcing:
            x = x + 0.05 * (np.sin(a * x) - 0.3 * x + f)
            total += np.mean(x ** 2)
        return total + np.sum(x * a)

    value, grad = sg.value_and_grad(integrate, wrt="a")(a, forcing)
    np.testing.assert_allclose(value, unrolled(a), rtol=1e-12)
    np.testing.assert_allclose(grad, central(unrolled, a), rtol=1e-7, atol=1e-9)
    ta = T(a).requires_grad_()
    x, total = torch.ones(5, dtype=torch.float64), 0
    for f in T(forcing):
        x = x + 0.05 * (torch.sin(ta * x) - 0.3 * x + f)
        total = total + torch.mean(x ** 2)
    (total + torch.sum(x * ta)).backward()
    np.testing.assert_allclose(grad, ta.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_fori_loop_indexes_with_the_counter_and_checkpoints():
    A = RNG.normal(size=(3, 3)) * 0.5
    x0 = RNG.normal(size=3)
    w = RNG.normal(size=6)

    def f(w, x0, A, every=None):
        def body(i, state):
            x, acc = state
            x = np.tanh(A @ x * w[i] + 0.1)
            return x, acc + np.sum(x * x)

        x, acc = sg.fori_loop(0, 6, body, (x0, 0.0), checkpoint_every=every)
        return acc + np.sum(x)

    def unrolled(w):
        x, acc = x0, 0.0
        for i in range(6):
            x = np.tanh(A @ x * w[i] + 0.1)
            acc += np.sum(x * x)
        return acc + np.sum(x)

    expected = central(unrolled, w)
    for every in (None, 2, 3):
        got = sg.grad(lambda w, x0, A: f(w, x0, A, every), wrt="w")(w, x0, A)
        np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(sg.jit(f)(w, x0, A), unrolled(w), rtol=1e-13)
    # Eager (outside any trace) it just runs.
    np.testing.assert_allclose(f(w, x0, A), unrolled(w), rtol=1e-13)


def test_jvp_and_hessian_of_a_function_with_a_scan():
    xs = RNG.normal(size=(5, 3))
    tW, tU = RNG.normal(size=W.shape), RNG.normal(size=U.shape)
    _, tangent = sg.jvp(rnn, ({"W": W, "U": U}, xs), ({"W": tW, "U": tU}, np.zeros_like(xs)))
    _, expected = torch.func.jvp(lambda a, b: rnn_torch(a, b, T(xs)), (T(W), T(U)),
                                 (T(tW), T(tU)))
    np.testing.assert_allclose(tangent, expected.item(), rtol=1e-10)
    H = sg.hessian(lambda W, xs: rnn({"W": W, "U": U}, xs))(W, xs)
    tH = torch.func.hessian(lambda a: rnn_torch(a, T(U), T(xs)))(T(W))
    np.testing.assert_allclose(H, tH.numpy(), rtol=1e-9, atol=1e-12)


def _source(steps: int, every=None) -> str:
    xs = np.zeros((steps, 3))
    f = sg.value_and_grad(lambda params, xs: rnn(params, xs, checkpoint_every=every))
    return f.lower({"W": W, "U": U}, xs).source


def test_generated_code_is_one_loop_whatever_the_trip_count():
    short, long = _source(10), _source(1000)
    assert "    for step in range(1000):\n" in long
    assert "    for step in range(999, -1, -1):\n" in long
    assert "def cell(step, h, x, params_U, params_W):" in long
    assert '"""One step of cell (test_loops.py:' in long
    assert abs(len(long.splitlines()) - len(short.splitlines())) <= 2
    checkpointed = _source(1000, every=10)
    assert "for step in range(10):" in checkpointed and "for segment in range(100):" in \
        checkpointed


def test_carry_must_keep_its_shape_and_dtype():
    def bad(x):
        return sg.scan(lambda c, x: (np.stack([c, c]), None), np.zeros(2), x)[0].sum()

    with pytest.raises(sg.TracingError, match="carry leaf 0 starts as float64\\[2\\]"):
        sg.jit(bad)(np.zeros((3, 2)))


def test_scan_over_mismatched_lengths_is_an_argument_error():
    def bad(x, y):
        return sg.scan(lambda c, xy: (c, None), 0.0, (x, y))[0]

    with pytest.raises(sg.ArgumentError, match="same first axis"):
        sg.jit(bad)(np.zeros(3), np.zeros(4))


def nested(a, grid):  # a scan in a scan, and an int counter carried beside a float
    def row(c, r):
        def col(s, v):
            k, acc = s
            return (k + 1, np.sin(acc * a + v * k)), None
        (k, acc), _ = sg.scan(col, (c[0], c[1]), r)
        return (k, acc), acc
    _, accs = sg.scan(row, (0, 0.5), grid)
    return np.sum(accs ** 2)


def test_transforms_compose_with_scan():
    """jacrev/jacfwd of a scan, sg.grad inside a scan body, a scan inside sg.grad inside a
    traced function, a scan in a scan, and an int carry beside a float one."""
    xs = RNG.normal(size=(6, 3))

    def states(W, xs):
        def cell(h, x):
            h = np.tanh(h @ W + x @ U)
            return h, h
        return sg.scan(cell, np.zeros(4), xs)[1]

    def states_torch(W, xs):
        h, out = torch.zeros(4, dtype=torch.float64), []
        for x in xs:
            h = torch.tanh(h @ W + x @ T(U))
            out.append(h)
        return torch.stack(out)

    expected = torch.func.jacrev(states_torch)(T(W), T(xs)).numpy()
    np.testing.assert_allclose(sg.jacrev(states)(W, xs), expected, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(sg.jacfwd(states)(W, xs), expected, rtol=1e-10, atol=1e-13)

    def energy(h):
        return np.sum(np.sin(h) ** 2)

    def descent(h0, xs):  # a gradient step inside each step of the loop
        def step(h, x):
            h = h - 0.1 * sg.grad(energy)(h) + x
            return h, np.sum(h)
        return np.sum(sg.scan(step, h0, xs)[1])

    def descent_torch(h0, xs):
        h, total = h0, 0
        for x in xs:
            g = torch.sin(2 * h)  # d/dh sin(h)^2
            h = h - 0.1 * g + x
            total = total + torch.sum(h)
        return total

    h0 = RNG.normal(size=3)
    np.testing.assert_allclose(sg.grad(descent)(h0, xs), torch.func.grad(descent_torch)(
        T(h0), T(xs)).numpy(), rtol=1e-11)

    def outer(W, xs):  # sg.grad of a function with a scan, inside a traced function
        return np.sum(sg.grad(lambda W: np.sum(states(W, xs) ** 2))(W) ** 2)

    def outer_torch(W, xs):
        return torch.sum(torch.func.grad(lambda W: torch.sum(states_torch(W, xs) ** 2))(W) ** 2)

    np.testing.assert_allclose(sg.grad(outer)(W, xs), torch.func.grad(outer_torch)(
        T(W), T(xs)).numpy(), rtol=1e-9, atol=1e-12)

    def nested_numpy(a, grid):
        k, acc, total = 0, 0.5, 0.0
        for r in grid:
            for v in r:
                k, acc = k + 1, np.sin(acc * a + v * k)
            total += acc ** 2
        return total

    grid = RNG.normal(size=(3, 4))
    a = np.array(0.7)
    value, g = sg.value_and_grad(nested, wrt="a")(a, grid)
    np.testing.assert_allclose(value, nested_numpy(a, grid), rtol=1e-13)
    np.testing.assert_allclose(g, central(lambda a: nested_numpy(a, grid), a), rtol=1e-7)
    gg = sg.grad(nested, wrt="grid")(a, grid)
    np.testing.assert_allclose(gg, central(lambda g: nested_numpy(a, g), grid), rtol=1e-6,
                               atol=1e-9)


@pytest.mark.parametrize("reverse", [False, True])
def test_per_step_results_are_stacked_in_step_order(reverse):
    """ys[t] belongs to xs[t] in both directions (JAX's convention); eager and traced agree."""
    xs = RNG.normal(size=(5, 2))

    def f(xs):
        return sg.scan(lambda c, x: (c * 0.5 + x, c * x), np.ones(2), xs, reverse=reverse)

    carry, ys = sg.jit(f)(xs)
    c, expected = np.ones(2), np.zeros_like(xs)
    for t in (reversed(range(5)) if reverse else range(5)):
        expected[t] = c * xs[t]
        c = c * 0.5 + xs[t]
    np.testing.assert_allclose(ys, expected, rtol=1e-14)
    np.testing.assert_allclose(carry, c, rtol=1e-14)
    eager_carry, eager_ys = f(xs)
    np.testing.assert_allclose(eager_ys, expected, rtol=1e-14)
    g = sg.grad(lambda xs: np.sum(f(xs)[1] * np.arange(10.0).reshape(5, 2)))(xs)
    numeric = central(lambda xs: np.sum(sg.jit(f)(xs)[1] * np.arange(10.0).reshape(5, 2)), xs)
    np.testing.assert_allclose(g, numeric, rtol=1e-7, atol=1e-9)


def test_every_loop_op_has_a_rule_and_code():
    from symgrad.autodiff import MULTI_OUTPUT
    from symgrad.ir import OPS, Group
    from symgrad.backends.numpy import STRUCTURAL

    loops = {name for name, record in OPS.items() if record.group is Group.LOOP}
    assert loops == set(MULTI_OUTPUT) == {"scan", "while", "cond", "while_vjp"}
    assert loops - {"while_vjp"} <= set(STRUCTURAL) and "loop_out" in STRUCTURAL


def test_vjp_pullback_and_hvp_through_a_scan():
    xs = RNG.normal(size=(4, 3))
    w = RNG.normal(size=3) * 0.5

    def f(w, xs):
        return sg.scan(lambda h, x: (np.tanh(w * h + x),) * 2, np.zeros(3), xs)[1]

    def f_torch(w, xs):
        h, out = torch.zeros(3, dtype=torch.float64), []
        for x in xs:
            h = torch.tanh(w * h + x)
            out.append(h)
        return torch.stack(out)

    ct = RNG.normal(size=(4, 3))
    _, pullback = sg.vjp(f, w, xs)
    _, torch_pullback = torch.func.vjp(f_torch, T(w), T(xs))
    for got, expected in zip(pullback(ct), torch_pullback(T(ct))):
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-11, atol=1e-14)
    v = RNG.normal(size=3)
    hv = sg.hvp(lambda w, xs: np.sum(f(w, xs) ** 2), wrt="w")(w, xs, v)
    _, expected = torch.func.jvp(torch.func.grad(lambda w: torch.sum(f_torch(w, T(xs)) ** 2)),
                                 (T(w),), (T(v),))
    np.testing.assert_allclose(hv, expected.numpy(), rtol=1e-10)


def test_arrays_read_at_the_counter_get_their_gradient_scattered_once():
    """`a[i]` and `b[i - 2, :]` in a fori_loop from 2: each step's adjoint is stacked and
    scattered after the loop (no full-size accumulation per step); numbers as unrolled."""
    a, b = RNG.normal(size=8), RNG.normal(size=(5, 2))

    def f(a, b, x):
        return np.sum(sg.fori_loop(2, 7, lambda i, v: np.sin(v * a[i] + b[i - 2, :]), x))

    def unrolled(a, b):
        v = np.ones(2)
        for i in range(2, 7):
            v = np.sin(v * a[i] + b[i - 2, :])
        return np.sum(v)

    ga, gb = sg.grad(f, wrt=("a", "b"))(a, b, np.ones(2))
    np.testing.assert_allclose(ga, central(lambda a: unrolled(a, b), a), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(gb, central(lambda b: unrolled(a, b), b), rtol=1e-7, atol=1e-10)
    source = sg.grad(f, wrt=("a", "b")).lower(a, b, np.ones(2)).source
    pullback = source[source.index("def body_vjp("):source.index("def body_vjp_loop(")]
    assert "_scatter_add" not in pullback and "a_bar" not in pullback
