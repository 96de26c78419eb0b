"""Compilation stays linear in the graph: long chains compile under Python's default recursion
limit, and shared subexpressions nested deep are never written out as trees (2^30 terms)."""
from __future__ import annotations

import sys

import numpy as np
import sympy as sp

import symgrad as sg
from symgrad.symbolic import symbols_in, tree_ops


def nested(x):
    e = x
    for _ in range(30):
        e = np.sin(e) * np.cos(e)
    return np.sum(e)


def chain(x):
    for i in range(1500):
        x = np.sin(x) if i % 3 == 0 else (x * 1.0001 if i % 3 == 1 else x + 0.1)
    return np.sum(x)


def test_deeply_nested_sharing_compiles_and_stays_small():
    x = np.linspace(0.1, 1.0, 50)
    value, grad = sg.value_and_grad(nested)(x)
    v, d = x.copy(), np.ones_like(x)  # forward-mode reference
    for _ in range(30):
        s, c = np.sin(v), np.cos(v)
        v, d = s * c, (c * c - s * s) * d
    np.testing.assert_allclose(value, v.sum(), rtol=1e-12)
    np.testing.assert_allclose(grad, d, rtol=1e-9, atol=1e-300)
    forward = sg.jit(nested).lower(x).source
    gradient = sg.value_and_grad(nested).lower(x).source
    assert len(gradient) < 20 * len(forward)


def test_long_chain_compiles_under_the_default_recursion_limit():
    assert sys.getrecursionlimit() <= 1000 + 100  # nothing raised it for us
    x = np.linspace(0.1, 1.0, 20)
    value, grad = sg.value_and_grad(chain)(x)
    v, d = x.copy(), np.ones_like(x)
    for i in range(1500):
        if i % 3 == 0:
            v, d = np.sin(v), np.cos(v) * d
        elif i % 3 == 1:
            v, d = v * 1.0001, d * 1.0001
        else:
            v = v + 0.1
    np.testing.assert_allclose(value, v.sum(), rtol=1e-10)
    np.testing.assert_allclose(grad, d, rtol=1e-8, atol=1e-300)


def test_dag_walks_agree_with_sympy_on_trees():
    a, b, c = sp.symbols("a b c", real=True)
    for expr in (sp.sin(a) * sp.cos(b) + c**2 - 3 * a, sp.exp(-sp.Abs(a)) / (1 + b), a):
        assert symbols_in(expr) == expr.free_symbols
        assert tree_ops(expr) <= sp.count_ops(expr) + 2  # the same size measure, roughly
    e = a
    for _ in range(40):  # 2^40 leaves as a tree
        e = sp.sin(e, evaluate=False) * sp.cos(e, evaluate=False)
    assert symbols_in(e) == {a} and tree_ops(e) > 2**40
