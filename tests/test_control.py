"""while_loop, cond/switch and checkpoint: values and derivatives against torch.func and
central differences; only the chosen branch runs; reverse mode through a while loop is a
clear error naming the line."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import symgrad as sg

RNG = np.random.default_rng(11)


def T(a):
    return torch.tensor(np.asarray(a))


def branchy(x, w):
    y = sg.cond(np.sum(x) > 0, lambda a: np.sin(a * w), lambda a: np.log(a * a) * w, x)
    return np.sum(y)


def branchy_torch(x, w):
    if torch.sum(x) > 0:
        return torch.sum(torch.sin(x * w))
    return torch.sum(torch.log(x * x) * w)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_cond_value_and_grad_match_torch(sign):
    x = sign * np.array([0.5, 1.0, 0.25])
    w = np.array([1.5, -0.7, 0.2])
    value, (gx, gw) = sg.value_and_grad(branchy, wrt=("x", "w"))(x, w)
    tx, tw = T(x).requires_grad_(), T(w).requires_grad_()
    expected = branchy_torch(tx, tw)
    expected.backward()
    np.testing.assert_allclose(value, expected.item(), rtol=1e-13)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(gw, tw.grad.numpy(), rtol=1e-12)
    H = sg.hessian(branchy)(x, w)
    np.testing.assert_allclose(H, torch.func.hessian(branchy_torch)(T(x), T(w)).numpy(),
                               rtol=1e-12, atol=1e-14)


def test_only_the_chosen_branch_runs():
    """The unselected branch would take the log of a negative number (and raise under
    np.errstate(all="raise")): sg.cond runs only the selected one."""
    def f(x):
        return sg.cond(np.min(x) > 0, lambda v: np.log(v), lambda v: v * 1.0, x)

    x = -np.ones(3)
    with np.errstate(all="raise"):
        np.testing.assert_array_equal(sg.jit(f)(x), x)
        np.testing.assert_allclose(sg.jit(f)(-x), np.log(-x))
    source = sg.jit(f).lower(x).source
    assert "    if index == 0:\n        return false_branch(" in source


def test_switch_clamps_the_index_and_differentiates_the_branch():
    branches = [lambda v: v * 2.0, lambda v: np.exp(v), lambda v: v ** 3]

    def f(k, x):
        return np.sum(sg.switch(k, branches, x))

    x = np.array([0.3, -0.2])
    for k, expected in [(0, 2 * np.ones(2)), (1, np.exp(x)), (2, 3 * x ** 2),
                        (7, 3 * x ** 2), (-3, 2 * np.ones(2))]:
        np.testing.assert_allclose(sg.grad(f, wrt="x")(np.int64(k), x), expected, rtol=1e-13)


def test_branches_must_agree():
    def f(x):
        return sg.cond(np.sum(x) > 0, lambda v: v, lambda v: np.sum(v), x)

    with pytest.raises(sg.TracingError, match="branches return different"):
        sg.jit(f)(np.ones(3))


def grow(x, a):
    def body(c):
        i, v = c
        return i + 1, np.sin(v * a) + v

    return sg.while_loop(lambda c: np.sum(c[1]) < 10.0, body, (0, x))


def grow_numpy(x, a):
    i, v = 0, x
    while np.sum(v) < 10.0:
        i, v = i + 1, np.sin(v * a) + v
    return i, v


def test_while_loop_forward_and_forward_mode():
    x, a = np.array([1.0, 2.0]), np.array([0.3, 0.9])
    steps, v = sg.jit(grow)(x, a)
    expected_steps, expected = grow_numpy(x, a)
    assert steps == expected_steps > 3
    np.testing.assert_allclose(v, expected, rtol=1e-13)
    tx, ta = np.array([0.1, -0.4]), np.array([1.0, 0.5])
    _, (_, tangent) = sg.jvp(grow, (x, a), (tx, ta))
    eps = 1e-6
    numeric = (grow_numpy(x + eps * tx, a + eps * ta)[1]
               - grow_numpy(x - eps * tx, a - eps * ta)[1]) / (2 * eps)
    np.testing.assert_allclose(tangent, numeric, rtol=1e-6)
    jac = sg.jacfwd(lambda x, a: grow(x, a)[1])(x, a)
    numeric = np.stack([(grow_numpy(x + eps * e, a)[1] - grow_numpy(x - eps * e, a)[1])
                        / (2 * eps) for e in np.eye(2)], axis=1)
    np.testing.assert_allclose(jac, numeric, rtol=1e-6, atol=1e-8)
    assert "    while cond_fun(" in sg.jit(grow).lower(x, a).source


def test_reverse_mode_through_while_loop_names_the_line():
    def loss(x, a):
        return np.sum(grow(x, a)[1])

    with pytest.raises(sg.GradientError, match=r"while_loop \(at test_control.py:\d+\).*"
                                               r"fori_loop or sg.scan"):
        sg.grad(loss)(np.array([1.0, 2.0]), np.array([0.3, 0.9]))


def test_fori_loop_with_traced_bounds_is_a_while_loop():
    def f(n, x):
        return sg.fori_loop(0, n, lambda i, v: v * 1.5 + i, x)

    np.testing.assert_allclose(sg.jit(f)(np.int64(4), np.ones(2)),
                               sg.fori_loop(0, 4, lambda i, v: v * 1.5 + i, np.ones(2)))


def test_checkpoint_recomputes_in_the_backward_pass():
    W = RNG.normal(size=(4, 4)) * 0.5

    def block(h):
        return np.tanh(h @ W) + h

    def deep(h, remat):
        f = sg.checkpoint(block) if remat else block
        for _ in range(4):
            h = f(h)
        return np.sum(h ** 2)

    h = RNG.normal(size=(3, 4))
    plain = sg.value_and_grad(lambda h: deep(h, False))(h)
    remat = sg.value_and_grad(lambda h: deep(h, True))(h)
    np.testing.assert_allclose(remat[0], plain[0], rtol=1e-13)
    np.testing.assert_allclose(remat[1], plain[1], rtol=1e-12)
    th = T(h).requires_grad_()
    x = th
    for _ in range(4):
        x = torch.tanh(x @ T(W)) + x
    torch.sum(x ** 2).backward()
    np.testing.assert_allclose(remat[1], th.grad.numpy(), rtol=1e-12)
    source = sg.value_and_grad(lambda h: deep(h, True)).lower(h).source
    assert "def block_vjp(" in source  # the pullback recomputes the block from its input


def test_traced_if_error_names_the_replacements():
    def f(x):
        if np.sum(x) > 0:
            return x
        return -x

    with pytest.raises(sg.TracedBoolError, match="sg.cond.*sg.while_loop"):
        sg.jit(f)(np.ones(2))
