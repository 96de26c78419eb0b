"""In-place updates of arrays made inside the traced function, traced as functional updates
(frontend_update.py), checked against central differences and PyTorch's in-place autograd;
mutating an argument, np.random and Python-number conversions are clear errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import symgrad as sg
from gradcheck import central_difference, torch_gradients

T64 = torch.float64


def check(f, torch_f, *args, wrt=0):
    """Value and gradient against numpy, PyTorch and central differences."""
    value, grad = sg.value_and_grad(f, wrt=wrt)(*[np.array(a) for a in args])
    np.testing.assert_allclose(value, f(*[np.array(a) for a in args]), rtol=1e-12)
    torch_value, (torch_grad,) = torch_gradients(torch_f, args, (wrt,))
    np.testing.assert_allclose(value, torch_value, rtol=1e-12)
    np.testing.assert_allclose(grad, torch_grad, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad, central_difference(f, [np.array(a) for a in args], wrt),
                               rtol=1e-6, atol=1e-8)
    return grad


X = np.array([0.5, -1.2, 2.0, 0.3])


def test_writing_traced_values_into_np_zeros():
    def f(w):
        out = np.zeros(3)
        out[0] = w.sum()
        out[1:] = w[:2] ** 2
        return np.sum(np.sin(out) * np.arange(1.0, 4.0))

    def tf(w):
        out = torch.zeros(3, dtype=T64)
        out[0] = w.sum()
        out[1:] = w[:2] ** 2
        return torch.sum(torch.sin(out) * torch.arange(1.0, 4.0, dtype=T64))

    check(f, tf, X)


def test_copy_then_augmented_assignment_and_a_mask():
    mask = np.array([True, False, False, True])

    def f(x):
        y = x.copy()
        y[0] += 1
        y[mask] = 0
        y *= x
        return np.sum(np.exp(y))

    def tf(x):
        y = x.clone()
        y[0] += 1
        y[torch.tensor(mask)] = 0
        y = y * x
        return torch.sum(torch.exp(y))

    grad = check(f, tf, X)
    assert grad[0] == 0.0 and grad[3] == 0.0  # overwritten: no gradient


def test_overwritten_elements_get_no_gradient_and_aliases_see_updates():
    def f(x):
        y = x * 1.0
        alias = y
        y[1] = 5.0
        return np.sum(alias * x)  # numpy: the alias is the same array

    grad = sg.grad(f)(X)
    expected = 2 * X
    expected[1] = 5.0
    np.testing.assert_allclose(grad, expected)


def test_repeated_constant_positions_keep_the_last_value():
    def f(x):
        y = np.zeros(3)
        y[[0, 0, 2]] = x[:3]  # numpy: y[0] = x[1]
        return np.sum(y * np.array([10.0, 20.0, 30.0]))

    np.testing.assert_allclose(sg.grad(f)(X), [0.0, 10.0, 30.0, 0.0])
    assert sg.jit(f)(X) == f(X)


def test_add_at_accumulates_repeats():
    index = np.array([0, 0, 2, 1])

    def f(x):
        acc = np.zeros(3)
        np.add.at(acc, index, x ** 2)
        np.subtract.at(acc, 1, x[0])
        return np.sum(np.sin(acc))

    def tf(x):
        acc = torch.zeros(3, dtype=T64).index_add(0, torch.tensor(index), x ** 2)
        acc = acc - torch.nn.functional.one_hot(torch.tensor(1), 3) * x[0]
        return torch.sum(torch.sin(acc))

    check(f, tf, X)


def test_add_at_with_traced_labels():
    def f(x, labels):
        totals = np.zeros((3, 2))
        np.add.at(totals, labels, x)
        return np.sum(totals ** 2)

    x = np.random.default_rng(0).normal(size=(5, 2))
    labels = np.array([0, 2, 2, 1, 2])
    grad = sg.grad(f)(x, labels)
    np.testing.assert_allclose(grad, central_difference(f, [x, labels], 0), rtol=1e-6)


def test_put_along_axis_with_sort_positions():
    def f(x, v):
        ranks = np.zeros_like(x)
        np.put_along_axis(ranks, np.argsort(x, axis=1), v, axis=1)
        return np.sum(ranks * x)

    def tf(x, v):
        order = torch.argsort(x.detach(), 1)
        return torch.sum(torch.zeros_like(x).scatter(1, order, v.expand(2, 4)) * x)

    x = np.random.default_rng(1).normal(size=(2, 4))
    v = np.array([1.0, 2.0, 3.0, 4.0])
    check(f, tf, x, v, wrt=0)
    check(f, tf, x, v, wrt=1)


def test_views_write_through_to_their_base():
    def f(x):
        y = np.ones((2, 3))
        row = y[1]
        row[1:] = x[:2]  # writes into y
        y[0][0] = x[3]  # chained indexing writes into y too
        return np.sum(y * np.arange(6.0).reshape(2, 3))

    np.testing.assert_allclose(sg.grad(f)(X), [4.0, 5.0, 0.0, 0.0])
    assert sg.jit(f)(X) == f(X)


def test_a_view_read_after_its_base_changed_is_refused():
    def f(x):
        y = np.zeros((2, 2))
        y[0] = x[:2]
        row = y[0]
        y[0, 0] = 5.0  # numpy: `row` now shows 5.0
        return np.sum(row)

    with pytest.raises(sg.TracingError, match="view .* modified in place.*test_update.py"):
        sg.grad(f)(X)


def test_loop_filling_an_array():
    def f(x):
        out = np.zeros(4)
        for i in range(4):
            out[i] = np.sum(x[:i + 1] ** 2)
        return np.sum(np.sqrt(out))

    def tf(x):
        return torch.sum(torch.sqrt(torch.cumsum(x ** 2, 0)))

    check(f, tf, X)


def test_returning_the_updated_array_and_float32():
    def f(x):
        out = np.zeros(3, dtype=np.float32)
        out[0] = x.sum()
        out[2] = x[0] * 2
        return out

    x = X.astype(np.float32)
    result = sg.jit(f)(x)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, f(x))
    jacobian = sg.jacobian(f)(x)
    assert jacobian.dtype == np.float32
    np.testing.assert_allclose(jacobian, [[1, 1, 1, 1], [0, 0, 0, 0], [2, 0, 0, 0]])


def test_hessian_through_updates_matches_torch():
    def f(x):
        y = x.copy()
        y[1:3] *= y[0]
        y[-1] = y[1] ** 2
        return np.sum(y ** 3)

    def tf(x):
        y = torch.cat([x[:1], x[1:3] * x[0], x[3:]])
        y = torch.cat([y[:3], (y[1] ** 2)[None]])
        return torch.sum(y ** 3)

    np.testing.assert_allclose(sg.hessian(f)(X), torch.autograd.functional.hessian(
        tf, torch.tensor(X)).numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------
def _argument_item(x):
    x[0] = 1.0  # the offending line
    return np.sum(x)


def _argument_augmented(x):
    x += 1.0
    return np.sum(x)


def _argument_view(x):
    row = x[0:2]
    row[0] = 3.0
    return np.sum(x)


def _argument_add_at(x):
    np.add.at(x, [0, 0], 1.0)
    return np.sum(x)


@pytest.mark.parametrize("f, line", [(_argument_item, "x[0] = 1.0"),
                                     (_argument_augmented, "x += 1.0"),
                                     (_argument_view, "row[0] = 3.0"),
                                     (_argument_add_at, "np.add.at(x, [0, 0], 1.0)")])
def test_mutating_an_argument_names_the_line_and_suggests_a_copy(f, line):
    with pytest.raises(sg.MutationError) as info:
        sg.grad(f)(X.copy())
    message = str(info.value)
    assert "test_update.py" in message and line in message and "x = x.copy()" in message


def test_assignment_at_traced_positions_is_refused():
    def f(x, i):
        y = np.zeros(3)
        y[i] = x[0]
        return np.sum(y)

    with pytest.raises(sg.TracingError, match="positions computed from the inputs"):
        sg.grad(f)(X, np.array([1]))


def test_numpy_random_inside_the_function_names_the_line():
    def f(x):
        keep = np.random.rand(4) > 0.5  # dropout drawn while tracing
        return np.sum(x * keep)

    with pytest.raises(sg.TracingError, match=r"numpy.random.rand .*test_update.py.*"
                                              r"pass the array in as an argument"):
        sg.grad(f)(X)
    with pytest.raises(sg.TracingError, match="numpy.random.default_rng"):
        sg.grad(lambda x: np.sum(x * np.random.default_rng(0).normal(size=4)))(X)
    assert np.random.rand(2).shape == (2,)  # untouched outside tracing


@pytest.mark.parametrize("f, kind", [(lambda x: math.exp(x[0]), "float()"),
                                     (lambda x: np.sum(x) * float(x[1]), "float()"),
                                     (lambda x: np.sum(x[:int(x[0])]), "int()"),
                                     (lambda x: np.sum(np.ones(x[0].astype(np.int64))),
                                      "shape")])
def test_converting_a_traced_value_to_a_python_number_says_so(f, kind):
    with pytest.raises(sg.TracedConversionError, match=r"converted to a Python number") as info:
        sg.grad(f)(X)
    assert kind in str(info.value) and "test_update.py" in str(info.value)


def test_writing_into_a_reshaped_view_is_refused_and_stale_reshapes_too():
    def write(x):
        y = x.copy()
        z = y.reshape(2, 2)
        z[0, 0] = 5.0  # numpy: y[0] becomes 5.0
        return np.sum(y)

    def stale(x):
        y = x.copy()
        t = y.T
        y[0] = 3.0  # numpy: t shows it
        return np.sum(t)

    with pytest.raises(sg.TracingError, match="reshaped or transposed view"):
        sg.grad(write)(X)
    with pytest.raises(sg.TracingError, match="read after the array was modified"):
        sg.grad(stale)(X)


def test_asarray_is_the_array_itself_and_array_a_copy():
    def via_asarray(x):
        y = np.asarray(x)
        y[0] = 1.0  # numpy: modifies the caller's x
        return np.sum(y)

    with pytest.raises(sg.MutationError):
        sg.grad(via_asarray)(X)

    def via_array(x):
        y = np.array(x)
        y[0] = 1.0
        return np.sum(y * x)

    np.testing.assert_allclose(sg.grad(via_array)(X), central_difference(via_array, [X], 0),
                               rtol=1e-6, atol=1e-8)


def test_put_along_axis_into_np_zeros():
    def ranks_weighted(x):
        y = np.zeros(4)
        np.put_along_axis(y, np.argsort(x), np.arange(4.0), axis=0)
        return np.sum(y * x)

    np.testing.assert_allclose(sg.grad(ranks_weighted)(X),
                               central_difference(ranks_weighted, [X], 0), rtol=1e-6)


def test_sort_method_sorts_in_place():
    def f(x):
        y = x.copy()
        y.sort()
        return np.sum(y * np.arange(4.0))

    np.testing.assert_allclose(sg.grad(f)(X), central_difference(f, [X], 0), rtol=1e-6)
    with pytest.raises(sg.MutationError, match="ndarray.sort"):
        sg.grad(lambda x: (x.sort(), np.sum(x))[1])(X)


def test_an_updated_np_zeros_iterates_and_converts_as_its_traced_value():
    def rows(x):
        out = np.zeros((2, 2))
        out[1] = x[:2]
        return sum(np.sum(row ** 2) for row in out)  # iteration sees the update

    np.testing.assert_allclose(sg.grad(rows)(X), [1.0, -2.4, 0.0, 0.0])
    with pytest.raises(sg.TracedConversionError):
        sg.grad(lambda x: (lambda out: float(out[0]) + np.sum(x))(_filled_zeros(x)))(X)


def _filled_zeros(x):
    out = np.zeros(1)
    out[0] = x[0]
    return out
