"""Names in generated code: a value the user named keeps the name (`mu`, `var`, `h`), and its
adjoint is `mu_bar`; tuple unpacking names each value, a rebound name names each value it held,
a value made in a helper takes the caller's name. Every case also checks the numbers (central
differences in float64), since a name given to the wrong value would change them."""
from __future__ import annotations

import ast
import re

import numpy as np
import pytest

import symgrad as sg
from gradcheck import central_difference


def _assigned(source: str, function: str) -> list[str]:
    """The names `function` in the generated source assigns, in order."""
    tree = ast.parse(source)
    body = next(f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == function)
    return [n.id for statement in ast.walk(body) if isinstance(statement, ast.Assign)
            for target in statement.targets for n in ast.walk(target) if isinstance(n, ast.Name)]


def _lowered(fn, args, wrt):
    """The generated source (and its main function's assignments), after checking the
    gradients against central differences."""
    f = sg.value_and_grad(fn, wrt=wrt)
    value, grads = f(*args)
    np.testing.assert_allclose(value, fn(*args), rtol=1e-12)
    for k, g in zip(wrt, grads if isinstance(wrt, tuple) else (grads,)):
        np.testing.assert_allclose(g, central_difference(fn, args, k), rtol=1e-6, atol=1e-8)
    source = f.lower(*args).source
    return source, _assigned(source, f"{fn.__name__}_value_and_grad")


def layer_norm(x, gain):
    mu = np.mean(x, axis=-1, keepdims=True)
    var = np.mean((x - mu) ** 2, axis=-1, keepdims=True)
    y = gain * (x - mu) / np.sqrt(var + 1e-5)
    return np.sum(np.tanh(y) ** 2)


def test_single_use_values_keep_their_names_and_adjoints_are_bars():
    rng = np.random.default_rng(0)
    args = (rng.standard_normal((4, 6)), rng.standard_normal(6))
    source, assigned = _lowered(layer_norm, args, (0, 1))
    # mu and var are each read by one expression only: they keep a statement of their own
    for name in ("mu", "var", "y", "mu_bar", "var_bar", "y_bar", "x_bar", "gain_bar"):
        assert name in assigned, (name, source)
    assert re.search(r"^    mu = x\.sum\(axis=1, keepdims=True\)/6$", source, re.M), source
    assert re.search(r"^    var = \w+\.sum\(axis=1, keepdims=True\)/6$", source, re.M), source


def pendulum(theta, lengths):
    l1, l2 = lengths[0], lengths[1]
    t1, t2 = theta[:, 0], theta[:, 1]
    y1 = -l1 * np.cos(t1)
    y2 = y1 - l2 * np.cos(t2)
    return np.sum(y1 ** 2 + y2 ** 2)


def test_tuple_unpacking_names_every_value():
    rng = np.random.default_rng(1)
    args = (rng.standard_normal((5, 2)), rng.uniform(0.5, 1.5, 2))
    source, assigned = _lowered(pendulum, args, (0, 1))
    for statement in ("l1 = lengths[0]", "l2 = lengths[1]", "t1 = theta[:, 0]",
                      "t2 = theta[:, 1]"):
        assert f"    {statement}\n" in source, (statement, source)
    for name in ("y1", "y2", "y1_bar", "y2_bar", "l1_bar", "l2_bar"):
        assert name in assigned, (name, source)
    # the user's t1 and t2 are names like any other: temporaries step around them
    assert assigned.count("t1") == 1 and assigned.count("t2") == 1, source


def two_layers(x, w):
    h = np.tanh(x @ w)
    h = np.tanh(h @ w)
    h = h * x
    return np.sum(h ** 2)


def test_a_rebound_name_names_each_value_it_held():
    rng = np.random.default_rng(2)
    args = (rng.standard_normal((3, 3)), rng.standard_normal((3, 3)) * 0.5)
    source, assigned = _lowered(two_layers, args, (0, 1))
    forward = [n for n in assigned if re.fullmatch(r"h\d*", n)]
    assert forward == ["h", "h1", "h2"], source
    assert re.search(r"^    h1 = np\.tanh\(h @ w\)$", source, re.M), source
    assert {"h_bar", "h1_bar"} <= set(assigned), source


def _log_softmax(z):
    m = np.max(z, axis=-1, keepdims=True)
    return z - m - np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True))


def _sigmoid_of(z):
    return 1.0 / (1.0 + np.exp(-z))


def nested(p, q, w):
    logp = _log_softmax(p @ w)
    logq = _log_softmax(q)
    z = _sigmoid_of(p @ w)
    return np.sum(np.exp(logp) * (logp - logq)) + np.sum(z * q)


def test_values_made_in_helpers_take_the_callers_names():
    rng = np.random.default_rng(3)
    args = (rng.standard_normal((4, 3)), rng.standard_normal((4, 3)),
            rng.standard_normal((3, 3)))
    source, assigned = _lowered(nested, args, (0, 1, 2))
    # the results of the helpers are named by the caller's targets
    for name in ("logp", "logq", "z"):
        assert name in assigned, (name, source)
    # the helper's parameter `z` is not given to `p @ w`: the caller's `z` is another value
    assert assigned.count("z") == 1 and not any(re.fullmatch(r"z\d+", n) for n in assigned), \
        source


def passed_once(x, w):
    return _squared_error(x @ w, x)


def _squared_error(prediction, target):
    return np.sum((prediction - target) ** 2)


def test_a_parameter_name_of_a_helper_names_the_one_value_passed_to_it():
    rng = np.random.default_rng(4)
    args = (rng.standard_normal((3, 3)), rng.standard_normal((3, 3)))
    source, assigned = _lowered(passed_once, args, (0, 1))
    assert "prediction" in assigned, source


def shadowing(x):
    value = np.sin(x)
    np_ = value * 2
    _sigmoid = 1.0 / (1.0 + np.exp(-np_))
    shadowing_value_and_grad = _sigmoid * x
    x_bar = shadowing_value_and_grad + 1
    return np.sum(x_bar * value)


def test_user_names_never_shadow_parameters_helpers_or_the_function(tmp_path, monkeypatch):
    """Names the generated module binds itself win; the user's get a suffix, and what was
    written passes the load-time grammar (it ran: the numbers above are checked)."""
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))
    x = np.linspace(-1, 1, 5)
    source, assigned = _lowered(shadowing, (x,), (0,))
    tree = ast.parse(source)
    functions = [f.name for f in tree.body if isinstance(f, ast.FunctionDef)]
    assert "shadowing_value_and_grad" in functions and "_sigmoid" not in assigned
    assert assigned.count("x_bar") == 1 and assigned[-1] == "x_bar", source
    assert len(set(assigned)) == len(assigned), source  # every statement its own name


def test_names_are_the_same_bytes_every_time(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    args = (rng.standard_normal((4, 3)), rng.standard_normal((4, 3)),
            rng.standard_normal((3, 3)))
    sources = []
    for k in range(2):
        monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / str(k)))
        sources.append(sg.value_and_grad(nested, wrt=(0, 2)).lower(*args).source)
    assert sources[0] == sources[1]


def test_names_inside_a_scan_body_come_from_its_function():
    def loss(w, xs):
        def cell(h, x):
            pre = h @ w + x
            h = np.tanh(pre)
            return h, np.sum(h)

        _, energies = sg.scan(cell, np.zeros(3), xs)
        return np.sum(energies ** 2)

    rng = np.random.default_rng(6)
    w, xs = rng.standard_normal((3, 3)) * 0.5, rng.standard_normal((4, 3))
    f = sg.value_and_grad(loss, wrt=0)
    np.testing.assert_allclose(f(w, xs)[1], central_difference(loss, (w, xs), 0), rtol=1e-6)
    source = f.lower(w, xs).source
    assert "    pre = h @ w + x\n" in source and "h1 = np.tanh(pre)" in source, source
    assert "energies = " in source, source
