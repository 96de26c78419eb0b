"""scipy.special.logsumexp, softmax and log_softmax on tracers, as the ops they are.

They are Python functions (not ufuncs) whose array-API internals cannot be traced, so while a
function is traced they are replaced, where the traced code can reach them: as attributes of
scipy.special (`scipy.special.logsumexp(x)`, `sc.softmax(x)`) and as names of the traced
function's module (`from scipy.special import logsumexp`). On other threads, and for
arguments that are not traced, the replacements call scipy itself. symgrad never imports
scipy: nothing happens unless the user's code has.

logsumexp is `log(sum(exp(x)))`, which the graph rewrite shifts by the maximum (finite at
|x| = 1000), or with weights b `m + log(sum(b * exp(x - m)))`, the maximum m held constant;
softmax and log_softmax are the `softmax` / `log_softmax` ops.
"""
from __future__ import annotations

import functools
import inspect
import sys
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np

from ..ir import reduce as prim_reduce
from ..ir import primitives as prim
from ..errors import UnsupportedFunctionError
from .creation import tracing_here
from ..ir.graph import Builder, Node
from .numpy_api import _where, boxed, node_of
from .tracer import Tracer, bound_site, resolved

_lock = threading.Lock()
_active: dict[tuple[int, str], list] = {}  # (namespace id, name) -> [namespace, original, count]


def _first_tracer(*values: Any) -> Tracer | None:
    for value in values:
        value = resolved(value)
        if isinstance(value, Tracer):
            return value
    return None


def _axes(b: Builder, op: str, x: Node, axis: Any) -> tuple[int, ...]:
    return prim.normalize_axes(op, axis, x.ndim, _where(b), x.shape)


def _float(b: Builder, value: Any) -> Node:
    x = node_of(b, value)
    return x if x.is_float else prim.astype(b, x, "float64")


def logsumexp(b: Builder, a: Any, axis: Any = None, weights: Any = None, keepdims: bool = False,
              return_sign: bool = False) -> Node:
    if return_sign:
        raise UnsupportedFunctionError("scipy.special.logsumexp with return_sign=True",
                                       _where(b))
    x = _float(b, a)
    axes = _axes(b, "logsumexp", x, axis)
    if weights is None:  # the graph rewrite shifts it by the maximum (graph_rewrites.py)
        total = prim.reduce_sum(b, prim.elementwise(b, "exp", x), axes, bool(keepdims))
        return prim.elementwise(b, "log", total)
    peak = prim.stop_gradient(b, prim_reduce.reduce(b, "max", x, axes, True))
    finite = prim.elementwise(b, "less", prim.elementwise(b, "abs", peak), np.inf)
    shift = prim.elementwise(b, "where", finite, peak, 0)
    terms = prim.elementwise(b, "exp", prim.elementwise(b, "subtract", x, shift))
    terms = prim.elementwise(b, "multiply", node_of(b, weights), terms)
    total = prim.elementwise(b, "log", prim.reduce_sum(b, terms, axes, True))
    result = prim.elementwise(b, "add", shift, total)
    return result if keepdims else prim.reshape(b, result, prim.reduced_shape(x.shape, axes,
                                                                             False))


def normalised(op: str) -> Callable[..., Node]:
    def build(b: Builder, x: Any, axis: Any = None) -> Node:
        node = _float(b, x)
        return prim_reduce.normalise(b, op, node, _axes(b, op, node, axis))
    return build


TRACED = {"logsumexp": logsumexp, "softmax": normalised("softmax"),
          "log_softmax": normalised("log_softmax")}


def _replacement(name: str, original: Callable) -> Callable:
    build = TRACED[name]

    @functools.wraps(original)
    def replacement(*args: Any, **kwargs: Any) -> Any:
        tracer = _first_tracer(*args, *kwargs.values())
        if tracer is None or not tracing_here():
            return original(*args, **kwargs)
        if "b" in kwargs:
            kwargs["weights"] = kwargs.pop("b")
        with bound_site(tracer.builder):  # not on_nodes: the builds take scipy's arguments
            return boxed(tracer.builder, build(tracer.builder, *args, **kwargs))
    replacement.__wrapped_original__ = original
    return replacement


def _swap(namespace: Any, name: str, original: Callable) -> None:
    key = (id(namespace), name)
    entry = _active.get(key)
    if entry is None:
        entry = _active[key] = [namespace, original, 0]
        replacement = _replacement(name, original)
        if isinstance(namespace, dict):
            namespace[name] = replacement
        else:
            setattr(namespace, name, replacement)
    entry[2] += 1


def _restore_all(keys: list[tuple[int, str]]) -> None:
    for key in keys:
        entry = _active[key]
        entry[2] -= 1
        if entry[2] == 0:
            namespace, original, _ = _active.pop(key)
            if isinstance(namespace, dict):
                namespace[key[1]] = original
            else:
                setattr(namespace, key[1], original)


@contextmanager
def traced_scipy_special(fn: Callable) -> Iterator[None]:
    """Replace scipy.special's logsumexp/softmax/log_softmax while `fn` is traced (inside
    frontend_creation.tracing_numpy, which tells the replacements that this thread traces)."""
    special = sys.modules.get("scipy.special")
    if special is None:
        yield
        return
    keys: list[tuple[int, str]] = []
    with _lock:
        originals = {}
        for name in TRACED:
            current = getattr(special, name)
            originals[name] = getattr(current, "__wrapped_original__", current)
        user_globals = getattr(inspect.unwrap(fn), "__globals__", {})
        for name in TRACED:
            _swap(special, name, originals[name])
            keys.append((id(special), name))
        for name, value in list(user_globals.items()):
            for scipy_name, original in originals.items():
                if value is original or getattr(value, "__wrapped_original__", None) is original:
                    _swap(user_globals, name, original)
                    keys.append((id(user_globals), name))
    try:
        yield
    finally:
        with _lock:
            _restore_all(keys)
