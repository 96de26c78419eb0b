"""Lift elementwise regions of a graph into SymPy expressions.

Every node becomes either a *value* (a named statement of the generated code) or part of the
expression of a value. Values are: inputs, array constants, structural ops, outputs, elementwise
nodes that a structural op reads, arguments of kinked functions (|x|, max, where-conditions:
kept as names so that kinks can be resolved by cases), nodes the user named (`mu = x.mean()`
keeps its statement and its name: `kept_name`), and nodes whose
inlined expression would grow too deep (lines stay short, SymPy's recursion stays shallow).
Broadcasts and unit-axis reshapes that only elementwise ops read vanish: numpy broadcasting does
them for free.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import sympy as sp

from .exact import exact_binary, exact_power
from ..ir.graph import LoopName, Node, Shape, topological_order
from ..ir.ops import OPS, Group
from .expressions import constant_expr, local_form, namespace, substitute, symbol_for
from .functions import KINKED, STEPPED

MAX_INLINE_DEPTH = 8


@dataclass(eq=False)
class Value:
    node: Node
    symbol: sp.Symbol
    expr: sp.Expr | None = None  # elementwise values: the expression over other values
    natural_shape: Shape = ()  # the shape numpy broadcasting gives `expr` (may be smaller)
    read_in_full: bool = False  # a structural op or the caller reads it: full shape needed


@dataclass
class Lifted:
    values: list[Value]
    of_node: dict[Node, Value]
    outputs: list[Value]
    symbol_names: dict[sp.Symbol, str] = field(default_factory=dict)


def _users(order: Sequence[Node]) -> dict[Node, list[Node]]:
    users: dict[Node, list[Node]] = {n: [] for n in order}
    for node in order:
        for inp in node.inputs:
            users[inp].append(node)
    return users


def _is_transparent(node: Node, users: list[Node], is_output: bool,
                    transparent: set[Node]) -> bool:
    """A broadcast, unit-axis reshape or stop_gradient that only elementwise consumers read:
    numpy broadcasting does it for free, and a stop_gradient is the identity on values."""
    if is_output or not users or not all(
            OPS[u.op].group is Group.ELEMENTWISE or u in transparent for u in users):
        return False
    source = node.inputs[0].shape
    if node.op in ("broadcast_to", "stop_gradient"):
        return True
    if node.op == "reshape":
        return node.shape[len(node.shape) - len(source):] == source and all(
            d == 1 for d in node.shape[:len(node.shape) - len(source)])
    return False


def _kink_arguments(node: Node) -> set[int]:
    """Positions of the inputs that a kinked function of this node looks at."""
    record = OPS[node.op]
    if node.op != "ew":
        if node.op == "where":
            return {0}
        return set(range(len(node.inputs))) if record.kinked else set()
    expr, symbols = local_form(node)
    positions = set()
    for kink in expr.atoms(*KINKED, *STEPPED):
        arguments = kink.args if not isinstance(kink, sp.Piecewise) else [
            c for _, c in kink.args]
        for arg in arguments:
            for k, s in enumerate(symbols):
                if arg.has(s):
                    positions.add(k)
    for relational in expr.atoms(sp.core.relational.Relational):
        for k, s in enumerate(symbols):
            if relational.has(s):
                positions.add(k)
    return positions


def lift(outputs: Sequence[Node], name_hints: dict[Node, str], fast_math: bool = False
         ) -> Lifted:
    # Creation order is a topological order, and it reads like the user's code: forward pass
    # first, then the backward pass.
    order = sorted(topological_order(outputs), key=lambda n: n.serial)
    users = _users(order)
    output_set = set(outputs)
    transparent: set[Node] = set()
    for node in reversed(order):
        if node.op in ("broadcast_to", "reshape", "stop_gradient") and _is_transparent(
                node, users[node], node in output_set, transparent):
            transparent.add(node)

    def is_constant_fill(node: Node) -> bool:
        return node.op == "broadcast_to" and node.inputs[0].op == "const" \
            and not node.inputs[0].shape and node not in transparent

    def read_in_full(node: Node) -> bool:
        """Whether some user needs the node's full shape (not a broadcastable stand-in)."""
        return node in output_set or any(
            OPS[u.op].group is not Group.ELEMENTWISE and u not in transparent
            for u in users[node])

    pinned: set[Node] = set()
    for node in order:
        if OPS[node.op].group is Group.ELEMENTWISE:
            for k in _kink_arguments(node):
                pinned.add(node.inputs[k])

    values: list[Value] = []
    of_node: dict[Node, Value] = {}
    inline: dict[Node, tuple[sp.Expr, int, Shape]] = {}  # node -> (expr, depth, natural shape)
    counter = [0]

    def new_symbol(node: Node) -> sp.Symbol:
        counter[0] += 1
        return symbol_for(node.dtype, f"v{counter[0]}")

    def reference(node: Node) -> tuple[sp.Expr, int, Shape]:
        if node in of_node:
            value = of_node[node]
            return value.symbol, 0, value.natural_shape
        return inline[node]

    for node in order:
        record = OPS[node.op]
        if node.op == "const" and not node.shape:
            inline[node] = (constant_expr(node.param("value")), 0, ())
            if node in output_set or any(
                    OPS[u.op].group is not Group.ELEMENTWISE and u not in transparent
                    and not is_constant_fill(u) for u in users[node]):
                _add(values, of_node, Value(node, new_symbol(node), inline[node][0], (), True))
            continue
        if is_constant_fill(node):
            # A constant made full size (zeros of a disconnected gradient, a seed): np.full.
            _add(values, of_node, Value(node, new_symbol(node),
                                        constant_expr(node.inputs[0].param("value")), (), True))
            continue
        if record.group is not Group.ELEMENTWISE:
            if node in transparent:
                inline[node] = reference(node.inputs[0])
                continue
            _add(values, of_node, Value(node, new_symbol(node), None, node.shape))
            continue
        operands = [reference(i) for i in node.inputs]
        expr = _apply(node, [o[0] for o in operands], fast_math)
        depth = 1 + max((o[1] for o in operands), default=0)
        natural = broadcast_shapes([o[2] for o in operands])
        materialise = (
            read_in_full(node) or node in pinned or depth > MAX_INLINE_DEPTH
            or (node in name_hints and (len(users[node]) > 1 or kept_name(name_hints[node], expr)))
        )
        if materialise:
            _add(values, of_node, Value(node, new_symbol(node), expr, natural,
                                        read_in_full(node)))
        else:
            inline[node] = (expr, depth, natural)
    return Lifted(values, of_node, [of_node[o] for o in outputs])


def kept_name(name: str, expr: sp.Expr | None = None) -> bool:
    """Whether a value named `name` keeps a statement of its own though read once: unless a
    loop gave the name (`LoopName`) or it is a selection, which stays inside its reader
    (`where(c, a, 0) * b` folds into `where(c, a * b, 0)`: 0 * inf would be NaN)."""
    return not isinstance(name, LoopName) and (expr is None or not expr.has(sp.Piecewise))


def _add(values: list[Value], of_node: dict[Node, Value], value: Value) -> None:
    values.append(value)
    of_node[value.node] = value


def _apply(node: Node, operands: list[sp.Expr], fast_math: bool = False) -> sp.Expr:
    if node.op == "ew":
        expr, symbols = local_form(node)
        return substitute(expr, dict(zip(symbols, operands)))
    expr = OPS[node.op].sympy(namespace, *operands)
    if len(operands) == 2:
        expr = exact_binary(node.op, expr, *operands, fast_math)  # x - x stays (NaN at inf)
    if node.op in ("square", "power"):
        expr = exact_power(expr, operands[0], operands[1] if len(operands) == 2 else
                           sp.Integer(2), fast_math)
    return expr


def broadcast_shapes(shapes: list[Shape]) -> Shape:
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for shape in shapes:
        for i, d in enumerate(shape):
            j = ndim - len(shape) + i
            if d != 1:
                out[j] = d
    return tuple(out)
