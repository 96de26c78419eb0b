"""Checks for the composition campaign: each transform and composition of a random program
(tests/compose_programs.py) on symgrad against torch.func in float64.

`CHECKS[name](case)` returns `(ours, theirs)`: symgrad's result (arrays in a pytree) and
torch.func's (tensors in the same structure). `run_check` compares them leaf by leaf
(rtol 1e-9, structure and shapes exact), and checks that every result leaf is a writeable
ndarray sharing memory with no input and no other result, and that the inputs are unchanged.
`run_float32` runs the transforms on float32 inputs: every result leaf must stay float32 and
agree with the float64 oracle to float32 accuracy.
"""
from __future__ import annotations

import dataclasses
from collections import namedtuple
from typing import Any, Callable

import numpy as np
import torch
import torch.func as tf

import symgrad as sg
from compose_programs import ATOL, RTOL, Program

Pair = namedtuple("Pair", "first second")


class Box:
    """A user class made a pytree node with sg.register_pytree_node."""

    def __init__(self, inner: Any, scale: Any):
        self.inner, self.scale = inner, scale


@dataclasses.dataclass
class Layer:
    w: Any


sg.register_pytree_node(Box, lambda b: ((b.inner, b.scale), None),
                        lambda _, children: Box(*children))


@dataclasses.dataclass
class Case:
    program: Program
    inputs: list[np.ndarray]
    rng: np.random.Generator
    dtype: Any = np.float64

    def __post_init__(self) -> None:
        fns = self.program.functions(self.dtype)
        self.f, self.g, self.ft, self.gt = fns["f"], fns["g"], fns["ft"], fns["gt"]
        self.g2, self.g2t = fns["g2"], fns["g2t"]
        self.A = tuple(np.asarray(x, self.dtype) for x in self.inputs)
        self.AT = tuple(torch.tensor(np.asarray(x, np.float64)) for x in self.inputs)
        self.T = tuple(self.rng.normal(size=x.shape).astype(self.dtype) for x in self.A)
        self.TT = tuple(torch.tensor(t.astype(np.float64)) for t in self.T)
        self.all = tuple(range(len(self.A)))
        out = self.g(*(np.asarray(x, np.float64) for x in self.inputs))
        self.U = [self.rng.normal(size=np.shape(out)).astype(self.dtype) for _ in range(2)]
        self.UT = [torch.tensor(u.astype(np.float64)) for u in self.U]


def _t(x: Any) -> Any:
    return torch.tensor(np.asarray(x, np.float64))


# -- single transforms ---------------------------------------------------------------------
def c_grad(c: Case) -> tuple:
    return sg.grad(c.f, argnums=c.all)(*c.A), tf.grad(c.ft, argnums=c.all)(*c.AT)


def c_value_and_grad(c: Case) -> tuple:
    g, v = tf.grad_and_value(c.ft, argnums=c.all)(*c.AT)
    return sg.value_and_grad(c.f, argnums=c.all)(*c.A), (v, g)


def c_vjp(c: Case) -> tuple:
    out, pullback = sg.vjp(c.g, *c.A)
    ours = (out, pullback(c.U[0]), pullback(c.U[1]), pullback(c.U[0]))
    tout, tpull = tf.vjp(c.gt, *c.AT)
    return ours, (tout, tpull(c.UT[0]), tpull(c.UT[1]), tpull(c.UT[0]))


def c_jvp(c: Case) -> tuple:
    return sg.jvp(c.g, c.A, c.T), tf.jvp(c.gt, c.AT, c.TT)


def c_hvp(c: Case) -> tuple:
    ours = sg.hvp(c.f, argnums=c.all)(*c.A, c.T)
    return ours, tf.jvp(tf.grad(c.ft, argnums=c.all), c.AT, c.TT)[1]


def _jac(ours: Callable, theirs: Callable, which: str) -> Callable:
    def check(c: Case) -> tuple:
        fn, ft = (c.g, c.gt) if which == "g" else (c.f, c.ft)
        return ours(fn, argnums=c.all)(*c.A), theirs(ft, argnums=c.all)(*c.AT)
    return check


# -- compositions of two -------------------------------------------------------------------
def c_jacfwd_jacrev(c: Case) -> tuple:
    return sg.jacfwd(sg.jacrev(c.f))(*c.A), tf.hessian(c.ft)(*c.AT)


def c_hessian_jit(c: Case) -> tuple:
    return sg.hessian(sg.jit(c.f))(*c.A), tf.hessian(c.ft)(*c.AT)


def c_jacrev_jacfwd_g(c: Case) -> tuple:
    return sg.jacrev(sg.jacfwd(c.g))(*c.A), tf.jacrev(tf.jacfwd(c.gt))(*c.AT)


def c_vjp_grad(c: Case) -> tuple:
    out, pullback = sg.vjp(sg.grad(c.f), *c.A)
    tout, tpull = tf.vjp(tf.grad(c.ft), *c.AT)
    return (out, pullback(c.T[0]), pullback(c.T[0])), (tout, tpull(c.TT[0]), tpull(c.TT[0]))


def c_jvp_grad(c: Case) -> tuple:
    return sg.jvp(sg.grad(c.f), c.A, c.T), tf.jvp(tf.grad(c.ft), c.AT, c.TT)


def c_grad_calls_grad(c: Case) -> tuple:
    def h(*a):
        return np.sum(np.sin(sg.grad(c.f)(*a)))

    def ht(*a):
        return torch.sum(torch.sin(tf.grad(c.ft)(*a)))
    return sg.grad(h, argnums=c.all)(*c.A), tf.grad(ht, argnums=c.all)(*c.AT)


def c_grad_calls_vjp(c: Case) -> tuple:
    u, ut = c.U[0], c.UT[0]

    def h(*a):
        return sum(np.sum(np.sin(r)) for r in sg.vjp(c.g, *a)[1](u))

    def ht(*a):
        return sum(torch.sum(torch.sin(r)) for r in tf.vjp(c.gt, *a)[1](ut))
    return sg.grad(h, argnums=c.all)(*c.A), tf.grad(ht, argnums=c.all)(*c.AT)


def c_grad_calls_jvp(c: Case) -> tuple:
    def h(*a):
        return np.sum(np.sin(sg.jvp(c.g, a, c.T)[1]))

    def ht(*a):
        return torch.sum(torch.sin(tf.jvp(c.gt, a, c.TT)[1]))
    return sg.grad(h, argnums=c.all)(*c.A), tf.grad(ht, argnums=c.all)(*c.AT)


def c_grad_closure(c: Case) -> tuple:
    """The inner function closes over the outer traced arguments and a value made from them."""
    def h(*a):
        s = np.sum(np.cos(a[0]))
        return np.sum(sg.grad(lambda z: c.f(z, *a[1:]) * s)(a[0]) * a[0])

    def ht(*a):
        s = torch.sum(torch.cos(a[0]))
        return torch.sum(tf.grad(lambda z: c.ft(z, *a[1:]) * s)(a[0]) * a[0])
    return sg.grad(h, argnums=c.all)(*c.A), tf.grad(ht, argnums=c.all)(*c.AT)


def c_stop_gradient(c: Case) -> tuple:
    fns = c.program.functions(c.dtype, stop=True)
    f, ft = fns["f"], fns["ft"]
    out, pullback = sg.vjp(sg.grad(f), *c.A)
    tout, tpull = tf.vjp(tf.grad(ft), *c.AT)
    ours = (sg.grad(f, argnums=c.all)(*c.A), sg.hessian(f)(*c.A), pullback(c.T[0]))
    return ours, (tf.grad(ft, argnums=c.all)(*c.AT), tf.hessian(ft)(*c.AT), tpull(c.TT[0]))


def c_argnums_reversed(c: Case) -> tuple:
    order = tuple(reversed(c.all))
    return sg.grad(c.f, argnums=order)(*c.A), tf.grad(c.ft, argnums=order)(*c.AT)


# -- compositions of three -----------------------------------------------------------------
def _line(f: Callable, A: tuple, D: tuple) -> Callable:
    return lambda t: f(*(a + t * d for a, d in zip(A, D)))


def c_grad3_line(c: Case) -> tuple:
    """grad(grad(grad(s))) of s(t) = f(A + t D): a 0-d argument broadcast into every input."""
    t0 = np.asarray(0.3, c.dtype)
    s, st = _line(c.f, c.A, c.T), _line(c.ft, c.AT, c.TT)
    return sg.grad(sg.grad(sg.grad(s)))(t0), tf.grad(tf.grad(tf.grad(st)))(_t(0.3))


def c_jacfwd_jacrev_grad(c: Case) -> tuple:
    return (sg.jacfwd(sg.jacrev(sg.grad(c.f)))(*c.A),
            tf.jacfwd(tf.jacrev(tf.grad(c.ft)))(*c.AT))


def c_hvp_of_jit_inside_grad(c: Case) -> tuple:
    """grad of a function that calls hvp of jit(f)."""
    def h(*a):
        return np.sum(np.cos(sg.hvp(sg.jit(c.f))(*a, c.T[0])))

    def ht(*a):
        return torch.sum(torch.cos(tf.jvp(tf.grad(c.ft), a, (c.TT[0],) + tuple(
            torch.zeros_like(x) for x in a[1:]))[1]))
    return sg.grad(h, argnums=c.all)(*c.A), tf.grad(ht, argnums=c.all)(*c.AT)


# -- pytrees ---------------------------------------------------------------------------------
def _tree_params(A: tuple) -> Any:
    """The inputs as one nested parameter: dict of list, namedtuple, dataclass."""
    rest = list(A[1:])
    return {"w": A[0], "layers": [Pair(rest[0], Box(rest[0] * 0 + 1, rest[1]))
                                  if len(rest) == 2 else Layer(rest[0])] if rest else [],
            "b": {"k-1 x": A[0] * 0 + 0.5}}


def _untree(p: Any) -> tuple:
    x0 = p["w"] + 0 * p["b"]["k-1 x"]
    layers = p["layers"]
    if not layers:
        return (x0,)
    layer = layers[0]
    if isinstance(layer, Pair):
        return (x0, layer.first * layer.second.inner, layer.second.scale)
    return (x0, layer.w)


def _expected_tree(grads: tuple, A: tuple) -> Any:
    """torch's flat gradients placed in _tree_params' structure (the constants' gradients known:
    d/d inner = grad_1 * x1, d/d b = 0)."""
    g = [x.detach().numpy() for x in grads]
    rest = []
    if len(A) == 3:
        rest = [Pair(g[1], Box(g[1] * A[1], g[2]))]
    elif len(A) == 2:
        rest = [Layer(g[1])]
    return {"w": g[0], "layers": rest, "b": {"k-1 x": np.zeros_like(A[0])}}


def c_pytree_grad(c: Case) -> tuple:
    p = _tree_params(c.A)
    ours = sg.grad(lambda p: c.f(*_untree(p)))(p)
    return ours, _expected_tree(tf.grad(c.ft, argnums=c.all)(*c.AT), c.A)


def c_has_aux(c: Case) -> tuple:
    def fa(*a):
        return c.f(*a), {"g": c.g(*a), "x0": a[0] * 2.0}

    aux_t = {"g": c.gt(*c.AT), "x0": c.AT[0] * 2.0}
    grads_t = tf.grad(c.ft, argnums=c.all)(*c.AT)
    value_t = c.ft(*c.AT)
    ga = sg.grad(fa, argnums=c.all, has_aux=True)(*c.A)
    va = sg.value_and_grad(fa, argnums=c.all, has_aux=True)(*c.A)
    out, pullback, aux = sg.vjp(fa, *c.A, has_aux=True)
    vj = (out, pullback(np.ones((), c.dtype)), aux)
    jr = sg.jacrev(fa, argnums=c.all, has_aux=True)(*c.A)
    ours = (ga, va, vj, jr)
    theirs = ((grads_t, aux_t), ((value_t, aux_t), grads_t), (value_t, grads_t, aux_t),
              (grads_t, aux_t))
    return ours, theirs


def c_two_outputs(c: Case) -> tuple:
    """A function returning (array, {'s': array}): vjp with a pytree cotangent (pullback
    called twice), jvp, jacrev and jacfwd nest like the output."""
    out, pullback = sg.vjp(c.g2, *c.A)
    tout, tpull = tf.vjp(c.g2t, *c.AT)
    s = np.asarray(out[1]["s"])
    u = (c.U[0], {"s": np.cos(s)})
    ut = (c.UT[0], {"s": torch.cos(torch.tensor(s.astype(np.float64)))})
    ours = (out, pullback(u), pullback(u), sg.jvp(c.g2, c.A, c.T),
            sg.jacrev(c.g2, argnums=c.all)(*c.A), sg.jacfwd(c.g2, argnums=c.all)(*c.A))
    theirs = (tout, tpull(ut), tpull(ut), tf.jvp(c.g2t, c.AT, c.TT),
              tf.jacrev(c.g2t, argnums=c.all)(*c.AT), tf.jacfwd(c.g2t, argnums=c.all)(*c.AT))
    return ours, theirs


def c_layouts_and_recall(c: Case) -> tuple:
    """Inputs that are non-contiguous, Fortran-ordered or read-only, then the same compiled
    functions called again on new values (the per-signature fast path)."""
    def odd(x: np.ndarray, k: int) -> np.ndarray:
        if k % 3 == 0:
            wide = np.zeros(x.shape + (2,), x.dtype)
            wide[..., 0] = x
            return wide[..., 0]  # strided
        if k % 3 == 1:
            return np.asfortranarray(x) if x.ndim else x.copy()  # (asfortranarray makes 0-d 1-d)
        y = x.copy()
        y.flags.writeable = False
        return y
    grad, hess = sg.grad(c.f, argnums=c.all), sg.hessian(c.f)
    A2 = tuple(odd(x, k) for k, x in enumerate(c.A))
    B = tuple(np.asarray(x * 0.5 + 0.1, c.dtype) for x in c.A)
    out, pullback = sg.vjp(c.g, *A2)
    ours = (grad(*A2), hess(*A2), pullback(c.U[0]), grad(*B), hess(*B))
    BT = tuple(_t(x) for x in B)
    gt, ht = tf.grad(c.ft, argnums=c.all), tf.hessian(c.ft)
    theirs = (gt(*c.AT), ht(*c.AT), tf.vjp(c.gt, *c.AT)[1](c.UT[0]), gt(*BT), ht(*BT))
    return ours, theirs


def c_python_floats(c: Case) -> tuple:
    """0-d inputs passed as Python floats (traced, weakly typed): grad, hessian, jvp."""
    P = tuple(float(x) if x.shape == () else x for x in c.A)
    T = tuple(float(t) if t.shape == () else t for t in c.T)
    ours = (sg.grad(c.f, argnums=c.all)(*P), sg.jvp(c.g, P, T), sg.hessian(c.f)(*P))
    theirs = (tf.grad(c.ft, argnums=c.all)(*c.AT), tf.jvp(c.gt, c.AT, c.TT),
              tf.hessian(c.ft)(*c.AT))
    return ours, theirs


CHECKS: dict[str, Callable[[Case], tuple]] = {
    "grad": c_grad, "value_and_grad": c_value_and_grad, "vjp": c_vjp, "jvp": c_jvp,
    "hvp": c_hvp, "jacfwd": _jac(sg.jacfwd, tf.jacfwd, "g"),
    "jacrev": _jac(sg.jacrev, tf.jacrev, "g"), "jacobian": _jac(sg.jacobian, tf.jacrev, "g"),
    "hessian": _jac(sg.hessian, tf.hessian, "f"),
    "jacfwd_jacrev": c_jacfwd_jacrev, "hessian_jit": c_hessian_jit,
    "jacrev_jacfwd_g": c_jacrev_jacfwd_g, "vjp_grad": c_vjp_grad, "jvp_grad": c_jvp_grad,
    "grad_calls_grad": c_grad_calls_grad, "grad_calls_vjp": c_grad_calls_vjp,
    "grad_calls_jvp": c_grad_calls_jvp, "grad_closure": c_grad_closure,
    "stop_gradient": c_stop_gradient, "argnums_reversed": c_argnums_reversed,
    "grad3_line": c_grad3_line, "jacfwd_jacrev_grad": c_jacfwd_jacrev_grad,
    "hvp_jit_in_grad": c_hvp_of_jit_inside_grad,
    "pytree_grad": c_pytree_grad, "has_aux": c_has_aux, "two_outputs": c_two_outputs,
    "layouts_and_recall": c_layouts_and_recall, "python_floats": c_python_floats,
}
# Checks whose cost grows with size(x0)**2 or more: run on small first inputs only.
SMALL_ONLY = {"jacfwd_jacrev_grad": 4, "jacrev_jacfwd_g": 6}


# -- comparison ------------------------------------------------------------------------------
def leaves_of(tree: Any, path: str = "") -> list[tuple[str, Any]]:
    """(path, leaf) pairs in container order; containers: tuple, list, dict, dataclass."""
    if isinstance(tree, dict):
        return [x for k in sorted(tree, key=str) for x in leaves_of(tree[k], f"{path}[{k!r}]")]
    if isinstance(tree, (tuple, list)):
        return [x for i, v in enumerate(tree) for x in leaves_of(v, f"{path}[{i}]")]
    if isinstance(tree, Box):
        return leaves_of(tree.inner, path + ".inner") + leaves_of(tree.scale, path + ".scale")
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        return [x for fl in dataclasses.fields(tree)
                for x in leaves_of(getattr(tree, fl.name), f"{path}.{fl.name}")]
    return [(path, tree)]


def _kind(tree: Any) -> Any:
    """The container structure of a tree, leaves dropped (tensor and array alike)."""
    if isinstance(tree, dict):
        return ("dict", tuple(sorted((str(k), _kind(v)) for k, v in tree.items())))
    if isinstance(tree, (tuple, list)):
        return (type(tree).__name__, tuple(_kind(v) for v in tree))
    if isinstance(tree, Box):
        return ("Box", (_kind(tree.inner), _kind(tree.scale)))
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        return (type(tree).__name__, tuple(_kind(getattr(tree, f.name))
                                           for f in dataclasses.fields(tree)))
    return "leaf"


def compare(ours: Any, theirs: Any, rtol: float = RTOL, atol: float = ATOL,
            dtype: Any = None) -> None:
    assert _kind(ours) == _kind(theirs), f"structure {_kind(ours)} != torch's {_kind(theirs)}"
    for (path, a), (_, b) in zip(leaves_of(ours), leaves_of(theirs)):
        b = b.detach().numpy(force=True) if isinstance(b, torch.Tensor) else np.asarray(b)
        # a 0-d result may be a numpy scalar (as np.sin(np.array(0.5)) is): immutable, owned
        assert isinstance(a, np.ndarray) or (isinstance(a, np.generic) and a.shape == ()), \
            f"{path}: a {type(a).__name__}, not an ndarray"
        assert a.shape == b.shape, f"{path}: shape {a.shape} != torch's {b.shape}"
        if dtype is not None:
            assert a.dtype == dtype, f"{path}: dtype {a.dtype}, inputs {np.dtype(dtype)}"
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=path)


def check_memory(result: Any, inputs: tuple) -> None:
    arrays = [(p, a) for p, a in leaves_of(result) if isinstance(a, np.ndarray)]
    for path, a in arrays:
        assert a.flags.writeable, f"{path}: result is read-only"
        for i, x in enumerate(inputs):
            assert not np.shares_memory(a, x), f"{path}: result shares memory with input {i}"
    for k, (path, a) in enumerate(arrays):
        for other, b in arrays[k + 1:]:
            assert a.size == 0 or not np.shares_memory(a, b), \
                f"results {path} and {other} share memory"


def run_check(name: str, case: Case) -> None:
    saved = [x.copy() for x in case.A]
    ours, theirs = CHECKS[name](case)
    compare(ours, theirs)
    check_memory(ours, case.A)
    for i, (x, s) in enumerate(zip(case.A, saved)):
        assert np.array_equal(x, s), f"input {i} was modified"


FLOAT32_CHECKS = ("grad", "value_and_grad", "vjp", "jvp", "hvp", "jacfwd", "jacrev",
                  "hessian", "vjp_grad", "grad_calls_grad", "grad3_line")


def run_float32(name: str, case: Case) -> None:
    """Every result leaf float32, and equal to the float64 oracle to float32 accuracy."""
    assert case.dtype == np.float32
    ours, theirs = CHECKS[name](case)
    scale = max([1.0] + [float(np.max(np.abs(b.detach().numpy()), initial=0))
                         for _, b in leaves_of(theirs) if isinstance(b, torch.Tensor)])
    compare(ours, theirs, rtol=2e-3, atol=2e-4 * scale, dtype=np.float32)
    check_memory(ours, case.A)
