"""Lowering: the backend-neutral `Schedule` (schedule/) as a `Program` of numpy statements.

The schedule gives the values in order, CSE temporaries and the user's names, built with
numpy's evaluation forms; here: comparison masks moved early (they let larger arrays die
sooner), structural code inlined into its one reader (`x @ w + b`), names for the rest, row
blocks (blocking.py), the errstate guard of statements that compute unselected branches, and
the printed statements (statements.py), each with the user's source line.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import sympy as sp

from ...ir.graph import Node
from ...ir.ops import OPS, Group, Memory
from ...schedule.names import ModuleNames, Names
from ...schedule.schedule import Schedule, build_schedule
from ...symbolic.expressions import Literal
from ...symbolic.lift import Lifted, Value
from .blocking import BlockRegion, plan_blocks
from .evaluation_forms import evaluation_forms
from .loop_code import LoopCode, loop_code
from .printer import (STRUCTURAL, STRUCTURAL_HELPERS, InlineCode, inline_code, plain_code,
                      structural_helper, sum_code)
from .returns import fresh_returns
from .statements import BlockFunction, Scheduled, Statement, StatementWriter, block_items


@dataclass
class Program:
    function_name: str
    params: list[str]
    statements: list[Statement | BlockFunction]
    returns: str
    constants: list[tuple[str, str]]
    helpers: list[str]
    rewrites: list[str]
    expression_sets: dict[str, list[Any]] = field(default_factory=dict)
    equations: list[tuple[str, Any]] = field(default_factory=list)  # (name, SymPy expr or code)
    names: dict[Any, str] = field(default_factory=dict)
    functions: list[Any] = field(default_factory=list)  # loop bodies and drivers (loop_code)

    @property
    def op_counts(self) -> dict[str, int]:
        """SymPy operation counts: as lifted, after simplification (before CSE), after CSE."""
        return {stage: sum(sp.count_ops(e) for e in exprs)
                for stage, exprs in self.expression_sets.items()}

    def as_math(self, latex: bool = False) -> str:
        """Every statement as an equation: SymPy's pretty print (or pure LaTeX math)."""
        if latex:
            from ...symbolic.latex import program_latex

            return program_latex(self.equations, self.names)
        renamed = {s: sp.Symbol(n, real=True) for s, n in self.names.items()}
        lines = []
        for target, rhs in self.equations:
            rhs = rhs if isinstance(rhs, str) else _for_reading(rhs, renamed)
            if isinstance(rhs, str):
                lines.append(f"{target} = {rhs}")
            else:
                pretty = sp.pretty(rhs, use_unicode=True, wrap_line=False)
                pad = " " * (len(target) + 3)
                first, *rest = pretty.splitlines() or [""]
                height = len(rest) + 1
                middle = height // 2
                block = [pad + l for l in [first, *rest]]
                block[middle] = f"{target} = " + block[middle][len(pad):]
                lines.append("\n".join(block))
        return "\n".join(lines) + "\n"


def lower(outputs: Sequence[Node], structure: Any, params: Sequence[str],
          name_hints: dict[Node, str], function_name: str,
          module: ModuleNames | None = None, fast_math: bool = False) -> Program:
    """The backend-neutral schedule (schedule/), with numpy's evaluation forms, as numpy
    statements: names for the rest, inlining, row blocks, buffer reuse, then printing."""
    module = module if module is not None else ModuleNames()
    module.everything.add(function_name)
    reserved = {"_sigmoid", function_name}  # a value named like the function would shadow it
    reserved |= {f"_{h}" for h in STRUCTURAL_HELPERS.values()}
    schedule = build_schedule(outputs, name_hints, params, reserved, module, fast_math,
                              evaluation_forms)
    loops = loop_drivers(schedule.lifted, module)
    program = _program(schedule, structure, function_name,
                       {node: code.call for node, code in loops.items()})
    for code in loops.values():
        program.functions.extend(code.functions)
        program.constants.extend(code.constants)
        program.helpers = sorted(set(program.helpers) | code.helpers)
    return program


def loop_drivers(lifted: Lifted, module: ModuleNames) -> dict[Node, LoopCode]:
    """The module-level functions of each loop node, knowing which of its results are read."""
    used: dict[Node, set[int]] = {}
    for value in lifted.values:
        if value.node.op == "loop_out":
            used.setdefault(value.node.inputs[0], set()).add(value.node.param("index"))
    return {value.node: loop_code(value.node, used.get(value.node, set()), module)
            for value in lifted.values if OPS[value.node.op].group is Group.LOOP}


def _program(schedule: Schedule, structure: Any, function_name: str,
             loop_calls: dict[Node, str]) -> Program:
    lifted, temps, by_symbol = schedule.lifted, schedule.temps, schedule.by_symbol
    names, namer, dependencies = schedule.names, schedule.namer, schedule.dependencies
    order = _masks_early(schedule.order, temps, by_symbol, dependencies)

    shape_of = schedule.shapes(order)
    readers = schedule.readers(order)
    guarded = _guarded(order, readers, schedule)

    deps = {symbol: dependencies(symbol) for symbol in order}  # before structural inlining
    items = block_items(order, temps, by_symbol, deps, shape_of)
    plan = plan_blocks(items, {v.symbol for v in lifted.outputs})
    regions = [entry for entry in plan if isinstance(entry, BlockRegion)]
    blocked = {m for region in regions for m in region.members}
    sums = {m for region in regions for m in region.sums}

    # Each block of a region returns its part of a full sum; the parts are added after it.
    partial_sums = {s: namer.claim(f"{names[s]}_parts" if s in names else "parts")
                    for s in order if s in sums}
    # A value the user named that only renames a temporary (`z = cse4`) lends it its name.
    named_alias = {}
    for symbol in order:
        source = _aliased(symbol, temps, by_symbol, lifted, shape_of)
        if source in temps and symbol in names and symbol not in blocked:
            named_alias.setdefault(source, names[symbol])
    for symbol in order:
        if not (readers.get(symbol) and readers[symbol][0] in blocked) and (
                _inline_single_use_structural(symbol, readers, temps, by_symbol, lifted, names,
                                              sum_code(partial_sums[symbol])
                                              if symbol in sums else None)
                or _inline_view_into_structural(symbol, readers, temps, by_symbol, lifted,
                                                names)):
            continue
        source = _aliased(symbol, temps, by_symbol, lifted, shape_of)
        if source is not None and source in names and symbol not in blocked:
            names[symbol] = names[source]  # `t6 = t4` would be a second name for one array
            names.inlined.add(symbol)
            names.reads[symbol] = frozenset({source})
            continue
        if symbol not in names:
            value = by_symbol.get(symbol)
            if value is not None and value.node.op == "const" and value.expr is None:
                names[symbol] = namer.claim("const", module_level=True)
            elif symbol in named_alias and symbol not in blocked:
                names[symbol] = named_alias[symbol]
            else:
                names[symbol] = namer.temporary()
    dtype_of = _dtypes(order, schedule)

    scheduled = Scheduled(order, temps, by_symbol, lifted, names, namer, readers, deps, guarded,
                          items, plan, shape_of, dtype_of, partial_sums, loop_calls)
    writer = StatementWriter(scheduled)
    statements = writer.write()
    returns = fresh_returns(structure, lifted, names, statements, namer)
    helpers = writer.printer.helpers | {
        structural_helper(by_symbol[s].node) for s in order if s in by_symbol} - {None}
    return Program(function_name, schedule.params, statements, returns, writer.constants,
                   sorted(helpers), list(schedule.rewrites), schedule.expression_sets,
                   writer.equations, dict(names))


def _guarded(order: list[sp.Symbol], readers: dict[sp.Symbol, list[sp.Symbol]],
             schedule: Schedule) -> set[sp.Symbol]:
    """The statements inside numpy's errstate block: those computing branches of np.where
    that may be unselected (a temporary: when every statement reading it is) and that can
    raise a floating-point error."""
    temps, by_symbol = schedule.temps, schedule.by_symbol
    branch_only: set[sp.Symbol] = set()
    for symbol in reversed(order):
        expr = schedule.expression(symbol)
        if expr is not None and expr.has(sp.Piecewise):
            branch_only.add(symbol)
        elif _computes_for_branches_only(symbol, temps, by_symbol, schedule.lifted) and \
                readers.get(symbol) and all(r in branch_only for r in readers[symbol]):
            branch_only.add(symbol)
    return {s for s in branch_only if _may_raise(schedule.expression(s))}


def _dtypes(order: list[sp.Symbol], schedule: Schedule) -> dict[sp.Symbol, str]:
    """The float dtype each statement computes in (a temporary: that of a value reading it),
    so that np.where with constant branches is typed like the arrays it meets."""
    by_symbol = schedule.by_symbol
    dtype_of: dict[sp.Symbol, str] = {}
    for symbol in reversed(order):
        if symbol in by_symbol and by_symbol[symbol].node.is_float:
            dtype_of[symbol] = by_symbol[symbol].node.dtype
        for dep in schedule.dependencies(symbol):
            if dep in schedule.temps and symbol in dtype_of:
                dtype_of.setdefault(dep, dtype_of[symbol])
    return dtype_of


_CANNOT_RAISE = (sp.Symbol, sp.Number, sp.logic.boolalg.Boolean, sp.Abs, sp.sign, sp.Max,
                 sp.Min, sp.floor, sp.ceiling, sp.Piecewise, sp.core.numbers.NumberSymbol)


def _may_raise(expr: sp.Basic | None) -> bool:
    """Whether computing `expr` may set a floating-point error flag (divide, overflow, invalid):
    comparisons, |x|, sign, max/min, floor, negation and selections cannot."""
    if expr is None:
        return True
    for node in sp.preorder_traversal(expr):
        if isinstance(node, InlineCode):  # structural code (x @ w) may overflow
            return True
        if isinstance(node, sp.Mul) and len(node.args) == 2 and node.args[0] == -1:
            continue
        if not isinstance(node, _CANNOT_RAISE):
            return True
    return False


def _computes_for_branches_only(symbol: sp.Symbol, temps: dict[sp.Symbol, sp.Expr],
                                by_symbol: dict[sp.Symbol, Value], lifted: Lifted) -> bool:
    """A temporary, or an elementwise value nothing but expressions reads: guarded when all
    its readers are (an output or a structural op's operand must never hide an error)."""
    if symbol in temps:
        return True
    value = by_symbol.get(symbol)
    return value is not None and value.expr is not None and not value.read_in_full \
        and value not in lifted.outputs


def _inline_single_use_structural(symbol: sp.Symbol, readers: dict[sp.Symbol, list[sp.Symbol]],
                                  temps: dict[sp.Symbol, sp.Expr],
                                  by_symbol: dict[sp.Symbol, Value], lifted: Lifted,
                                  names: Names, code: str | None = None) -> bool:
    """A structural result read once, by an expression, is written inside it: `x @ w + b`
    (`code`, where given, is all it prints: the sum of a blocked region's partial sums)."""
    value = by_symbol.get(symbol)
    if value is None or value.expr is not None or value.node.op in ("input", "const") \
            or value in lifted.outputs or len(readers.get(symbol, ())) != 1 or symbol in names.kept:
        return False  # (a value the user named keeps its statement)
    reader = readers[symbol][0]
    expr = temps[reader] if reader in temps else by_symbol[reader].expr
    if expr is None or expr.count(symbol) != 1:
        return False
    node = value.node
    operands = [lifted.of_node[i].symbol for i in node.inputs]
    arguments = [names[operand] for operand in operands]
    replacement = {symbol: inline_code(node, symbol.name,
                                       code or STRUCTURAL[node.op](node, *arguments),
                                       code or plain_code(node, *arguments),
                                       frozenset() if code else frozenset(operands),
                                       exact=code is not None)}
    if reader in temps:
        temps[reader] = expr.xreplace(replacement)
    else:
        by_symbol[reader].expr = expr.xreplace(replacement)
    names.inlined.add(symbol)
    return True


def _aliased(symbol: sp.Symbol, temps: dict[sp.Symbol, sp.Expr],
             by_symbol: dict[sp.Symbol, Value], lifted: Lifted,
             shape_of: dict[sp.Symbol, tuple[int, ...]]) -> sp.Symbol | None:
    """The value or temporary that `symbol` merely renames (its expression is that symbol, of
    the same shape and dtype), unless `symbol` is a result (results are arrays of their own)."""
    value = by_symbol.get(symbol)
    if value is None or not isinstance(value.expr, sp.Symbol) \
            or isinstance(value.expr, (InlineCode, Literal)) or value in lifted.outputs:
        return None
    source = value.expr
    if source in temps:
        same_dtype = value.node.is_float and not isinstance(
            temps[source], (sp.logic.boolalg.Boolean, sp.core.relational.Relational))
    else:
        same_dtype = source in by_symbol and by_symbol[source].node.dtype == value.node.dtype
    if not same_dtype or not shape_of[symbol] == shape_of[source] == value.node.shape:
        return None
    return source


def _inline_view_into_structural(symbol: sp.Symbol, readers: dict[sp.Symbol, list[sp.Symbol]],
                                 temps: dict[sp.Symbol, sp.Expr],
                                 by_symbol: dict[sp.Symbol, Value], lifted: Lifted,
                                 names: Names) -> bool:
    """A view read once, by a structural op, is written inside it: `h.T @ g`, not `t7 = h.T`
    on a line of its own. Views print as postfix or calls, safe in any operand position."""
    value = by_symbol.get(symbol)
    if value is None or value.expr is not None or OPS[value.node.op].memory is not Memory.VIEW \
            or value in lifted.outputs or len(readers.get(symbol, ())) != 1 or symbol in names.kept:
        return False
    reader = readers[symbol][0]
    if reader in temps or by_symbol[reader].expr is not None:
        return False
    node = value.node
    operands = [lifted.of_node[i].symbol for i in node.inputs]
    names[symbol] = STRUCTURAL[node.op](node, *[names[operand] for operand in operands])
    names.inlined.add(symbol)
    names.reads[symbol] = frozenset(operands)
    return True


def _for_reading(expr: sp.Expr, renamed: dict[sp.Symbol, sp.Symbol]) -> sp.Expr:
    """Generated names for symbols; inlined structural code shown as itself."""
    inlined = {a: sp.Symbol(getattr(a, "plain", a.code), real=True)
               for a in expr.atoms(InlineCode)}
    return expr.xreplace({**renamed, **inlined})


def _masks_early(order: list[sp.Symbol], temps: dict[sp.Symbol, sp.Expr],
                 by_symbol: dict[sp.Symbol, Value], dependencies: Any) -> list[sp.Symbol]:
    """Comparison masks (`scores == m` for the gradient of a max) right after their operands:
    the backward pass reads them late, and computed early they let the larger float arrays
    they compare die early (buffers.py can then reuse those arrays)."""
    def is_mask(symbol: sp.Symbol) -> bool:
        expr = temps[symbol] if symbol in temps else by_symbol[symbol].expr
        return isinstance(expr, sp.core.relational.Relational)

    masks = {s for s in order if (s in temps or by_symbol[s].expr is not None) and is_mask(s)}
    if not masks:
        return order
    position = {s: k for k, s in enumerate(order)}
    after: dict[sp.Symbol, list[sp.Symbol]] = {}  # symbol -> masks that move right after it
    for symbol in order:
        if symbol in masks and dependencies(symbol):
            last = max(dependencies(symbol), key=position.__getitem__)
            after.setdefault(last, []).append(symbol)
    moved = {m for ms in after.values() for m in ms}
    result: list[sp.Symbol] = []
    for symbol in order:
        if symbol not in moved:
            result.append(symbol)
        result.extend(after.get(symbol, ()))
    return result
