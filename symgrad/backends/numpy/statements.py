"""Statements: the scheduled values of a lowered program, printed.

One statement per value, in the order of the schedule (schedule/, with lower.py's masks moved
early); regions that `blocking.py` blocked become a nested block function and its call; values
that `buffers.py` assigned an array no longer read are computed into it by the in-place steps
of `inplace.py`, under a comment that shows the expression in one line. A statement is data
(target, code, facts about its result); code comes from the printer's builders, and nothing
here reads printed code back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from .blocking import BlockRegion, Item
from . import blocking, buffers
from .buffers import BufferItem, plan_reuse
from ...ir.graph import Site
from ...schedule.names import Names, Namer
from .inplace import InplaceWriter
from .loop_code import call_code
from ...ir.ops import OPS, Memory
from ..speed_rules import TINY_ROW
from .printer import (STRUCTURAL, InlineCode, InlineProduct, NumpyExpressionPrinter, as_plain,
                      blocks_call_code, cast_code, column_code, const_array_code, empty_code,
                      fill_code, matmul_into_code, owned_copy_code, plain_code, sum_code,
                      tuple_code, whole_code)
from ...symbolic.lift import Lifted, Value
from ...symbolic.expressions import Literal

# Results with a last axis of 2-4 computed one column at a time from this size on: (512, 8, 2)
# differences 34 -> 15 us, (4096, 8, 2) 500 -> 150 us; below it the extra calls cost more.
COLUMNWISE_MIN_BYTES = 16 << 10

@dataclass
class Statement:
    target: str  # empty: the code is a statement of its own (an in-place update, a call)
    code: str
    site: Site | None
    guarded: bool = False  # computes branches of np.where that may be unselected
    note: str | None = None  # a comment line above it
    read_only_view: bool = False  # the code is np.broadcast_to of a smaller value
    owned: bool = False  # the code ends in .copy(): a fresh array of its own


def _statements(rows: list[tuple[str, str, str | None]], site: Site | None,
                guarded: bool) -> list[Statement]:
    """Statements from (target, code, note) rows of one value."""
    return [Statement(target, code, site, guarded, note) for target, code, note in rows]


@dataclass
class BlockFunction:
    """A nested function that computes a blocked region for one block of rows (blocking.py)."""

    name: str
    params: list[str]  # row blocks of these arrays; everything else is read whole
    statements: list[Statement]
    returns: str | None  # the partial sums of the block, if any
    rows: int
    block_rows: int


@dataclass
class Scheduled:
    """What lower() decided: the values in order, their names, and the block plan."""

    order: list[sp.Symbol]
    temps: dict[sp.Symbol, sp.Expr]  # CSE temporaries
    by_symbol: dict[sp.Symbol, Value]
    lifted: Lifted
    names: Names  # symbol -> generated name, with the inlined symbols
    namer: Namer
    readers: dict[sp.Symbol, list[sp.Symbol]]
    deps: dict[sp.Symbol, list[sp.Symbol]]  # what each value reads (before inlining)
    guarded: set[sp.Symbol]
    items: list[Item]  # the block planner's view of every value
    plan: list[Any]  # symbols and BlockRegions, in order
    shape_of: dict[sp.Symbol, tuple[int, ...]]  # the shape each statement computes
    dtype_of: dict[sp.Symbol, str]  # the float dtype each statement computes in
    partial_sums: dict[sp.Symbol, str] = field(default_factory=dict)
    loop_calls: dict[Any, str] = field(default_factory=dict)  # loop node -> its driver


def block_items(order: list[sp.Symbol], temps: dict[sp.Symbol, sp.Expr],
                by_symbol: dict[sp.Symbol, Value], deps: dict[sp.Symbol, list[sp.Symbol]],
                expression_shape: dict[sp.Symbol, tuple[int, ...]]) -> list[Item]:
    """Shape, dtype and kind of every value, for the block and buffer planners."""
    items: list[Item] = []
    dtype_of: dict[sp.Symbol, str | None] = {}
    for symbol in order:
        kind = "other"
        if symbol in temps:
            expr = temps[symbol]
            shape = expression_shape[symbol]
            dtype = _expression_dtype(expr, [dtype_of[d] for d in deps[symbol]])
            kind = "elementwise"
        else:
            value = by_symbol[symbol]
            node = value.node
            dtype = node.dtype
            filled = _filled(value, expression_shape[symbol])
            shape = node.shape if value.expr is None or filled else expression_shape[symbol]
            if value.expr is not None and not filled:
                kind = "elementwise"
            elif node.op == "sum" and not node.param("keepdims") and \
                    len(node.param("axes")) == node.inputs[0].ndim:
                kind = "full_sum"
        dtype_of[symbol] = dtype
        operations = 1
        if kind == "elementwise" and _nbytes(shape, dtype) >= blocking.BLOCKING_MIN_BYTES:
            operations = sp.count_ops(temps[symbol] if symbol in temps else
                                      by_symbol[symbol].expr)
        items.append(Item(symbol, kind, shape, dtype, deps[symbol], operations))
    return items


def _filled(value: Value, shape: tuple[int, ...]) -> bool:
    """An expression value (of this computed shape) made full size by np.full or
    np.broadcast_to (fill_code)."""
    return value.read_in_full and value.expr is not None and (
        _is_constant(value.expr) or shape != value.node.shape)


def _is_constant(expr: sp.Expr) -> bool:
    """No value is read (constants such as inf are Literal symbols, not values)."""
    return not any(not isinstance(s, Literal) for s in expr.free_symbols)


def _carries_dtype(expr: sp.Basic, temps: dict[sp.Symbol, sp.Expr],
                   memo: dict[sp.Basic, bool]) -> bool:
    """Whether an array operand decides the dtype of `expr`: one in a value position, not only
    in conditions. Otherwise numpy types it from Python scalars (int for np.where(c, 1, 0))."""
    if expr in memo:
        return memo[expr]
    if isinstance(expr, sp.Piecewise):
        result = any(_carries_dtype(v, temps, memo) for v, _ in expr.args)
    elif isinstance(expr, sp.Symbol):  # before Boolean: SymPy symbols are Booleans too
        result = not isinstance(expr, Literal) and (
            expr not in temps or _carries_dtype(temps[expr], temps, memo))
    elif isinstance(expr, sp.logic.boolalg.Boolean):
        result = False
    else:
        result = any(_carries_dtype(a, temps, memo) for a in expr.args)
    memo[expr] = result
    return result



def _expression_dtype(expr: sp.Expr, dep_dtypes: list[str | None]) -> str | None:
    """The dtype of a temporary: its operands' float dtype (symgrad casts explicitly)."""
    if isinstance(expr, (sp.core.relational.Relational, sp.logic.boolalg.Boolean)):
        return "bool"
    floats = {d for d in dep_dtypes if d and d.startswith("float")}
    return floats.pop() if len(floats) == 1 else None


def _broadcast_shapes(shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for shape in shapes:
        for i, d in enumerate(shape):
            if d != 1:
                out[ndim - len(shape) + i] = d
    return tuple(out)


class StatementWriter:
    def __init__(self, scheduled: Scheduled):
        self.s = scheduled
        self.printer = NumpyExpressionPrinter(scheduled.names)
        self.constants: list[tuple[str, str]] = []
        self.equations: list[tuple[str, Any]] = []
        self.item_of = {item.symbol: item for item in scheduled.items}
        self.sums = {m for entry in scheduled.plan if isinstance(entry, BlockRegion)
                     for m in entry.sums}
        # computed block by block, on row slices of the arrays their statements name
        self.in_blocks = {m for entry in scheduled.plan if isinstance(entry, BlockRegion)
                          for m in entry.members}
        # a structural value written inside its reader, by the name its InlineCode carries
        self.inlined_by_name = {symbol.name: symbol for symbol in scheduled.names.inlined}
        self.site_of: dict[sp.Symbol, Site | None] = {}
        for symbol in reversed(scheduled.order):
            if symbol in scheduled.by_symbol:
                self.site_of[symbol] = scheduled.by_symbol[symbol].node.site
            for dep in scheduled.deps[symbol]:
                self.site_of.setdefault(dep, self.site_of.get(symbol))
        shapes = {symbol.name: item.shape for symbol, item in self.item_of.items()}
        self.inplace = InplaceWriter(self.printer, lambda e: _broadcast_shapes(
            [shapes.get(a.name, ()) for a in e.free_symbols if isinstance(a, sp.Symbol)]))
        self.reuse = plan_reuse(self._buffer_items(), {v.symbol for v in scheduled.lifted.outputs},
                                self._reads_only_first)

    def write(self) -> list[Statement | BlockFunction]:
        statements: list[Statement | BlockFunction] = []
        for entry in self.s.plan:
            if isinstance(entry, BlockRegion):
                statements.extend(self._region(entry))
                self.printer.helpers.add("in_blocks")
            else:
                statements.extend(self.statements(entry))
        return statements

    # -- one value ---------------------------------------------------------------------------
    def _expression(self, symbol: sp.Symbol) -> sp.Expr | None:
        if symbol in self.s.temps:
            return self.s.temps[symbol]
        return self.s.by_symbol[symbol].expr

    def statements(self, symbol: sp.Symbol, target: str | None = None) -> list[Statement]:
        """The statements that compute `symbol` (none: inlined, an input or a constant)."""
        s = self.s
        if symbol in s.names.inlined:
            return []
        name = s.names[symbol]
        guarded = symbol in s.guarded
        self.printer.float_dtype = s.dtype_of.get(symbol)
        site = s.by_symbol[symbol].node.site if symbol in s.by_symbol else self.site_of[symbol]
        if target is None:
            # Into an array no longer read, else into the array of its matrix product.
            rows = self._in_place(symbol, name, s.names[self.reuse[symbol]]) \
                if symbol in self.reuse else None
            if symbol not in self.in_blocks:
                rows = rows if rows is not None else self._in_product(symbol, name)
                rows = rows if rows is not None else self._by_columns(symbol, name)
            if rows is not None:
                return _statements(rows, site, guarded)
        if symbol in s.temps:
            self.equations.append((name, s.temps[symbol]))
            return [Statement(target or name, self.printer.doprint(s.temps[symbol]), site,
                              guarded, self._plain_note(name, s.temps[symbol]))]
        value = s.by_symbol[symbol]
        node = value.node
        if node.op == "input":
            return []
        if node.op == "const" and value.expr is None:
            self.constants.append((name, const_array_code(node.param("value"))))
            return []
        note, read_only, owned = None, False, False
        if value.expr is not None:
            code = self.printer.doprint(value.expr)
            note = self._plain_note(name, value.expr)
            self.equations.append((name, value.expr))
            if _filled(value, s.shape_of[symbol]):
                constant = _is_constant(value.expr)
                if not constant and node.is_float and not _carries_dtype(value.expr, s.temps, {}):
                    code = cast_code(code, node.dtype)  # broadcast np.where(c, 1, 0): int
                code = fill_code(node.shape, code, node.dtype, constant, value.expr)
                read_only = not constant  # np.broadcast_to: a read-only view
                if read_only and value in s.lifted.outputs:
                    code, read_only, owned = owned_copy_code(code), False, True
            elif node.is_float and not _carries_dtype(value.expr, s.temps, {}):
                code = cast_code(code, node.dtype)  # np.where(c, 1, 0) alone is int
        elif symbol in self.sums:
            code = sum_code(s.partial_sums[symbol])
            self.equations.append((name, code))
        else:
            arguments = self._arguments(value)
            code = call_code(s.loop_calls[node], arguments) if node in s.loop_calls \
                else STRUCTURAL[node.op](node, *arguments)
            plain = code if node in s.loop_calls else plain_code(node, *arguments)
            self.equations.append((name, plain))
            if plain != code:  # a faster form than the plain one
                note = f"{name} = {plain}, over all rows at once"
            if node.op == "broadcast_to" and value in s.lifted.outputs:
                code, owned = owned_copy_code(code), True  # results are fresh, writable arrays
        return [Statement(target or name, code, site, guarded, note, read_only, owned)]

    def _shown(self, expr: sp.Expr) -> str:
        """`expr` as a comment shows it: structural code inside it in its plain form."""
        fast = {a: as_plain(a) for a in expr.atoms(InlineCode)
                if getattr(a, "plain", a.code) != a.code}
        return self.printer.doprint(expr.xreplace(fast) if fast else expr)

    def _plain_note(self, name: str, expr: sp.Expr) -> str | None:
        """The comment above a statement whose expression holds a faster form of structural
        code (the columns of a short row added, a moved maximum): the statement as plain."""
        if not any(getattr(a, "plain", a.code) != a.code for a in expr.atoms(InlineCode)):
            return None
        return f"{name} = {self._shown(expr)}, over all rows at once"

    def _arguments(self, value: Value) -> list[str]:
        return [self.s.names[self.s.lifted.of_node[i].symbol] for i in value.node.inputs]

    def _in_place(self, symbol: sp.Symbol, name: str, buffer: str
                  ) -> list[tuple[str, str, str | None]] | None:
        """(target, code, note) rows computing `symbol` into the array named `buffer`."""
        expr = self._expression(symbol)
        written = f"written into the array of {buffer} (not read after this)"
        if expr is None:  # a matrix product
            a, b = self._arguments(self.s.by_symbol[symbol])
            code = STRUCTURAL["matmul"](self.s.by_symbol[symbol].node, a, b)
            self.equations.append((name, code))
            return [(name, matmul_into_code(a, b, buffer), f"{name} = {code}, {written}")]
        plan = self.inplace.plan(expr, name, buffer)
        if plan is None:
            return None
        self.equations.append((name, expr))
        note = f"{name} = {self._shown(expr)}, {written}"
        return [(target, code, note if k == 0 else None)
                for k, (target, code) in enumerate(self.inplace.assignments(plan))]

    def _in_product(self, symbol: sp.Symbol, name: str
                    ) -> list[tuple[str, str, str | None]] | None:
        """`h = np.tanh(x @ w + b)` as `h = x @ w` and the rest in place in that array: the
        product is a fresh array of the result's size that nothing else reads, so the statement
        needs no second array (for large arrays, a fresh one costs a page fault per 4 KiB)."""
        expr = self._expression(symbol)
        item = self.item_of[symbol]
        if expr is None or _nbytes(item.shape, item.dtype) < buffers.REUSE_MIN_BYTES:
            return None
        products = list(expr.atoms(InlineProduct))
        if len(products) != 1 or expr.count(products[0]) != 1 \
                or products[0].name not in self.inlined_by_name:
            return None
        product = products[0]
        inner = self.item_of[self.inlined_by_name[product.name]]
        if (inner.shape, inner.dtype) != (item.shape, item.dtype):
            return None
        updates = self.inplace.updates(expr.xreplace({product: symbol}), symbol, name)
        if updates is None:
            return None
        self.equations.append((name, expr))
        note = f"{name} = {self._shown(expr)}, computed in the array of the product"
        return [(name, product.code, note)] + [("", code, None) for code in updates]

    def _by_columns(self, symbol: sp.Symbol, name: str
                    ) -> list[tuple[str, str, str | None]] | None:
        """An expression whose result has a last axis of 2-4 and an operand broadcast against
        it (`d = x[:, None] - means`, shape (n, k, 2)), one column of that axis at a time:
        numpy cannot merge the axes, so its inner loop would run over 2-4 elements
        (300 -> 90 us for (4096, 8, 2))."""
        expr = self._expression(symbol)
        item = self.item_of[symbol]
        shape = item.shape
        if expr is None or not item.dtype or not item.dtype.startswith("float") \
                or len(shape) < 2 or not 2 <= shape[-1] <= TINY_ROW \
                or _nbytes(shape, item.dtype) < COLUMNWISE_MIN_BYTES \
                or (symbol in self.s.by_symbol and _filled(self.s.by_symbol[symbol], shape)):
            return None
        shapes = {}
        for atom in expr.free_symbols:
            if isinstance(atom, Literal):
                continue
            source = self.inlined_by_name.get(atom.name, atom) if isinstance(atom, InlineCode) \
                else atom
            if source not in self.item_of:
                return None
            operand = self.item_of[source].shape
            if operand:  # (a 0-d value, often a numpy scalar, is used whole)
                shapes[atom] = (1,) * (len(shape) - len(operand)) + operand
        if not shapes or all(operand == shape for operand in shapes.values()):
            return None  # nothing broadcast: numpy runs it as one long loop already
        rows = [(name, empty_code(shape, item.dtype),
                 f"{name} = {self._shown(expr)}, one column of the last axis at a time")]
        for k in range(shape[-1]):
            columns = {atom: InlineCode(f"{atom.name}_column{k}", column_code(
                self.printer.doprint(atom), k if operand[-1] != 1 else 0,
                grouped=isinstance(atom, InlineProduct))) for atom, operand in shapes.items()}
            rows.append((column_code(name, k), self.printer.doprint(expr.xreplace(columns)),
                         None))
        self.equations.append((name, expr))
        return rows

    def _reads_only_first(self, symbol: sp.Symbol, holder: sp.Symbol,
                          sharing: set[sp.Symbol]) -> bool:
        """Whether the in-place steps of `symbol` into the array of `holder` read it (or any
        value sharing its memory, `sharing`) in their first operation only, before anything
        is written. The steps are data: what each reads is in its operands, and inlined code
        carries what it reads (`arrays_read`)."""
        expr = self._expression(symbol)
        if expr is None:
            return False  # a matrix product: BLAS would copy an operand that is its output
        names = self.s.names
        plan = self.inplace.plan(expr, names[symbol], names[holder])
        if plan is None:
            return False
        shared = {names[r] for r in sharing if r in names and r not in names.inlined}
        return not any(names[read] in shared
                       for k in range(plan.first_write + 1, len(plan.steps))
                       for read in arrays_read(names, plan.reads(k)))

    # -- blocked regions ---------------------------------------------------------------------
    def _region(self, region: BlockRegion) -> list[Statement | BlockFunction]:
        """Full arrays for the members read later, the block function, and the call."""
        names = self.s.names
        out: list[Statement | BlockFunction] = []
        for symbol in region.materialised:
            item = self.item_of[symbol]
            out.append(Statement(names[symbol], empty_code(item.shape, item.dtype),
                                 self.site_of[symbol]))
        body: list[Statement] = []
        materialised = set(region.materialised)
        sums = set(region.sums)
        for symbol in region.members:
            if symbol not in sums:
                body.extend(self.statements(
                    symbol, whole_code(names[symbol]) if symbol in materialised else None))
        returns = tuple_code([sum_code(names[self.item_of[s].deps[0]]) for s in region.sums],
                             trailing=True)
        # (a value that only renames another shares its name)
        params = list(dict.fromkeys(names[s] for s in region.sliced + region.materialised))
        function = self.s.namer.claim("block")
        out.append(BlockFunction(function, params, body, returns if region.sums else None,
                                 region.rows, region.block_rows))
        targets = [self.s.partial_sums[s] for s in region.sums]
        target = tuple_code(targets, parenthesized=len(targets) == 1)
        out.append(Statement(target, blocks_call_code(function, region.rows, region.block_rows,
                                                      params), None))
        for symbol in region.sums:
            out.extend(self.statements(symbol))
        return out

    # -- buffer reuse ------------------------------------------------------------------------
    def _buffer_items(self) -> list[BufferItem]:
        """Each value's statement position, reads and memory, for buffers.plan_reuse."""
        s = self.s
        position: dict[sp.Symbol, int] = {}
        in_region: set[sp.Symbol] = set()
        regions = [entry for entry in s.plan if isinstance(entry, BlockRegion)]
        for k, entry in enumerate(s.plan):
            if isinstance(entry, BlockRegion):
                for member in entry.members:
                    position[member] = k
                in_region.update(m for m in entry.members if m not in entry.materialised)
            else:
                position[entry] = k
        for symbol in reversed(s.order):  # an inlined value is computed by its reader
            if symbol in s.names.inlined:
                position[symbol] = position[s.readers[symbol][0]]
        items = []
        for symbol in s.order:
            item = self.item_of[symbol]
            nbytes = _nbytes(item.shape, item.dtype)
            value = s.by_symbol.get(symbol)
            expr = self._expression(symbol)
            if symbol in in_region or symbol in s.names.inlined:
                fresh, writable = False, False  # block-sized, or no name to write into
            elif any(symbol in entry.materialised for entry in regions):
                fresh, writable = True, False  # np.empty, filled by the blocks
            elif value is not None and value.expr is None:
                op = value.node.op
                fresh = OPS[op].memory is Memory.FRESH
                writable = op == "matmul" and symbol not in self.sums
            elif isinstance(expr, (sp.Symbol, InlineCode)) or (
                    value and _filled(value, s.shape_of[symbol])):
                fresh, writable = _is_constant(expr), False  # np.full, or a view
            else:
                fresh = True
                writable = nbytes >= buffers.REUSE_MIN_BYTES and any(
                    self.inplace.plan(expr, "target", buffer) is not None
                    for buffer in ["buffer"] + [s.names[d] for d in s.deps[symbol]
                                                if d in s.names and d not in s.names.inlined
                                                and self.item_of[d].shape == item.shape])
            items.append(BufferItem(symbol, position[symbol], s.deps[symbol], fresh,
                                    s.deps[symbol], nbytes, (item.shape, item.dtype), writable))
        return items


def arrays_read(names: Names, symbols: Any) -> set[sp.Symbol]:
    """The values with a statement of their own (not inlined) whose arrays code naming
    `symbols` reads: through inlined views, aliases and inlined structural code."""
    found: set[sp.Symbol] = set()
    pending = list(symbols)
    while pending:
        symbol = pending.pop()
        if isinstance(symbol, InlineCode):
            pending.extend(symbol.reads)
        elif symbol in names.inlined:
            pending.extend(names.reads.get(symbol, ()))
        elif symbol in names:
            found.add(symbol)
    return found


def _nbytes(shape: tuple[int, ...], dtype: str | None) -> int:
    if dtype is None:
        return 0
    size = 1
    for extent in shape:
        size *= extent
    return size * {"float64": 8, "float32": 4, "float16": 2, "bool": 1}.get(dtype, 8)
