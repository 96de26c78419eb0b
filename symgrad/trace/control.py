"""Data-dependent control flow that traces: `while_loop`, `cond`, `switch`, and `checkpoint`.

`while_loop` runs while a traced predicate holds: a `while` node (forward evaluation and
forward mode; reverse mode is refused, as in JAX, since the trip count is known only when it
runs). `cond`/`switch` evaluate only the branch their traced index selects: a `cond` node
whose pullback is a `cond` of the branches' pullbacks. `checkpoint(f)` is a one-step scan
over `f`: reverse mode then saves only `f`'s inputs and recomputes `f` in the backward pass.
Called on concrete values (outside a trace, or with a Python predicate) they simply run.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import numpy as np

from ..ir import primitives as prim
from ..errors import ArgumentError, TracingError
from .loops import (LoopBody, _check_carry, _flatten, _leaf_names, _node, _param_names,
                    _scan, _union, _unflatten, active_builder, definition_site, function_name,
                    loop_outputs, name_results, trace_body, with_consts)
from .tracer import ArgSpec, Tracer, user_site


def _leaves_split(result: Any) -> tuple[list, Any]:
    leaves, tree = _flatten(result)
    return leaves, tree


def while_loop(cond_fun: Callable, body_fun: Callable, init_val: Any) -> Any:
    """`val = body_fun(val)` while `cond_fun(val)` (JAX's signature). Traced, it is a `while`
    loop in the generated code; forward mode (sg.jvp, sg.jacfwd) differentiates through it,
    reverse mode is refused with an error naming the line (use fori_loop or scan)."""
    builder = active_builder()
    if builder is None:
        val = init_val
        while bool(cond_fun(val)):
            val = body_fun(val)
        return val
    site = builder.site or user_site()
    c_leaves, c_tree = _flatten(init_val)
    c_nodes = [_node(builder, c) for c in c_leaves]
    nc = len(c_nodes)
    names = _leaf_names(_param_names(body_fun, 1, ("val",))[0], c_tree, nc)
    specs = [ArgSpec(s, c.shape, c.dtype) for s, c in zip(names, c_nodes)]

    def unflat(fn: Callable) -> Callable:
        return lambda *leaves: fn(_unflatten(c_tree, leaves))

    test = trace_body(unflat(cond_fun), specs, _leaves_split)
    outs = test.graph.outputs
    if len(outs) != 1 or outs[0].shape != () or outs[0].dtype != "bool":
        got = ", ".join(f"{o.dtype}{list(o.shape)}" for o in outs)
        raise TracingError(f"while_loop: cond_fun {function_name(cond_fun)} "
                           f"({definition_site(cond_fun)}) must return one boolean scalar, "
                           f"got {got or 'nothing'}")
    step = trace_body(unflat(body_fun), specs, _leaves_split)
    _check_carry("while_loop", body_fun, c_tree, step.outputs_tree, c_nodes, step.graph.outputs)
    consts = _union(test.consts, step.consts)
    cond_body = LoopBody.make(with_consts(test.graph, test.consts, consts, nc),
                              (0, nc, 0, len(consts)), function_name(cond_fun, "cond_fun"),
                              definition_site(cond_fun))
    body = LoopBody.make(with_consts(step.graph, step.consts, consts, nc),
                         (0, nc, 0, len(consts)), function_name(body_fun),
                         definition_site(body_fun))
    node = builder.node("while", c_nodes + consts, {"cond": cond_body, "body": body}, (),
                        "tuple", site)
    results = loop_outputs(builder, node, [(c.shape, c.dtype) for c in c_nodes])
    return name_results(_unflatten(c_tree, results))


def cond(pred: Any, true_fun: Callable, false_fun: Callable, *operands: Any) -> Any:
    """`true_fun(*operands)` if `pred` else `false_fun(*operands)`, evaluating (and
    differentiating) only the chosen branch (JAX's signature). Both branches must return the
    same structure, shapes and dtypes. Under `sg.vmap` with a predicate that differs between
    examples, both branches run on the whole batch and each example's result is selected
    (as in JAX; autodiff/loop_batching.py)."""
    if not isinstance(pred, Tracer):
        return (true_fun if bool(pred) else false_fun)(*operands)
    return _switch(pred, [false_fun, true_fun], *operands,
                   defaults=("false_branch", "true_branch"))


def switch(index: Any, branches: Sequence[Callable], *operands: Any) -> Any:
    """`branches[index](*operands)`, the index clamped to the branches (JAX's signature);
    only the selected branch runs (under `sg.vmap` with an index that differs between
    examples, every branch runs on the whole batch and each example's result is selected)."""
    return _switch(index, branches, *operands,
                   defaults=tuple(f"branch{k}" for k in range(len(branches))))


def _switch(index: Any, branches: Sequence[Callable], *operands: Any,
            defaults: Sequence[str]) -> Any:
    branches = list(branches)
    if not branches:
        raise ArgumentError("switch needs at least one branch")
    if not isinstance(index, Tracer):
        return branches[int(np.clip(int(index), 0, len(branches) - 1))](*operands)
    builder = index.builder
    site = builder.site or user_site()
    if index.node.shape != ():
        raise ArgumentError(f"switch/cond: the index (or predicate) must be a scalar, got shape "
                            f"{index.node.shape} (at {site})")
    o_leaves, o_tree = _flatten(tuple(operands))
    o_nodes = [_node(builder, o) for o in o_leaves]
    no = len(o_nodes)
    names = _param_names(branches[0], no, [f"operand_{k}" for k in range(no)])
    names = names if len(o_tree.children) == no and len(names) == no else [
        f"operand_{k}" for k in range(no)]
    specs = [ArgSpec(s, o.shape, o.dtype) for s, o in zip(names, o_nodes)]
    traced = [trace_body(lambda *leaves, fn=fn: fn(*_unflatten(o_tree, leaves)), specs,
                         _leaves_split) for fn in branches]
    first = traced[0].graph.outputs
    for fn, t in zip(branches, traced):
        if t.outputs_tree != traced[0].outputs_tree or _avals(t.graph.outputs) != _avals(first):
            raise TracingError(
                f"cond/switch: the branches return different structures, shapes or dtypes "
                f"({function_name(branches[0])}: {_shown(first)}, {function_name(fn)}: "
                f"{_shown(t.graph.outputs)}) at {site}")
    consts = _union(*(t.consts for t in traced))
    bodies = tuple(LoopBody.make(with_consts(t.graph, t.consts, consts, no),
                                 (0, no + len(consts), 0, 0), function_name(fn, default),
                                 definition_site(fn))
                   for fn, t, default in zip(branches, traced, defaults))
    choice = index.node
    if choice.dtype != "int64":
        choice = prim.astype(builder, choice, "int64")
    choice = prim.elementwise(builder, "clip", choice, 0, len(branches) - 1)
    node = builder.node("cond", [choice] + o_nodes + consts, {"branches": bodies}, (), "tuple",
                        site)
    results = loop_outputs(builder, node, [(o.shape, o.dtype) for o in first])
    return name_results(_unflatten(traced[0].outputs_tree, results))


def _avals(nodes: Sequence[Any]) -> list[tuple]:
    return [(n.shape, n.dtype) for n in nodes]


def _shown(nodes: Sequence[Any]) -> str:
    return ", ".join(f"{n.dtype}{list(n.shape)}" for n in nodes) or "nothing"


def checkpoint(fn: Callable) -> Callable:
    """`fn` whose intermediates reverse mode does not save: the backward pass recomputes
    them from `fn`'s inputs (rematerialisation, `jax.checkpoint`). Use it on the blocks of a
    deep composition to trade compute for memory."""
    @functools.wraps(fn)
    def rematerialised(*args: Any) -> Any:
        if active_builder() is None:
            return fn(*args)
        name = function_name(fn)
        _, ys = _scan(lambda t, c, x: ((), fn(*args)), (), None, 1, False, None, name,
                      definition_site(fn), ("carry", "x"))
        leaves, tree = _flatten(ys)
        return _unflatten(tree, [y[0] for y in leaves])

    return rematerialised

