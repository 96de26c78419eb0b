"""The backend-neutral schedule of a statement-per-value backend (numpy).

After the shared front (`prepare.py`) and the backend's evaluation forms: one
common-subexpression pass over forward and backward together (`cseN` temporaries), the names
of the parameters and of the values the user named, and an order in which every value comes
after what it reads, every temporary just before its first use, and nothing unused is
computed. A value's right side is a SymPy expression (`Schedule.expression`) or, where that is
None, its structural node (`Schedule.by_symbol[symbol].node`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import sympy as sp

from ..ir.graph import Node
from ..symbolic.expressions import Literal
from ..symbolic.lift import Lifted, Value, broadcast_shapes, kept_name
from ..symbolic.simplify import common_subexpressions
from .names import ModuleNames, Namer, Names
from .prepare import Prepared, prepare

# A backend's evaluation forms: (simplified expressions, their element counts) -> expressions.
Forms = Callable[[list[sp.Expr], list[int]], list[sp.Expr]]


@dataclass
class Schedule:
    lifted: Lifted
    by_symbol: dict[sp.Symbol, Value]
    temps: dict[sp.Symbol, sp.Expr]  # CSE temporaries, in definition order
    order: list[sp.Symbol]
    names: Names  # the parameters' and the user's names so far; a backend names the rest
    namer: Namer
    params: list[str]  # the function's parameter names
    rewrites: list[str]  # the stable forms that fired
    expression_sets: dict[str, list[sp.Expr]] = field(default_factory=dict)  # for op counts

    def expression(self, symbol: sp.Symbol) -> sp.Expr | None:
        """The right side of `symbol` as SymPy, or None for a structural value."""
        if symbol in self.temps:
            return self.temps[symbol]
        return self.by_symbol[symbol].expr

    def dependencies(self, symbol: sp.Symbol) -> list[sp.Symbol]:
        """What `symbol`'s statement reads, in creation order."""
        expr = self.expression(symbol)
        if expr is not None:
            return ordered_symbols(expr)
        return [self.lifted.of_node[i].symbol for i in self.by_symbol[symbol].node.inputs]

    def shapes(self, order: list[sp.Symbol]) -> dict[sp.Symbol, tuple[int, ...]]:
        """The shape each statement really computes: simplification can drop operands
        (x*0 + y is y), so a value may be smaller than the broadcast of what it was built
        from."""
        shape_of: dict[sp.Symbol, tuple[int, ...]] = {}
        for symbol in order:
            expr = self.expression(symbol)
            if expr is None:
                shape_of[symbol] = self.by_symbol[symbol].node.shape
            else:
                shape_of[symbol] = broadcast_shapes([shape_of[d] for d in ordered_symbols(expr)])
        return shape_of

    def readers(self, order: list[sp.Symbol]) -> dict[sp.Symbol, list[sp.Symbol]]:
        """The statements reading each value, in `order`."""
        readers: dict[sp.Symbol, list[sp.Symbol]] = {}
        for symbol in order:
            for dep in self.dependencies(symbol):
                readers.setdefault(dep, []).append(symbol)
        return readers


def build_schedule(outputs: Sequence[Node], hints: dict[Node, str], params: Sequence[str],
                   reserved: set[str] = frozenset(), module: ModuleNames | None = None,
                   fast_math: bool = False, forms: Forms | None = None) -> Schedule:
    """Prepare, apply the backend's `forms`, eliminate common subexpressions, name, order.
    `reserved`: names the backend's code binds; `module`: the names of the module the
    function goes in (shared with its loop bodies)."""
    prepared = prepare(outputs, hints, fast_math)
    values = prepared.expression_values
    simplified = [v.expr for v in values]
    if forms is not None:
        for value, expr in zip(values, forms(simplified, [_size(v.natural_shape)
                                                          for v in values])):
            value.expr = expr
    temp_symbols = sp.numbered_symbols("cse", real=True)
    replacements, reduced = common_subexpressions([v.expr for v in values],
                                                  lambda: next(temp_symbols))
    for value, expr in zip(values, reduced):
        value.expr = expr
    expression_sets = {"lifted": prepared.lifted_exprs, "before_cse": simplified,
                       "after_cse": [e for _, e in replacements] + list(reduced)}
    namer = Namer(set(reserved), module)
    param_names = [namer.claim(p) for p in params]
    names = _given_names(prepared, hints, param_names, namer)
    lifted = prepared.lifted
    schedule = Schedule(lifted, {v.symbol: v for v in lifted.values}, dict(replacements), [],
                        names, namer, param_names, sorted(prepared.rewrites), expression_sets)
    schedule.order = _merge_aliases(_order(schedule), schedule)
    return schedule


def _given_names(prepared: Prepared, hints: dict[Node, str], param_names: list[str],
                 namer: Namer) -> Names:
    lifted = prepared.lifted
    names = Names()
    for value in lifted.values:
        if value.node.op == "input":
            names[value.symbol] = param_names[value.node.param("position")]
    # The results first (`value`, `w_bar`): a local of the user's named alike steps aside.
    for value in lifted.outputs + lifted.values:
        if value.symbol not in names and value.node in hints:
            names[value.symbol] = namer.claim(hints[value.node])
            if kept_name(hints[value.node]):
                names.kept.add(value.symbol)
    return names


def _order(schedule: Schedule) -> list[sp.Symbol]:
    """Values in graph order (forward, then backward); each temporary just before its first
    use; only what the outputs need."""
    temps, dependencies = schedule.temps, schedule.dependencies
    needed: set[sp.Symbol] = set()
    pending = [v.symbol for v in schedule.lifted.outputs]
    while pending:
        symbol = pending.pop()
        if symbol not in needed:
            needed.add(symbol)
            pending.extend(dependencies(symbol))
    order: list[sp.Symbol] = []
    emitted: set[sp.Symbol] = set()
    for value in schedule.lifted.values:
        if value.symbol not in needed:
            continue
        stack = [(value.symbol, iter(dependencies(value.symbol)))]
        while stack:
            symbol, deps = stack[-1]
            for dep in deps:
                if dep in temps and dep not in emitted:
                    emitted.add(dep)
                    stack.append((dep, iter(dependencies(dep))))
                    break
            else:
                stack.pop()
                order.append(symbol)
        emitted.add(value.symbol)
    return order


def _merge_aliases(order: list[sp.Symbol], schedule: Schedule) -> list[sp.Symbol]:
    """A value that is just a temporary (`h = t1`: the backward pass recomputes tanh(a)
    symbolically and the CSE pass names it) takes over the temporary's statement: one array,
    one name. Only where the value is the temporary's first reader, so nothing moves."""
    temps, by_symbol = schedule.temps, schedule.by_symbol
    first_reader: dict[sp.Symbol, sp.Symbol] = {}
    readers: dict[sp.Symbol, list[sp.Symbol]] = {}
    for symbol in order:
        for dep in schedule.dependencies(symbol):
            first_reader.setdefault(dep, symbol)
            readers.setdefault(dep, []).append(symbol)
    merged: dict[sp.Symbol, sp.Symbol] = {}  # temporary -> the value that replaces it
    for symbol in order:
        value = by_symbol.get(symbol)
        if value is None or value.expr not in temps or first_reader[value.expr] is not symbol \
                or (value.read_in_full and value.natural_shape != value.node.shape):
            continue
        temporary = value.expr
        value.expr = temps.pop(temporary)
        for reader in readers[temporary]:
            if reader in temps:
                temps[reader] = temps[reader].xreplace({temporary: symbol})
            elif reader is not symbol:
                by_symbol[reader].expr = by_symbol[reader].expr.xreplace({temporary: symbol})
        merged[temporary] = symbol
    moved = set(merged.values())
    return [merged.get(s, s) for s in order if s not in moved or s in merged]


def ordered_symbols(expr: sp.Expr) -> list[sp.Symbol]:
    """The values an expression reads (constants spelled as symbols are not values), in
    creation order (v2 before v10, cse2 before cse10)."""
    return sorted((s for s in expr.free_symbols if not isinstance(s, Literal)),
                  key=_creation_order)


def _creation_order(symbol: sp.Symbol) -> tuple[str, int]:
    stem = symbol.name.rstrip("0123456789")
    return stem, int(symbol.name[len(stem):] or -1)


def _size(shape: tuple[int, ...]) -> int:
    size = 1
    for extent in shape:
        size *= extent
    return size
