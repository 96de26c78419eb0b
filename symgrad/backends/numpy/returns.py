"""The return statement of a generated function: results are fresh, writable arrays.

numpy code returns views freely (`y.T`, `x[0]`, `np.broadcast_to(...)`, `np.diagonal`): a
result that may share memory with an argument, a module constant or another result, or may
be a read-only view, is copied (`x_bar = y.T.copy()`), so that `g *= 0.5` never changes an
input or another result.
"""
from __future__ import annotations

from typing import Any

import sympy as sp

from ...ir.graph import Node
from ...ir.ops import OPS, Memory
from ..common import returned_code
from .einsum_forms import unary_view
from .printer import owned_copy_code
from ...symbolic.lift import Lifted, Value
from .statements import Statement

def view_of_operand(node: Node) -> tuple[bool, bool]:
    """(may be a view of its first operand, may be read-only) for the code of `node`: the op
    table's fact (np.reshape, .T, basic indexing, the identity; np.broadcast_to read-only)."""
    memory = OPS[node.op].memory
    if memory.shares_operand:
        return True, memory is Memory.READ_ONLY
    if node.op == "einsum" and len(node.inputs) == 1:
        inputs, output = node.param("subscripts").split("->")
        return unary_view([inputs], output)
    return False, False


def fresh_returns(structure: Any, lifted: Lifted, names: dict[sp.Symbol, str],
                  statements: list[Statement], namer: Any) -> str:
    """The return expression. Results are fresh, writable arrays: one that may share memory
    with an argument or with an earlier result, or that may be a read-only view
    (np.broadcast_to, np.diagonal), is copied."""
    returned_names: set[str] = set()
    by_name = {v.symbol.name: v for v in lifted.values}
    statement_of = {s.target: s for s in statements if isinstance(s, Statement) and s.target}
    returned_bases: set[Node] = set()

    def base(value: Value) -> tuple[Node, bool]:
        """The array `value` may be a view of (an argument, a computed array), and whether
        that view may be read-only."""
        read_only = False
        while True:
            while isinstance(value.expr, sp.Symbol) and value.expr.name in by_name:
                value = by_name[value.expr.name]  # a renaming, or structural code inline
            node = value.node
            if value.expr is not None:  # computed: its own array, unless a broadcast fill
                statement = statement_of.get(names.get(value.symbol, ""))
                fill = statement is not None and statement.read_only_view
                return node, read_only or fill
            view, frozen = view_of_operand(node)
            if not view:
                return node, read_only
            read_only |= frozen
            source = lifted.of_node.get(node.inputs[0])
            if source is None:  # inlined (a broadcast only elementwise ops read): a view
                return node.inputs[0], True
            value = source

    def leaf(index: int) -> str:
        value = lifted.outputs[index]
        name = names[value.symbol]
        node, read_only = base(value)
        with_result = node in returned_bases  # an earlier result is this array, or its base
        first = name not in returned_names
        returned_names.add(name)
        if not (with_result or read_only or node.op in ("input", "const")):
            returned_bases.add(node)  # (a result copied below holds an array of its own)
            return name
        statement = statement_of.get(name)
        if first and not with_result and statement is not None and value.node.op != "input" \
                and node is not value.node:  # the view itself is copied: `y.T.copy()`
            if not statement.owned:
                statement.code, statement.owned = owned_copy_code(statement.code), True
                statement.read_only_view = False
            return name
        fresh = namer.claim(f"{name}_copy")
        statements.append(Statement(fresh, owned_copy_code(name), None, owned=True))
        return fresh

    return returned_code(structure, leaf)
