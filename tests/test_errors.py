"""Bad input gets a clear error that names the problem and the user's line."""
from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg


def test_unsupported_numpy_function_is_named():
    def f(x):
        return np.sum(np.linalg.eig(x.reshape(2, 2))[0].real)

    with pytest.raises(sg.UnsupportedFunctionError, match="numpy.linalg.eig"):
        sg.grad(f)(np.ones(4))


def test_unsupported_ufunc_is_named():
    def f(x):
        return np.sum(np.bitwise_and(x.astype(np.int64), 1) * x)

    with pytest.raises(sg.UnsupportedFunctionError, match="bitwise_and"):
        sg.grad(f)(np.ones(4))


def test_if_on_traced_value_names_line_and_suggests_where():
    def f(x):
        if np.sum(x) > 0:  # the offending line
            return np.sum(x)
        return -np.sum(x)

    with pytest.raises(sg.TracedBoolError) as info:
        sg.grad(f)(np.ones(3))
    message = str(info.value)
    assert "np.where" in message
    assert "test_errors.py" in message and "if np.sum(x) > 0" in message


def test_grad_of_non_scalar_output():
    with pytest.raises(sg.NonScalarOutputError, match=r"\[3\]"):
        sg.grad(lambda x: x * 2)(np.ones(3))


@pytest.mark.parametrize("wrt", ["q", 5, ("x", "x")])
def test_bad_wrt(wrt):
    def f(x, y):
        return np.sum(x * y)

    with pytest.raises(sg.ArgumentError):
        sg.grad(f, wrt=wrt)(np.ones(2), np.ones(2))


def test_wrt_names_parameter_in_message():
    def f(x, y):
        return np.sum(x * y)

    with pytest.raises(sg.ArgumentError, match=r"wrt='q' names no parameter of f\(x, y\)"):
        sg.grad(f, wrt="q")


def test_shape_mismatch_names_op_shapes_and_line():
    def f(a, b):
        return np.sum(a @ b)

    with pytest.raises(sg.ShapeError) as info:
        sg.grad(f)(np.ones((2, 3)), np.ones((4, 2)))
    message = str(info.value)
    assert "matmul" in message and "(2, 3)" in message and "(4, 2)" in message
    assert "test_errors.py" in message


def test_broadcast_mismatch():
    with pytest.raises(sg.ShapeError, match="add.*broadcast"):
        sg.grad(lambda a, b: np.sum(a + b))(np.ones(3), np.ones(4))


def test_gradient_of_integer_argument_is_refused():
    def f(x, labels):
        return np.sum(x * labels)

    with pytest.raises(sg.NotDifferentiableError, match="labels"):
        sg.grad(f, wrt="labels")(np.ones(3), np.arange(3))
    # ...but integer arguments are fine as non-differentiable inputs
    np.testing.assert_array_equal(sg.grad(f)(np.ones(3), np.arange(3)), np.arange(3.0))


def test_disconnected_gradient_is_explicit_zeros():
    g = sg.grad(lambda x, y: np.sum(x * 2), wrt="y")(np.ones(3), np.ones((2, 2)))
    np.testing.assert_array_equal(g, np.zeros((2, 2)))
    assert g.flags.writeable


def test_gradients_never_alias_inputs():
    y = np.arange(3.0)
    g = sg.grad(lambda x, y: np.sum(x * y))(np.ones(3), y)
    np.testing.assert_array_equal(g, y)
    g[0] = 100.0
    assert y[0] == 0.0


def test_default_arguments_are_used_like_passed_ones():
    def f(x, scale=2.0, bias=np.ones(3)):
        return np.sum(x * scale + bias)

    np.testing.assert_array_equal(sg.grad(f)(np.ones(3)), [2.0, 2.0, 2.0])
    value, g = sg.value_and_grad(f)(np.ones(3), scale=3.0)
    assert value == 12.0
    np.testing.assert_array_equal(g, [3.0, 3.0, 3.0])


@pytest.mark.parametrize("write, function", [
    (lambda x: x << 2, "numpy.left_shift (the << operator)"),
    (lambda x: 3 >> x, "numpy.right_shift (the >> operator)"),
])
def test_an_operator_numpy_has_and_symgrad_lacks_names_itself_and_the_line(write, function):
    x = np.array([1.0, 2.5])
    with pytest.raises(sg.UnsupportedFunctionError) as caught:
        sg.jit(write)(x)
    message = str(caught.value)
    assert function in message and "test_errors.py:" in message
