"""Lowering: from graph outputs to a straight-line `Program` of named numpy statements.

lift (regions.py) -> simplify each expression (simplify.py) -> one `sympy.cse` over forward and
backward together -> names -> a schedule in which every temporary is computed just before its
first use and nothing unused is computed -> printed statements, each with the user's source line.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import sympy as sp

from .blocking import BlockRegion, plan_blocks
from ...ir.graph import Node, Site
from .loop_code import LoopCode, ModuleNames, loop_code
from ...ir.ops import OPS, Group, Memory
from .printer import (STRUCTURAL, STRUCTURAL_HELPERS, InlineCode, inline_code, plain_code,
                      structural_helper, sum_code)
from ...symbolic.lift import Lifted, Value, broadcast_shapes, kept_name, lift
from .returns import fresh_returns
from ...symbolic.simplify import common_subexpressions, see_through_values, simplify_expression
from .evaluation_forms import evaluation_forms
from .statements import BlockFunction, Scheduled, Statement, StatementWriter, block_items
from ..sanitise import RESERVED as SANITISE_RESERVED, identifier
from ...symbolic.expressions import Literal

RESERVED = set(SANITISE_RESERVED)


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


class Names(dict):
    """Symbol -> generated name; `inlined` holds the symbols written inside their reader,
    `kept` those whose name the user gave once (regions.kept_name): never inlined.

    `reads` gives, for an inlined symbol, the values its printed form reads (a view written
    inside its reader: its operands; a second name for an array: that array's value)."""

    def __init__(self) -> None:
        super().__init__()
        self.inlined: set[sp.Symbol] = set()
        self.kept: set[sp.Symbol] = set()
        self.reads: dict[sp.Symbol, frozenset[sp.Symbol]] = {}

    def arrays_read(self, symbols: Any) -> set[sp.Symbol]:
        """The values with a statement of their own (not inlined) whose arrays code naming
        `symbols` reads: through inlined views, aliases and inlined structural code."""
        found: set[sp.Symbol] = set()
        pending = list(symbols)
        while pending:
            symbol = pending.pop()
            if isinstance(symbol, InlineCode):
                pending.extend(symbol.reads)
            elif symbol in self.inlined:
                pending.extend(self.reads.get(symbol, ()))
            elif symbol in self:
                found.add(symbol)
        return found


class Namer:
    """Valid, unique Python identifiers; nothing from the user becomes code except as a name.

    `module` is shared by the functions of one module (loop bodies, loop_code.py): a local
    name avoids the module-level names, a module-level name avoids every name."""

    def __init__(self, reserved: set[str], module: ModuleNames | None = None):
        self.taken = set(reserved)
        self.temporaries = 0
        self.module = module if module is not None else ModuleNames()

    def _unavailable(self, name: str, module_level: bool) -> bool:
        return name in self.taken or name in RESERVED or name in self.module.names or (
            module_level and name in self.module.everything)

    def claim(self, wish: str, module_level: bool = False) -> str:
        name = identifier(wish)  # the one sanitiser of names (sanitise.py)
        base, k = name, 1
        while self._unavailable(name, module_level):
            name = f"{base}{k}"
            k += 1
        self.taken.add(name)
        self.module.everything.add(name)
        if module_level:
            self.module.names.add(name)
        return name

    def temporary(self) -> str:
        while self._unavailable(f"t{self.temporaries}", False):
            self.temporaries += 1
        name = f"t{self.temporaries}"
        self.taken.add(name)
        self.module.everything.add(name)
        return name


def lower(outputs: Sequence[Node], structure: Any, params: Sequence[str],
          name_hints: dict[Node, str], function_name: str,
          module: ModuleNames | None = None, fast_math: bool = False) -> Program:
    module = module if module is not None else ModuleNames()
    module.everything.add(function_name)
    lifted = lift(outputs, name_hints, fast_math)
    rewrites: set[str] = set()
    expr_values = [v for v in lifted.values if v.expr is not None]
    lifted_exprs = [v.expr for v in expr_values]
    seen_through = see_through_values(lifted_exprs, {v.symbol: v.expr for v in expr_values})
    for value, expr in zip(expr_values, seen_through):
        value.expr = expr
    for value in expr_values:
        value.expr = simplify_expression(value.expr, rewrites)
    simplified_exprs = [v.expr for v in expr_values]
    sizes = [_size(v.natural_shape) for v in expr_values]
    for value, expr in zip(expr_values, evaluation_forms(simplified_exprs, sizes)):
        value.expr = expr

    temp_symbols = sp.numbered_symbols("cse", real=True)
    replacements, reduced = common_subexpressions([v.expr for v in expr_values],
                                                  lambda: next(temp_symbols))
    for value, expr in zip(expr_values, reduced):
        value.expr = expr
    expression_sets = {"lifted": lifted_exprs, "before_cse": simplified_exprs,
                       "after_cse": [e for _, e in replacements] + list(reduced)}

    namer = Namer(RESERVED | {"_sigmoid", function_name}  # a value named like the function
                  | {f"_{h}" for h in STRUCTURAL_HELPERS.values()}, module)  # would shadow it
    param_names = [namer.claim(p) for p in params]
    loops = loop_drivers(lifted, module)
    names = Names()
    for value in lifted.values:
        if value.node.op == "input":
            names[value.symbol] = param_names[value.node.param("position")]
    # The results first (`value`, `w_bar`): a local of the user's named alike steps aside.
    for value in lifted.outputs + lifted.values:
        if value.symbol not in names and value.node in name_hints:
            names[value.symbol] = namer.claim(name_hints[value.node])
            if kept_name(name_hints[value.node]):
                names.kept.add(value.symbol)

    program = _schedule(lifted, replacements, names, namer, param_names, structure,
                        function_name, sorted(rewrites), expression_sets,
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


def _schedule(lifted: Lifted, replacements: list[tuple[sp.Symbol, sp.Expr]],
              names: Names, namer: Namer, param_names: list[str],
              structure: Any, function_name: str, rewrites: list[str],
              expression_sets: dict[str, list[sp.Expr]],
              loop_calls: dict[Node, str] | None = None) -> Program:
    temps = dict(replacements)
    by_symbol: dict[sp.Symbol, Value] = {v.symbol: v for v in lifted.values}

    def dependencies(symbol: sp.Symbol) -> list[sp.Symbol]:
        if symbol in temps:
            return _ordered_symbols(temps[symbol])
        value = by_symbol[symbol]
        if value.expr is not None:
            return _ordered_symbols(value.expr)
        return [lifted.of_node[i].symbol for i in value.node.inputs]

    constants: list[tuple[str, str]] = []
    needed: set[sp.Symbol] = set()
    pending = [v.symbol for v in lifted.outputs]
    while pending:
        symbol = pending.pop()
        if symbol not in needed:
            needed.add(symbol)
            pending.extend(dependencies(symbol))

    # Values in graph order (forward, then backward); each temporary just before its first use.
    order: list[sp.Symbol] = []
    emitted: set[sp.Symbol] = set()
    for value in lifted.values:
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
    order = _merge_aliases(order, temps, by_symbol, dependencies)
    order = _masks_early(order, temps, by_symbol, dependencies)

    # The shape each expression really has: simplification can drop operands (x*0 + y is y),
    # so a value may be smaller than the broadcast of what it was built from.
    shape_of: dict[sp.Symbol, tuple[int, ...]] = {}
    for symbol in order:
        value = by_symbol.get(symbol)
        expr = temps.get(symbol, value.expr if value is not None else None)
        if expr is None:
            shape_of[symbol] = value.node.shape
        else:
            shape_of[symbol] = broadcast_shapes([shape_of[d] for d in _ordered_symbols(expr)])

    # Temporaries are guarded when every statement that reads them is.
    readers: dict[sp.Symbol, list[sp.Symbol]] = {}
    for symbol in order:
        for dep in dependencies(symbol):
            readers.setdefault(dep, []).append(symbol)
    branch_only: set[sp.Symbol] = set()
    for symbol in reversed(order):
        expr = temps.get(symbol, by_symbol[symbol].expr if symbol in by_symbol else None)
        if expr is not None and expr.has(sp.Piecewise):
            branch_only.add(symbol)
        elif _computes_for_branches_only(symbol, temps, by_symbol, lifted) and readers.get(
                symbol) and all(r in branch_only for r in readers[symbol]):
            branch_only.add(symbol)
    # Only statements that can raise a floating-point error need the errstate block.
    guarded = {s for s in branch_only if _may_raise(
        temps.get(s, by_symbol[s].expr if s in by_symbol else None))}

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
    # The float dtype each statement computes in (a temporary: that of a value reading it), so
    # that np.where with constant branches is typed like the arrays it meets.
    dtype_of: dict[sp.Symbol, str] = {}
    for symbol in reversed(order):
        if symbol in by_symbol and by_symbol[symbol].node.is_float:
            dtype_of[symbol] = by_symbol[symbol].node.dtype
        for dep in dependencies(symbol):
            if dep in temps and symbol in dtype_of:
                dtype_of.setdefault(dep, dtype_of[symbol])

    scheduled = Scheduled(order, temps, by_symbol, lifted, names, namer, readers, deps, guarded,
                          items, plan, shape_of, dtype_of, partial_sums, loop_calls or {})
    writer = StatementWriter(scheduled)
    statements = writer.write()
    returns = fresh_returns(structure, lifted, names, statements, namer)
    helpers = writer.printer.helpers | {
        structural_helper(by_symbol[s].node) for s in order if s in by_symbol} - {None}
    return Program(function_name, param_names, statements, returns, writer.constants,
                   sorted(helpers), rewrites, expression_sets, writer.equations, dict(names))


def _merge_aliases(order: list[sp.Symbol], temps: dict[sp.Symbol, sp.Expr],
                   by_symbol: dict[sp.Symbol, Value], dependencies: Any) -> list[sp.Symbol]:
    """A value that is just a temporary (`h = t1`: the backward pass recomputes tanh(a)
    symbolically and the CSE pass names it) takes over the temporary's statement: one array,
    one name. Only where the value is the temporary's first reader, so nothing moves."""
    first_reader: dict[sp.Symbol, sp.Symbol] = {}
    readers: dict[sp.Symbol, list[sp.Symbol]] = {}
    for symbol in order:
        for dep in dependencies(symbol):
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
                                       frozenset() if code else frozenset(operands))}
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


def _size(shape: tuple[int, ...]) -> int:
    size = 1
    for extent in shape:
        size *= extent
    return size


def _ordered_symbols(expr: sp.Expr) -> list[sp.Symbol]:
    """The values an expression reads (constants spelled as symbols are not values), in
    creation order (v2 before v10, cse2 before cse10)."""
    return sorted((s for s in expr.free_symbols if not isinstance(s, Literal)),
                  key=_creation_order)


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


def _creation_order(symbol: sp.Symbol) -> tuple[str, int]:
    stem = symbol.name.rstrip("0123456789")
    return stem, int(symbol.name[len(stem):] or -1)
