"""Reverse mode over the shared graph: one backward walk, adjoints accumulated per node.

Elementwise ops are differentiated by SymPy (`symbolic.partial`) and their adjoint
contributions become `ew` nodes; structural ops use `vjp_rules`. The result is again a graph,
so it can be differentiated again (Hessians, reverse over reverse).

A gradient is one of three things, never a silent zero: disconnected (zeros, made explicitly by
the caller), not implemented (`GradientError` naming op and argument), undefined (likewise).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import sympy as sp

from ..ir import primitives as prim
from ..errors import GradientError
from ..ir.graph import Builder, Node, topological_order
from .loop_rules import MULTI_OUTPUT, loop_vjp
from ..ir.ops import OPS, Group
from ..symbolic.expressions import constant_expr, local_form, operand_symbols, partial, substitute
from .vjp_rules import VJP_RULES


@dataclass
class Adjoints:
    """The adjoint node of every forward node that received one."""

    of: dict[Node, Node]

    def get(self, node: Node) -> Node | None:
        return self.of.get(node)


def active_nodes(order: Sequence[Node], wrt: Sequence[Node]) -> set[Node]:
    """Float nodes that depend on a `wrt` input (everything else has no gradient to carry)."""
    active = {n for n in wrt if n.is_float}
    for node in order:
        if not OPS[node.op].differentiable or not (node.is_float or node.op in MULTI_OUTPUT):
            continue
        if any(i in active for i in node.inputs):
            active.add(node)
    return active


def backward(builder: Builder, outputs: Sequence[Node], seeds: Sequence[Node],
             wrt: Sequence[Node]) -> Adjoints:
    """Adjoints of every active node given adjoint `seeds` of `outputs`."""
    order = topological_order(outputs)
    active = active_nodes(order, wrt)
    adjoint: dict[Node, Node] = {}

    def accumulate(node: Node, contribution: Node) -> None:
        previous = adjoint.get(node)
        adjoint[node] = contribution if previous is None else prim.elementwise(
            builder, "add", previous, contribution)

    # A loop's results (loop_out) hand their adjoints to the loop, which is reached after
    # all of them (loop_rules.py): its rule needs every result's adjoint at once.
    result_adjoints: dict[Node, dict[int, Node]] = {}
    saved_site = builder.site
    for out, seed in zip(outputs, seeds):
        if out in active:
            accumulate(out, seed)
    for node in reversed(order):
        if node.op in MULTI_OUTPUT:
            cotangents = result_adjoints.pop(node, None)
            if cotangents:
                builder.site = node.site
                live = [k for k, i in enumerate(node.inputs) if i in active]
                for k, contribution in loop_vjp(builder, node, cotangents, live).items():
                    accumulate(node.inputs[k], contribution)
            continue
        g = adjoint.get(node)
        if g is None or node.op == "input":
            continue
        builder.site = node.site
        if node.op == "loop_out":
            # Two loop_out nodes may read the same result (built in different builders, as
            # when an expanded call's graph meets its pullback's): their adjoints add up.
            found = result_adjoints.setdefault(node.inputs[0], {})
            index = node.param("index")
            found[index] = g if index not in found else prim.elementwise(
                builder, "add", found[index], g)
            continue
        for k, inp in enumerate(node.inputs):
            if inp not in active:
                continue
            contribution = _vjp(builder, node, g, k)
            if contribution is not None:
                accumulate(inp, contribution)
    builder.site = saved_site
    return Adjoints(adjoint)


def _vjp(builder: Builder, node: Node, g: Node, k: int) -> Node | None:
    record = OPS[node.op]
    if record.group is Group.ELEMENTWISE:
        return _elementwise_vjp(builder, node, g, k)
    rule = VJP_RULES.get(node.op)
    if rule is None:
        raise GradientError(f"the gradient of {node.op!r} with respect to its argument {k} is "
                            f"not implemented (at {node.site})")
    return rule(builder, node, g, k)


def _elementwise_vjp(builder: Builder, node: Node, g: Node, k: int) -> Node | None:
    expr, symbols = local_form(node)
    # Scalar constants go in as numbers: d/dx x**0.5 is then 1/(2*sqrt(x)) (numpy's sqrt,
    # PyTorch's rsqrt: -inf at x = -0.0), not a traced exponent's general form.
    expr = substitute(expr, {s: constant_expr(i.param("value")) for s, i in zip(symbols, node.inputs)
                             if i.op == "const" and not i.shape})
    derivative = partial(expr, symbols[k])
    if derivative == 0:
        return None
    target = node.inputs[k]
    if derivative == 1:
        contribution = g
    else:
        contribution = make_ew(builder, sp.Symbol("g", real=True) * derivative,
                               {sp.Symbol("g", real=True): g,
                                **{s: n for s, n in zip(symbols, node.inputs)}},
                               node.shape, node.dtype)
    return prim.unbroadcast(builder, contribution, target.shape)


def make_ew(builder: Builder, expr: sp.Expr, operands: dict[sp.Symbol, Node],
            shape: tuple[int, ...], dtype: str) -> Node:
    """An `ew` node over the operands `expr` actually uses, renumbered a0, a1, ..."""
    used = [(s, n) for s, n in operands.items() if s in expr.free_symbols]
    nodes = [n for _, n in used]
    symbols = operand_symbols(nodes)
    renamed = expr.xreplace({s: symbols[i] for i, (s, _) in enumerate(used)})
    if not nodes:
        return prim.broadcast_to(builder, _constant_node(builder, renamed, dtype), shape)
    return prim.ew(builder, renamed, nodes, shape, dtype)


def _constant_node(builder: Builder, expr: sp.Expr, dtype: str) -> Node:
    value = expr.evalf() if not expr.is_Integer else expr
    python = int(value) if value.is_Integer else float(value)
    return prim.constant(builder, python, dtype)
