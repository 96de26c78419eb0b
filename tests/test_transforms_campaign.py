"""Held-out-style campaign against the composable transforms (issue 10).

Random numpy programs (tests/compose_programs.py) through every transform and composition of
two and three, against torch.func in float64 (tests/compose_checks.py): a fixed-seed slice
here, longer runs with tools/compose_campaign.py. Below it, each bug the campaign found,
minimised into a regression test, and the tutorial's Jacobian-product example through vjp.
"""
from __future__ import annotations

import runpy

import numpy as np
import pytest
import torch
import torch.func as tf

import symgrad as sg
from symgrad.cli import tutorial_path
from compose_checks import (CHECKS, FLOAT32_CHECKS, SMALL_ONLY, Case, check_memory,
                            compare, run_check, run_float32)
from compose_programs import generate

# The fixed slice, chosen so that together its programs use every op family and 0-d, (1,) and
# (3, 1) inputs (test_the_slice_covers_what_it_promises); tools/compose_campaign.py runs more.
SEEDS = (18, 44, 138, 21, 121, 48, 0, 1)
FLOAT32_SEEDS = (18, 44, 138, 0)


def _case(seed: int, dtype=np.float64) -> Case:
    program, inputs = generate(np.random.default_rng(seed))
    return Case(program, inputs, np.random.default_rng(1000 + seed), dtype)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_program_through_every_transform_and_composition(seed):
    case = _case(seed)
    failures = []
    for name in CHECKS:
        if name in SMALL_ONLY and case.A[0].size > SMALL_ONLY[name]:
            continue
        try:
            run_check(name, _case(seed))
        except Exception as error:  # noqa: BLE001 - report every check of the program
            failures.append(f"{name}: {type(error).__name__}: {error}")
    assert not failures, case.program.source() + "\n" + "\n".join(failures)


@pytest.mark.parametrize("seed", FLOAT32_SEEDS)
def test_random_program_in_float32_stays_float32(seed):
    failures = []
    for name in FLOAT32_CHECKS:
        try:
            run_float32(name, _case(seed, np.float32))
        except Exception as error:  # noqa: BLE001
            failures.append(f"{name}: {type(error).__name__}: {error}")
    assert not failures, _case(seed).program.source() + "\n" + "\n".join(failures)


def test_the_slice_covers_what_it_promises():
    """The slice's programs include 0-d and size-1 inputs, several inputs, and every op
    family; a generator that silently produced only `sin(x)` would test nothing."""
    text, shapes = "", []
    for seed in SEEDS:
        program, _ = generate(np.random.default_rng(seed))
        text += program.source()
        shapes += program.shapes
    assert () in shapes and (3, 1) in shapes and (1,) in shapes
    for spelling in ("np.where", " @ ", "np.sum(", "np.mean(", "np.transpose", ".reshape(",
                     "[None]", "np.max(", "np.concatenate", "np.stack", "np.broadcast_to",
                     "[np.array(", "[::-1]", "[..., "):
        assert spelling in text, spelling


# -- bugs the campaign found, minimised --------------------------------------------------------
def test_two_zero_gradients_are_two_arrays():
    """Found: grad wrt (x0, x1, x2) of a function reading x2 only returned the same zeros
    array for x0 and x1 (`return t0, t0, x2_bar`): writing into one gradient changed the
    other."""
    grads = sg.grad(lambda a, b, c: np.sum(np.sin(c)), argnums=(0, 1, 2))(
        np.ones(3), np.ones(3), np.ones(3))
    assert not np.shares_memory(grads[0], grads[1])
    grads[0][0] = 5.0
    assert grads[1][0] == 0.0


@pytest.mark.parametrize("view", [lambda x: x.T, lambda x: x[0], lambda x: x.reshape(-1),
                                  lambda x: sg.stop_gradient(x), lambda x: x[:, ::-1]],
                         ids=["T", "index", "reshape", "stop_gradient", "reverse"])
def test_a_view_of_an_argument_is_returned_as_a_copy(view):
    """Found: sg.jit(lambda x: x.T)(x), and the value and tangent of sg.jvp / sg.vjp of it,
    were views of the caller's arrays: writing into the result wrote into x."""
    x = np.arange(6.0).reshape(2, 3)
    saved = x.copy()
    out, tangent = sg.jvp(view, (x,), (x,))
    results = [sg.jit(view)(x), out, tangent, sg.vjp(view, x)[0]]
    for r in results:
        assert not np.shares_memory(r, x) and r.flags.writeable
        r[...] = -1.0
    np.testing.assert_array_equal(x, saved)


def test_a_broadcast_result_is_writeable():
    """Found: an hvp component whose expression has a smaller natural shape than the result
    came back as np.broadcast_to(...) -- a read-only view; and a slice of a broadcast value
    (np.broadcast_to(x * c, (2, 1, 3))[::-1]) was returned as such a view too."""
    def f(x0, x1, x2):
        return np.sum(np.sin(x2 / (1.5 + np.clip(x1, -0.5, 0.5) ** 2)))

    args = (np.ones(3), np.full((1, 3), 0.2), np.ones(1))
    h = sg.hvp(f, argnums=(0, 1, 2))(*args, args)
    assert all(x.flags.writeable for x in h)
    c = np.array([0.145, -0.256, -0.665])
    y = sg.jit(lambda x: np.broadcast_to(x * c, (2, 1, 3))[::-1])(np.ones((1, 3)))
    assert y.flags.writeable
    y[0, 0, 0] = 1.0


def test_vjp_with_aux_and_several_wrt():
    """Found: sg.vjp(f, x, y, has_aux=True) with a dict aux raised "'NoneType' object is not
    iterable" (the forward part's finisher unflattened the not-yet-computed gradients)."""
    x, y = np.array([0.3, -1.2]), np.array(0.7)

    def f(a, b):
        return np.sum(np.sin(a) * b), {"cos": np.cos(a)}

    out, pullback, aux = sg.vjp(f, x, y, has_aux=True)
    ga, gb = pullback(np.array(2.0))
    np.testing.assert_allclose(ga, 2 * np.cos(x) * y, rtol=1e-12)
    np.testing.assert_allclose(gb, 2 * np.sum(np.sin(x)), rtol=1e-12)
    np.testing.assert_allclose(aux["cos"], np.cos(x), rtol=1e-12)


def test_outer_argument_that_no_output_reads_beside_a_call():
    """Found: an outer function with an argument it never reads, calling sg.grad inside,
    raised KeyError <Node input#...> from calls.expand_calls (unread inputs were not in the
    rebuilt graph)."""
    def h(x, y):
        return np.sum(sg.grad(lambda z: np.sum(np.sin(z)))(x))

    x = np.array([0.5, 1.0])
    gx, gy = sg.grad(h, argnums=(0, 1))(x, np.array(2.0))
    np.testing.assert_allclose(gx, -np.sin(x), rtol=1e-12)
    assert gy.shape == () and gy == 0.0


# -- the tutorial's Jacobian-product example through vjp ------------------------------------
def test_tutorial_jacobian_product_through_vjp_matches_torch_backward():
    """PyTorch's tutorial: out = ((inp + 1) ** 2).T; out.backward(v) gives inp.grad. Here the
    pullback is called with several v (no re-running of the forward), each against torch."""
    squared_shifted = runpy.run_path(str(tutorial_path()))["squared_shifted"]

    def squared_shifted_torch(inp):
        return ((inp + 1) ** 2).T

    inp = np.eye(4, 5)
    out, pullback = sg.vjp(squared_shifted, inp, wrt="inp")
    rng = np.random.default_rng(3)
    for v in (np.ones((5, 4)), rng.normal(size=(5, 4)), np.ones((5, 4))):
        t_inp = torch.tensor(inp, requires_grad=True)
        t_out = squared_shifted_torch(t_inp)
        t_out.backward(torch.tensor(v))
        np.testing.assert_allclose(pullback(v), t_inp.grad.numpy(), rtol=1e-12)
        np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-12)
    assert out.flags.writeable and not np.shares_memory(out, inp)
    with pytest.raises(sg.ArgumentError, match=r"cotangent"):
        pullback(np.ones((4, 5)))


def test_pytree_parameters_of_a_small_model_match_torch():
    """dict of list of (namedtuple, dataclass) parameters: every transform's result comes back
    in the parameters' structure, numbers equal to torch.func on the flat function."""
    from compose_checks import Layer, Pair

    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 3))
    params = {"layers": [Pair(rng.normal(size=(3, 2)), rng.normal(size=2)),
                         Layer(rng.normal(size=(2, 1)))], "scale": np.array(0.5)}

    def model(p, x):
        first, last = p["layers"]
        return np.mean(np.tanh(x @ first.first + first.second) @ last.w * p["scale"])

    def model_t(w1, b1, w2, s, x):
        return torch.mean(torch.tanh(x @ w1 + b1) @ w2 * s)

    flat = [params["layers"][0].first, params["layers"][0].second, params["layers"][1].w,
            params["scale"]]
    want = tf.grad(model_t, argnums=(0, 1, 2, 3))(*map(torch.tensor, flat), torch.tensor(x))
    got = sg.grad(model)(params, x)
    expected = {"layers": [Pair(want[0], want[1]), Layer(want[2])], "scale": want[3]}
    compare(got, expected)
    check_memory(got, tuple(flat) + (x,))
    value, again = sg.value_and_grad(model)(params, x)
    compare(again, expected)
    np.testing.assert_allclose(value, model_t(*map(torch.tensor, flat), torch.tensor(x)).item(),
                               rtol=1e-12)
    hv = sg.hvp(model)(params, x, params)  # H @ params, shaped like params
    hv_t = tf.jvp(tf.grad(model_t, argnums=(0, 1, 2, 3)), tuple(map(torch.tensor, flat)) +
                  (torch.tensor(x),), tuple(map(torch.tensor, flat)) +
                  (torch.zeros(4, 3),))[1]
    compare(hv, {"layers": [Pair(hv_t[0], hv_t[1]), Layer(hv_t[2])], "scale": hv_t[3]})


@pytest.mark.parametrize("call, message", [
    (lambda x: sg.jacrev(np.sin, has_aux=True)(x), r"has_aux=True needs .*pair"),
    (lambda x: sg.grad(lambda a: np.sum(a), has_aux=True)(x), r"returned one array \(float64\[\]\)"),
    (lambda x: sg.hessian(np.sin)(x), r"hessian needs .* one scalar"),
    (lambda x: sg.grad(np.sin)(x), r"grad needs .* one scalar"),
    (lambda x: sg.grad(lambda a, n: np.sum(a * n), argnums=1)(x, np.array([1, 2])),
     r"cannot differentiate with respect to 'n'"),
], ids=["jacrev_has_aux", "grad_has_aux", "hessian_scalar", "grad_scalar", "int_wrt"])
def test_bad_input_errors_name_the_users_line(call, message):
    """Found: these messages named no line (and has_aux's said 'it returned a Tracer')."""
    with pytest.raises(sg.SymgradError, match=message) as caught:
        call(np.array([0.3, 0.5]))
    assert "test_transforms_campaign.py:" in str(caught.value)
    assert "Tracer" not in str(caught.value)


def test_grad_of_a_numpy_function_itself():
    """Found: np.sum's untouched defaults (keepdims=np._NoValue, initial, where) were passed
    on as arguments; numpy's "not given" sentinel is now left to numpy."""
    np.testing.assert_array_equal(sg.grad(np.sum)(np.ones(3)), np.ones(3))
    value, gradient = sg.value_and_grad(np.mean)(np.arange(4.0))
    assert value == 1.5 and np.array_equal(gradient, np.full(4, 0.25))
    np.testing.assert_allclose(sg.grad(np.prod)(np.array([2.0, 3.0, 4.0])), [12.0, 8.0, 6.0])
    np.testing.assert_allclose(sg.grad(np.sum, static_argnums=1)(np.ones((2, 2)), (0, 1)),
                               np.ones((2, 2)))
    with pytest.raises(sg.TracedConversionError, match="static_argnames"):
        sg.grad(np.sum)(np.ones((2, 2)), 1)  # an axis must be static, as in JAX


def test_none_in_a_pytree_is_an_empty_subtree_as_in_jax():
    """Found: {"w": w, "b": None} (an optional bias) raised "cannot differentiate with respect
    to 'p_b': it is a static Python value". In JAX None is a node with no leaves: the
    gradient has None in its place, and every transform keeps it."""
    x = np.array([1.0, 2.0])
    p = {"a": x, "b": None}
    got = sg.grad(lambda p: np.sum(p["a"] ** 2))(p)
    assert got["b"] is None and np.array_equal(got["a"], 2 * x)
    H = sg.hessian(lambda p: np.sum(p["a"] ** 3))(p)
    np.testing.assert_array_equal(H["a"]["a"], np.diag(6 * x))
    assert H["a"]["b"] is None and H["b"] is None
    out, tangent = sg.jvp(lambda p: {"y": p["a"] * 2, "none": None}, (p,), (p,))
    assert out["none"] is None and tangent["none"] is None
    np.testing.assert_array_equal(tangent["y"], 2 * x)
    grads = sg.vjp(lambda q: (q * 2, None), x)[1]((np.ones(2), None))
    np.testing.assert_array_equal(grads[0], np.full(2, 2.0))


def test_keys_that_sanitise_alike_stay_apart():
    """Found: {"a-b": x, "a_b": y} raised "two arguments flatten to the same name: p_a_b,
    p_a_b" (both keys become the identifier p_a_b); so did a key clashing with a parameter."""
    x = np.array([1.0, 2.0])
    g = sg.grad(lambda p: np.sum(p["a-b"] * p["a_b"] ** 2))({"a-b": x, "a_b": 2 * x})
    np.testing.assert_array_equal(g["a-b"], (2 * x) ** 2)
    np.testing.assert_array_equal(g["a_b"], 2 * x * 2 * x)
    gp, gq = sg.grad(lambda p, p_a: np.sum(p["a"] * p_a), argnums=(0, 1))({"a": x}, 3 * x)
    np.testing.assert_array_equal(gp["a"], 3 * x)
    np.testing.assert_array_equal(gq, x)


def test_a_broadcast_constant_branch_keeps_the_float_dtype():
    """Found (jacrev of jacfwd, then minimised to plain grad): an expression typed by Python
    scalars only (np.where(c, 1, 0): a derivative of np.where) that is broadcast to full size
    was emitted as np.broadcast_to(np.where(t0, 1, 0), (2,)) -- an int64 gradient -- so the
    outer transform refused its own float64 cotangent."""
    for dtype in (np.float64, np.float32):
        a = np.array(0.5, dtype)
        g = sg.grad(lambda a: np.sum(np.broadcast_to(a, (2,)) * np.where(a > 0.2, 1.0, 0.0)))(a)
        assert g.dtype == dtype and g == 2.0

    def g(x0, x1):
        v = np.broadcast_to(x0, (2,))
        return np.where(v > 0.2, v, x1 * 2.0)

    J = sg.jacrev(sg.jacfwd(g))(np.array(0.5), np.array(0.3))
    assert J.dtype == np.float64 and J.shape == (2,)
    np.testing.assert_array_equal(J, np.zeros(2))


def test_third_derivative_through_broadcast_and_sum():
    """Found (silent, already on main): d3/dt3 of sin(sum(broadcast_to(cos(t), (2,)))) was
    -2.3608 (torch.func and central differences: -3.4599). primitives.unbroadcast folded
    sum-over-broadcast(v) to v, dropping the count of copies."""
    def f(t):
        return np.sin(np.sum(np.broadcast_to(np.cos(t), (2,))))

    def ft(t):
        return torch.sin(torch.sum(torch.cos(t).expand(2)))

    want = tf.grad(tf.grad(tf.grad(ft)))(torch.tensor(0.3)).item()
    np.testing.assert_allclose(sg.grad(sg.grad(sg.grad(f)))(np.array(0.3)), want, rtol=1e-9)


def test_third_derivative_with_a_matrix_product_inside_a_broadcast():
    """Found: generated code raised 'operands could not be broadcast together' (the same
    dropped count left shapes that no longer fitted)."""
    C = np.array([[-0.457, 0.481], [-1.183, -0.166], [0.244, 0.32]])
    W = np.array([[0.682, 0.419]])
    x, d = np.array([[0.3, -0.5, 0.9]]), np.array([[0.7, 0.2, -1.1]])

    def s(t):
        a = x + t * d
        return np.sum(np.sin(np.sum(np.broadcast_to(a @ C, (2, 1, 2)), axis=0)) * W)

    def st(t):
        a = torch.tensor(x) + t * torch.tensor(d)
        return torch.sum(torch.sin(torch.sum((a @ torch.tensor(C)).expand(2, 1, 2), dim=0))
                         * torch.tensor(W))

    want = tf.grad(tf.grad(tf.grad(st)))(torch.tensor(0.3)).item()
    np.testing.assert_allclose(sg.grad(sg.grad(sg.grad(s)))(np.array(0.3)), want, rtol=1e-9)


def test_forward_over_reverse_through_a_size_one_broadcast():
    """Found (silent, already on main): jacfwd(jacrev(f)) and jvp of grad gave half of the
    second derivative for a of shape (1,) broadcast to (2,) (12 times too small for x1 - x0
    with x0 (1,) and x1 (2, 3, 2)); hessian was right. Cause: unbroadcast(broadcast_to(v))
    returned v instead of count * v."""
    a = np.array([0.4])

    def f(a):
        return np.sin(np.sum(np.broadcast_to(a, (2,))))

    want = -4 * np.sin(2 * a)
    np.testing.assert_allclose(sg.hessian(f)(a)[0], want, rtol=1e-12)
    np.testing.assert_allclose(sg.jacfwd(sg.jacrev(f))(a)[0], want, rtol=1e-9)
    np.testing.assert_allclose(sg.jvp(sg.grad(f), (a,), (np.ones(1),))[1], want, rtol=1e-9)
