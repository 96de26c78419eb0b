"""Structural ops at the points where a convention decides the gradient (ties, zeros, a zero
norm), at extreme inputs (unshifted logsumexp/softmax), second derivatives, readable printing,
and the errors users meet."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import symgrad as sg
from gradcheck import torch_gradients


def _torch_grad(fn, x):
    return torch_gradients(fn, [x], (0,))[1][0]


# ---------------------------------------------------------------------------------------------
# Ties, zeros, zero norms
# ---------------------------------------------------------------------------------------------
TIES = np.array([[1.0, 3.0, 3.0, 2.0], [2.0, 2.0, 0.0, 2.0], [-1.0, -1.0, -1.0, -1.0]])


@pytest.mark.parametrize("numpy_fn, torch_fn", [
    (lambda x: np.sum(np.max(x, axis=1) * np.arange(3.0)),
     lambda x: torch.sum(torch.amax(x, 1) * torch.arange(3.0, dtype=torch.float64))),
    (lambda x: np.max(x), lambda x: torch.max(x)),
    (lambda x: np.sum(np.amin(x, axis=0) ** 2), lambda x: torch.sum(torch.amin(x, 0) ** 2)),
    (lambda x: x.min(), lambda x: torch.min(x)),
], ids=["max_axis", "max_all", "amin_axis", "min_all"])
def test_ties_share_the_gradient_evenly_like_torch_amax(numpy_fn, torch_fn):
    grad = sg.grad(numpy_fn)(TIES)
    np.testing.assert_array_equal(grad, _torch_grad(torch_fn, TIES))
    assert grad.sum() != 0


@pytest.mark.parametrize("values", [[1.0, 0.0, 3.0, 2.0], [0.0, 0.0, 3.0, 2.0],
                                    [1.5, 2.0, 3.0, 0.5], [0.0, 0.0, 0.0, 0.0]],
                         ids=["one_zero", "two_zeros", "no_zero", "all_zero"])
def test_prod_and_cumprod_with_zeros_are_exact(values):
    x = np.array([values, values[::-1]])
    weights = np.array([1.0, -2.0, 3.0, 0.5])
    prod = sg.grad(lambda x: np.sum(np.prod(x, axis=1) * np.array([1.0, 2.0])))(x)
    np.testing.assert_array_equal(prod, _torch_grad(
        lambda t: torch.sum(t.prod(1) * torch.tensor([1.0, 2.0], dtype=torch.float64)), x))
    cumprod = sg.grad(lambda x: np.sum(np.cumprod(x, axis=1) * weights))(x)
    np.testing.assert_allclose(cumprod, _torch_grad(
        lambda t: torch.sum(t.cumprod(1) * torch.tensor(weights)), x), rtol=1e-15)


def test_std_of_a_constant_has_gradient_zero():
    x = np.full((3, 4), 2.5)
    for f in (lambda x: np.sum(np.std(x, axis=0)), lambda x: x.std(ddof=1)):
        grad = sg.grad(f)(x)
        assert np.all(grad == 0)
    np.testing.assert_array_equal(sg.grad(lambda x: x.std())(x),
                                  _torch_grad(lambda t: t.std(correction=0), x))


def test_norms_at_zero_have_gradient_zero():
    zero = np.zeros(4)
    for f in (lambda x: np.linalg.norm(x), lambda x: np.linalg.norm(x, 1),
              lambda x: np.linalg.norm(x, np.inf), lambda x: np.sqrt(np.sum(x * x)),
              lambda x: np.sqrt(np.sum(np.square(x)))):
        value, grad = sg.value_and_grad(f)(zero)
        assert value == 0 and np.all(grad == 0)
    # PyTorch itself: linalg.norm gives 0 here, sqrt(sum(x*x)) gives NaN; symgrad gives 0 for
    # both (the minimum-norm subgradient), through the graph rewrite it reports.
    assert np.all(_torch_grad(lambda t: torch.linalg.norm(t), zero) == 0)
    lowered = sg.grad(lambda x: np.sqrt(np.sum(x * x))).lower(zero)
    assert any(r.startswith("norm:") for r in lowered.rewrites)


def test_gather_with_repeated_indices_accumulates():
    labels = np.array([2, 0, 2, 2])
    grad = sg.grad(lambda x, labels: np.sum(x[labels] * 2.0))(np.ones(3), labels)
    np.testing.assert_array_equal(grad, [2.0, 0.0, 6.0])


# ---------------------------------------------------------------------------------------------
# Unshifted logsumexp and softmax at extreme inputs
# ---------------------------------------------------------------------------------------------
EXTREME = np.array([[1000.0, -1000.0, 3.0], [-1000.0, -999.0, -1001.0], [1000.0, 1000.0, 999.0]])
WEIGHTS = np.array([0.5, -1.0, 2.0])


def logsumexp_unshifted(x):
    return np.sum(np.log(np.sum(np.exp(x), axis=-1)) * np.array([1.0, 2.0, 3.0]))


def softmax_unshifted(x):
    e = np.exp(x)
    return np.sum(e / e.sum(axis=1, keepdims=True) * WEIGHTS)


def logsumexp_all(x):
    return np.log(np.sum(np.exp(x)))


@pytest.mark.parametrize("numpy_fn, torch_fn, rule", [
    (logsumexp_unshifted, lambda t: torch.sum(torch.logsumexp(t, -1) * torch.tensor(
        [1.0, 2.0, 3.0], dtype=torch.float64)), "logsumexp"),
    (softmax_unshifted, lambda t: torch.sum(torch.softmax(t, 1) * torch.tensor(WEIGHTS)),
     "softmax"),
    (logsumexp_all, lambda t: torch.logsumexp(t.reshape(-1), 0), "logsumexp"),
], ids=["logsumexp_axis", "softmax_keepdims", "logsumexp_all"])
def test_unshifted_forms_are_finite_and_correct_at_extremes(numpy_fn, torch_fn, rule):
    f = sg.value_and_grad(numpy_fn)
    for x in (EXTREME, -EXTREME):
        value, grad = f(x)
        torch_value, (torch_grad,) = torch_gradients(torch_fn, [x], (0,))
        assert np.isfinite(value) and np.all(np.isfinite(grad))
        np.testing.assert_allclose(value, torch_value, rtol=1e-12)
        np.testing.assert_allclose(grad, torch_grad, rtol=1e-12, atol=1e-15)
    assert any(r.startswith(rule + ":") for r in f.lower(EXTREME).rewrites)


def shifted_softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return np.sum(e / np.sum(e, axis=-1, keepdims=True) * WEIGHTS)


def log_softmax_plain(x):
    return np.sum((x - np.log(np.sum(np.exp(x), axis=1, keepdims=True))) * WEIGHTS)


def log_softmax_shifted(x):
    z = x - np.max(x, axis=1, keepdims=True)
    return np.sum((z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))) * WEIGHTS)


def log_softmax_by_hand(x):
    m = np.max(x, axis=1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(x - m), axis=1, keepdims=True))
    return np.sum((x - lse) * WEIGHTS)


def log_softmax_flat(x):
    v = x.reshape(-1)
    return np.sum((v - np.log(np.sum(np.exp(v)))) * 0.25)


TIES = np.array([[2.0, 2.0, -1.0], [0.0, 0.0, 0.0], [5.0, -3.0, 5.0]])


@pytest.mark.parametrize("numpy_fn, torch_fn, rule", [
    (shifted_softmax, lambda t: torch.sum(torch.softmax(t, -1) * torch.tensor(WEIGHTS)),
     "softmax"),
    (log_softmax_plain, lambda t: torch.sum(torch.log_softmax(t, 1) * torch.tensor(WEIGHTS)),
     "log_softmax"),
    (log_softmax_shifted, lambda t: torch.sum(torch.log_softmax(t, 1) * torch.tensor(WEIGHTS)),
     "log_softmax"),
    (log_softmax_by_hand, lambda t: torch.sum(torch.log_softmax(t, 1) * torch.tensor(WEIGHTS)),
     "log_softmax"),
    (log_softmax_flat, lambda t: torch.sum(torch.log_softmax(t.reshape(-1), 0) * 0.25),
     "log_softmax"),
], ids=["softmax_shifted", "log_softmax", "log_softmax_shifted", "log_softmax_by_hand",
        "log_softmax_flat"])
def test_softmax_forms_become_one_op_without_gradient_through_the_shift(numpy_fn, torch_fn,
                                                                         rule):
    """However the user stabilises it, a softmax is one op: its gradient is the closed form,
    with no tie count or comparison for the max shift (zero in exact arithmetic), and the
    maximum is taken once."""
    f = sg.value_and_grad(numpy_fn)
    for x in (EXTREME, -EXTREME, TIES, np.zeros((3, 3))):
        value, grad = f(x)
        torch_value, (torch_grad,) = torch_gradients(torch_fn, [x], (0,))
        assert np.isfinite(value) and np.all(np.isfinite(grad))
        np.testing.assert_allclose(value, torch_value, rtol=1e-12)
        np.testing.assert_allclose(grad, torch_grad, rtol=1e-12, atol=1e-12)
    lowered = f.lower(EXTREME)
    assert any(r.startswith(rule + ":") for r in lowered.rewrites)
    assert "==" not in lowered.source and lowered.source.count("np.max(") == 1


def logsumexp_rows_by_hand(x):
    m = np.max(x, axis=1, keepdims=True)
    return np.sum((m[:, 0] + np.log(np.sum(np.exp(x - m), axis=1))) * WEIGHTS)


def logsumexp_all_by_hand(x):
    m = np.max(x)
    return np.log(np.sum(np.exp(x - m))) + m


@pytest.mark.parametrize("numpy_fn, torch_fn", [
    (logsumexp_rows_by_hand, lambda t: torch.sum(torch.logsumexp(t, 1) * torch.tensor(WEIGHTS))),
    (logsumexp_all_by_hand, lambda t: torch.logsumexp(t.reshape(-1), 0)),
], ids=["rows", "all"])
def test_logsumexp_by_hand_has_no_gradient_through_its_shift(numpy_fn, torch_fn):
    f = sg.value_and_grad(numpy_fn)
    for x in (EXTREME, -EXTREME, TIES, np.zeros((3, 3))):
        value, grad = f(x)
        torch_value, (torch_grad,) = torch_gradients(torch_fn, [x], (0,))
        np.testing.assert_allclose(value, torch_value, rtol=1e-12)
        np.testing.assert_allclose(grad, torch_grad, rtol=1e-12, atol=1e-12)
    lowered = f.lower(EXTREME)
    assert any(r.startswith("logsumexp by hand:") for r in lowered.rewrites)
    assert "==" not in lowered.source and "_unslice" not in lowered.source


def test_indexing_that_only_moves_unit_axes_is_a_reshape_both_ways():
    def f(x, y):
        column = x @ y[None].T  # (n, 1)
        return np.sum(np.sin(column[:, 0]) * np.arange(5.0))

    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=3)
    compiled = sg.value_and_grad(f, wrt=(0, 1))
    value, (gx, gy) = compiled(x, y)
    tx, ty = (torch.tensor(a, requires_grad=True) for a in (x, y))
    torch.sum(torch.sin((tx @ ty[None].T)[:, 0]) * torch.arange(5.0)).backward()
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(gy, ty.grad.numpy(), rtol=1e-12)
    source = compiled.lower(x, y).source
    assert "_unslice" not in source and "[:, 0]" in source


def test_softmax_of_a_shift_that_varies_along_the_axis_is_not_unshifted():
    def f(x):
        shifted = x - np.max(x, axis=0, keepdims=True)  # constant down columns, not along rows
        e = np.exp(shifted)
        return np.sum(e / np.sum(e, axis=1, keepdims=True) * WEIGHTS)

    def torch_f(t):
        shifted = t - torch.amax(t, 0, keepdim=True)
        return torch.sum(torch.softmax(shifted, 1) * torch.tensor(WEIGHTS))

    x = np.random.default_rng(5).normal(size=(3, 3))
    value, grad = sg.value_and_grad(f)(x)
    torch_value, (torch_grad,) = torch_gradients(torch_f, [x], (0,))
    np.testing.assert_allclose(grad, torch_grad, rtol=1e-12, atol=1e-14)
    assert "np.max(x, axis=0, keepdims=True)" in sg.value_and_grad(f).lower(x).source


# ---------------------------------------------------------------------------------------------
# Second derivatives through structural ops
# ---------------------------------------------------------------------------------------------
HESSIAN_CASES = [
    ("einsum", lambda x: np.sum(np.einsum("ij,jk->ik", x, x) ** 2),
     lambda t: torch.sum(torch.einsum("ij,jk->ik", t, t) ** 2), (3, 3)),
    ("max_prod", lambda x: np.sum(np.max(x, axis=1) * np.prod(x, axis=0)),
     lambda t: torch.sum(torch.amax(t, 1) * t.prod(0)), (3, 3)),
    ("norm_cumsum", lambda x: np.linalg.norm(np.cumsum(x)) ** 3,
     lambda t: torch.linalg.norm(torch.cumsum(t, 0)) ** 3, (4,)),
    ("gather_concat", lambda x: np.sum(np.concatenate([x, x ** 2])[np.array([0, 5, 5, 2])] ** 3),
     lambda t: torch.sum(torch.cat([t, t ** 2])[[0, 5, 5, 2]] ** 3), (4,)),
    ("logsumexp", lambda x: np.log(np.sum(np.exp(x))) * np.sum(x ** 2),
     lambda t: torch.logsumexp(t, 0) * torch.sum(t ** 2), (4,)),
    ("softmax", lambda x: np.sum(np.exp(x) / np.sum(np.exp(x), axis=1, keepdims=True)
                                 * np.arange(12.0).reshape(3, 4) ** 2),
     lambda t: torch.sum(torch.softmax(t, 1) * torch.arange(12.0, dtype=torch.float64)
                         .reshape(3, 4) ** 2), (3, 4)),
    ("log_softmax", lambda x: np.sum(np.sin(x - np.log(np.sum(np.exp(x), axis=0,
                                                              keepdims=True)))),
     lambda t: torch.sum(torch.sin(torch.log_softmax(t, 0))), (3, 4)),
]


@pytest.mark.parametrize("name, f, torch_f, shape", HESSIAN_CASES,
                         ids=[c[0] for c in HESSIAN_CASES])
def test_hessian_matches_torch(name, f, torch_f, shape):
    x = np.random.default_rng(3).normal(size=shape)
    hessian = sg.hessian(f)(x)
    expected = torch.autograd.functional.hessian(torch_f, torch.tensor(x)).numpy()
    np.testing.assert_allclose(hessian, expected, rtol=1e-9, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# Readable code
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("f, shapes, expected", [
    (lambda x, w: np.sum(np.tanh(x @ w.T)), [(3, 4), (2, 4)], "x @ w.T"),
    (lambda x, w: np.sum(np.sin(np.outer(x, w))), [(3,), (2,)], "np.outer(x, w)"),
    (lambda x, w: np.sin(np.trace(x)) * np.sum(w), [(3, 3), (2,)], "np.trace(x)"),
    (lambda x, w: np.sum(np.tensordot(x, w, axes=1) ** 2), [(2, 3), (3, 2)], "x @ w"),
    (lambda x, w: np.sum(np.tensordot(x, w, axes=2) ** 2), [(2, 3, 2), (3, 2)],
     "np.tensordot(x, w, axes=2)"),
    (lambda x, w: np.sum(np.flip(x, 0) * w), [(3,), (3,)], "x[::-1]"),
    (lambda x, w: np.sum(np.cumsum(x, axis=0) * w), [(3,), (3,)], "np.cumsum(x, axis=0)"),
    (lambda x, w: np.sum(np.concatenate([x, w]) ** 2), [(3,), (2,)],
     "np.concatenate([x, w], axis=0)"),
], ids=["matmul_T", "outer", "trace", "tensordot_1", "tensordot_2", "flip", "cumsum",
        "concatenate"])
def test_contractions_and_movement_print_readably(f, shapes, expected):
    def loss(x, w):
        return f(x, w)

    args = [np.ones(s) for s in shapes]
    source = sg.value_and_grad(loss, wrt=(0, 1)).lower(*args).source
    assert expected in source


def test_label_gather_prints_as_indexing_and_scatters_by_assignment():
    """logp[np.arange(n), labels] names every position once (the arange rows are distinct),
    so its adjoint is an assignment; indices that may repeat accumulate with np.add.at."""
    def nll(logp, labels):
        return -np.mean(logp[np.arange(4), labels])

    labels = np.array([0, 1, 2, 1])
    compiled = sg.value_and_grad(nll)
    _, grad = compiled(np.zeros((4, 3)), labels)
    expected = np.zeros((4, 3))
    expected[np.arange(4), labels] = -0.25
    np.testing.assert_array_equal(grad, expected)
    source = compiled.lower(np.zeros((4, 3)), labels).source
    assert "np.arange(4, dtype=np.int64)" in source
    assert "logp[const, labels]" in source
    assert "_unslice(" in source and "np.add.at" not in source

    def repeated(x, rows):
        return np.sum(x[rows] ** 2) + np.sum(x[np.array([1, 1, 0])] * 3)

    x = np.arange(6.0).reshape(3, 2)
    compiled = sg.value_and_grad(repeated)
    _, grad = compiled(x, np.array([0, 2, 0]))
    np.testing.assert_array_equal(grad, [[2 * 2 * 0 + 3, 2 * 2 * 1 + 3],
                                         [6, 6], [2 * 4, 2 * 5]])
    assert compiled.lower(x, np.array([0, 2, 0])).source.count("np.add.at") == 1  # the helper


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------
def test_gradient_with_respect_to_integer_labels_is_refused():
    def f(x, labels):
        return np.sum(x[np.arange(2), labels])

    with pytest.raises(sg.NotDifferentiableError, match="labels.*int64"):
        sg.grad(f, wrt="labels")(np.ones((2, 3)), np.array([0, 2]))


def test_boolean_mask_from_traced_values_suggests_where():
    def f(x):
        return np.sum(x[x > 0])  # the offending line

    with pytest.raises(sg.TracingError, match=r"np\.where") as info:
        sg.grad(f)(np.ones(3))
    assert "test_structural_conventions.py" in str(info.value)


def test_unsupported_numpy_function_points_to_the_list():
    with pytest.raises(sg.UnsupportedFunctionError, match=r"numpy\.linalg\.eig.*docs/ops\.md"):
        sg.grad(lambda x: np.sum(np.linalg.eig(x)[0]))(np.eye(2))


@pytest.mark.parametrize("f, shapes, pattern", [
    (lambda a, b: np.sum(np.concatenate([a, b], axis=1)), [(2, 3), (3, 3)],
     r"concatenate: operands with shapes \(2, 3\), \(3, 3\).*test_structural_conventions"),
    (lambda a, b: np.sum(np.einsum("ij,jk->ik", a, b)), [(2, 3), (2, 3)],
     r"einsum: .*\(2, 3\), \(2, 3\).*dimension 'j' is 3 and 2"),
    (lambda a, b: np.sum(np.tensordot(a, b, axes=([1], [1]))), [(2, 3), (2, 4)],
     r"tensordot: .*shape mismatch"),
    (lambda a, b: np.sum(a[np.array([0, 5])] * b), [(3,), (2,)],
     r"getitem: .*index 5 is out of bounds"),
    (lambda a, b: np.sum(np.max(a, axis=2) * b), [(2, 3), (2,)],
     r"max: .*axis 2 is out of bounds"),
], ids=["concatenate", "einsum", "tensordot", "gather_bounds", "max_axis"])
def test_shape_errors_name_op_shapes_and_line(f, shapes, pattern):
    def loss(a, b):
        return f(a, b)

    with pytest.raises(sg.ShapeError, match=pattern):
        sg.grad(loss)(*[np.ones(s) for s in shapes])


def test_unsupported_matrix_norm_is_named():
    with pytest.raises(sg.UnsupportedFunctionError, match="ord=3 for matrices"):
        sg.grad(lambda x: np.linalg.norm(x, 3))(np.eye(3))


# ---------------------------------------------------------------------------------------------
# docs/ops.md is generated from the tables
# ---------------------------------------------------------------------------------------------
def test_ops_doc_is_current():
    from pathlib import Path

    from symgrad.tools import catalog

    doc = Path(__file__).resolve().parent.parent / "docs" / "ops.md"
    assert doc.read_text() == catalog.render(), "regenerate it: python -m symgrad.tools.catalog > docs/ops.md"


def test_ops_doc_lists_every_function_and_op():
    from symgrad.tools import catalog
    from symgrad.trace import FUNCTIONS, UFUNC_OPS, function_name
    from symgrad.ir import OPS

    text = catalog.render()
    for function in FUNCTIONS:
        assert f"`{function_name(function)}`" in text
    for ufunc in UFUNC_OPS:
        assert f"`numpy.{ufunc.__name__}`" in text
    for name in OPS:
        assert f"`{name}`" in text or name in ("input", "const", "call", "ew")


def test_numpy_creation_functions_are_only_wrapped_on_the_tracing_thread():
    import threading

    original_eye = np.eye
    seen = {}

    def f(x):
        seen["here"] = type(np.eye(2))
        other = threading.Thread(target=lambda: seen.__setitem__("other", type(np.eye(2))))
        other.start()
        other.join()
        return np.sum(x * np.eye(2)[np.array([1, 0])])

    sg.grad(f)(np.ones((2, 2)))
    assert seen["here"] is not np.ndarray and issubclass(seen["here"], np.ndarray)
    assert seen["other"] is np.ndarray
    assert np.eye is original_eye


def test_views_read_by_one_product_are_written_inside_it():
    def layer(x, w):
        return np.sum(np.tanh(x @ w))

    x, w = np.ones((4, 3)), np.ones((3, 2))
    source = sg.value_and_grad(layer, wrt=(0, 1)).lower(x, w).source
    assert "x.T @ " in source and " @ w.T" in source
    assert not re.search(r"^\s*\w+ = \w+\.T$", source, re.MULTILINE)  # no `t7 = w.T` lines


def test_a_value_that_only_renames_another_gets_no_statement():
    def f(x):
        return np.sum(np.sin(x[:, 0]) * x[:, 1])

    x = np.random.default_rng(6).normal(size=(4, 3))
    compiled = sg.value_and_grad(f)
    _, grad = compiled(x)
    expected = np.zeros_like(x)
    expected[:, 0] = np.cos(x[:, 0]) * x[:, 1]
    expected[:, 1] = np.sin(x[:, 0])
    np.testing.assert_allclose(grad, expected, rtol=1e-15)
    assert not re.search(r"^\s*\w+ = \w+$", compiled.lower(x).source, re.MULTILINE)
