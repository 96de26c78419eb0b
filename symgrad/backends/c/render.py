"""The kernel IR printed as C (templates/c/kernels.c.j2) and its Python launcher
(templates/c/launcher.py.j2). Templates own the layout; the C printer owns the element math;
the numpy printer of the numpy backend prints the structural steps between kernels.
"""
from __future__ import annotations

import builtins
import keyword
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from ...ir.graph import Node
from ...ir.ops import OPS
from ...schedule.names import Namer
from ...symbolic.lift import Value
from ..common import returned_code
from ..numpy.printer import const_array_code, float_literal, plain_code, structural_helper
from ..numpy.render import environment, one_line
from .printer import C_TYPES, FLOAT_TYPES, MATH_FUNCTIONS, CExpressionPrinter
from ..kernel_ir import (CHUNK, Kernel, LibraryStep, Reduction, KernelPlan, index_terms,
                         strided_terms)

C_KEYWORDS = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
    "union", "unsigned", "void", "volatile", "while", "bool", "true", "false", "begin", "end",
    "chunk", "i", "k", "total", "main", "free", "malloc", "NAN", "INFINITY", "isnan", "isinf",
    "isfinite", "signbit", "row", "base", "start", "stop",
}
# <math.h> names (a local `exp` would hide the function) and the C types.
_MATH_NAMES = {name + suffix for name in (*MATH_FUNCTIONS.values(), "sqrt", "pow", "fabs")
               for suffix in ("", "f")} | {"signbit", "size_t"} | set(C_TYPES.values())
RESERVED = ({"np", "numpy", "ctypes", "os"} | set(dir(builtins)) | set(keyword.kwlist)
            | set(keyword.softkwlist) | C_KEYWORDS | _MATH_NAMES)
# Kernels of fewer elements run on one thread: a parallel region's start and barrier cost
# more than the work (and far more when the machine has more runnable threads than cores:
# W3's two 262144-element float32 kernels take 0.4 and 0.8 ms on one thread, beside 18 ms
# matrix products, and stalled at a barrier on a loaded machine).
PARALLEL_MIN_ELEMENTS = 1 << 20
# ops whose library result may be a view of an operand (the op table's fact): copied as results
VIEW_OPS = frozenset(name for name, record in OPS.items() if record.memory.shares_operand)
# glibc's libmvec (x86_64): functions with vector variants, double and float.
LIBMVEC = ("exp", "log", "sin", "cos", "pow", "log1p", "expm1", "tanh", "atan", "asin", "acos",
           "sinh", "cosh", "tan", "exp2", "log2", "log10", "cbrt", "erf", "erfc", "atan2",
           "hypot", "asinh", "acosh", "atanh")
_ARGUMENTS = {"atan2": 2, "pow": 2, "hypot": 2}
# The <math.h> functions each helper of templates/c/helpers.c.j2 calls.
HELPER_CALLS = {"sigmoid": ("exp",), "softplus": ("exp", "log1p"), "logaddexp": ("exp", "log1p"),
                "logaddexp2": ("exp2", "log1p"), "xlogy": ("log",), "xlog1py": ("log1p",),
                "logit": ("log", "log1p")}


@dataclass
class Line:
    code: str
    comment: str | None = None


@dataclass
class RenderedKernel:
    name: str
    shape: list[int]
    size: int
    chunks: int
    parallel: bool
    row: int  # the length of a row of the last axis
    params: list[str]
    indices: list[tuple[str, str]]
    statements: list[Line]
    reductions: list[dict[str, Any]]
    allocation_failed: str
    arguments: list[str] = field(default_factory=list)  # launcher side, in param order
    strided: list[int] = field(default_factory=list)  # argument positions read at strides
    variant: str = ""  # "" or " reading its inputs at their strides"
    # `omp simd` (vector math): not in the strided variant, where gathers tripled gcc's time
    # for a path taken only for views
    simd: bool = True


def comment_of(node: Node) -> str | None:
    site = node.site
    if site is None:
        return None
    text = " ".join(site.text.split())
    where = f"{site.short_filename}:{site.lineno}"
    return one_line(f"{where}  {text}" if text else where).replace("*/", "* /")


def index_code(terms: list[tuple[int, int | None, int]] | None, index: str = "i") -> str:
    if terms is None:
        return index
    parts = []
    for divisor, modulus, stride in terms:
        code = index if divisor == 1 else f"{index} / {divisor}"
        if modulus is not None:
            code = f"{code} % {modulus}" if divisor == 1 else f"({code}) % {modulus}"
        if stride != 1:
            code = f"({code}) * {stride}"
        parts.append(code)
    return " + ".join(parts) or "0"


class Renderer:
    """Names every value once, then prints kernels and launcher statements."""

    # What a target's subclass changes (backends/cuda/render.py): the names no value may
    # take, the element-math printer and the spelling of the element types.
    reserved = RESERVED
    printer = CExpressionPrinter
    types = C_TYPES

    def __init__(self, plan: KernelPlan, params: list[str], hints: dict[Node, str]):
        self.plan = plan
        self.namer = Namer(self.reserved)
        self.param_names = [self.namer.claim(p) for p in params]
        self.names: dict[sp.Symbol, str] = {}
        self.helpers: set[str] = set()
        self.float_types: set[str] = set()
        self.reduction_helpers: set[tuple[str, str, str]] = set()  # (op, C type, suffix)
        self.functions: set[tuple[str, str]] = set()
        for value in plan.lifted.values:
            if value.node.op == "input":
                self.names[value.symbol] = self.param_names[value.node.param("position")]
        for value in plan.lifted.values:
            if value.symbol not in self.names and value.node in hints:
                self.names[value.symbol] = self.namer.claim(hints[value.node])
        for value in plan.lifted.values:
            if value.symbol not in self.names:
                self.names[value.symbol] = self.namer.temporary()
        self.dtypes = {v.symbol: v.node.dtype for v in plan.lifted.values}
        self._claimed: dict[tuple[str, str], str] = {}  # (kernel, wish) -> its name
        self.launcher_helpers: set[str] = set()  # the numpy helpers library steps call

    def _claim(self, kernel: Kernel, wish: str, temporary: bool = False) -> str:
        """A name local to `kernel` (`wish`, or a `tN` for a temporary), the same in both
        of its variants."""
        if (kernel.name, wish) not in self._claimed:
            self._claimed[kernel.name, wish] = (self.namer.temporary() if temporary
                                                else self.namer.claim(wish))
        return self._claimed[kernel.name, wish]

    # -- kernels -----------------------------------------------------------------------------
    def kernels(self, kernel: Kernel) -> list[RenderedKernel]:
        """The kernel, and where it reads inputs that may be views, its variant reading
        them at their strides (the launcher picks it when one is not C-contiguous)."""
        plain = self.kernel(kernel)
        if not kernel.strided_loads:
            return [plain]
        return [plain, self.kernel(kernel, strided=True)]

    def kernel(self, kernel: Kernel, strided: bool = False) -> RenderedKernel:
        texts: dict[sp.Symbol, str] = {}
        params, arguments, indices = [], [], {}
        views = {self.names[v.symbol] for v in kernel.strided_loads} if strided else set()
        for value in kernel.loads:
            name = self.names[value.symbol]
            if name in views:
                offset = self._strided_offset(value.node.shape, kernel, name, indices)
            else:
                offset = self._offset(value.node.shape, kernel, name, indices)
            texts[value.symbol] = f"{name}[{offset}]"
            if name in arguments:
                continue  # two input nodes of one parameter (a transposed pass makes its own)
            params.append(f"const {C_TYPES[value.node.dtype]} *restrict {name}")
            arguments.append(name)
        lines, last_comment = self._statements(kernel, texts)
        for value in kernel.stores:
            name = self.names[value.symbol]
            pointer = self._claim(kernel, f"out_{name}")
            params.append(f"{C_TYPES[value.node.dtype]} *restrict {pointer}")
            arguments.append(name)
            lines.append(Line(f"{pointer}[i] = {name};"))
        reductions = []
        for r in kernel.reductions:
            rendered = self._reduction(kernel, r, texts)
            params.append(f"{rendered['out_ctype']} *restrict {rendered['out']}")
            arguments.append(rendered["out"])
            comment = rendered["comment"]
            lines.append(Line(f"{rendered['terms']}[i - begin] = {texts[r.source]};",
                              None if comment == last_comment else comment))
            last_comment = comment
            reductions.append(rendered)
        failed = " || ".join(f"{r['parts']} == NULL" for r in reductions if not r["row_length"])
        viewed = {self.names[v.symbol] for v in kernel.strided_loads}
        positions = [k for k, name in enumerate(arguments) if name in viewed]
        if strided:
            params += [f"const long long *restrict {arguments[k]}_strides" for k in positions]
        return RenderedKernel(kernel.name + ("_strided" if strided else ""), list(kernel.shape),
                              kernel.size, kernel.chunks, kernel.size >= PARALLEL_MIN_ELEMENTS,
                              kernel.shape[-1] if kernel.shape else 1,
                              params,
                              [(n, c) for c, n in indices.items()], lines, reductions, failed,
                              arguments, positions,
                              " reading its inputs at their strides" if strided else "",
                              not strided)

    def _statements(self, kernel: Kernel, texts: dict[sp.Symbol, str]
                    ) -> tuple[list[Line], str | None]:
        """The kernel's element statements, each temporary just before its first reader, a
        comment where the user's line changes; and the last comment written (`texts` gains
        the members' and temporaries' names; the loads' are in it already)."""
        for value in kernel.members:
            texts[value.symbol] = self.names[value.symbol]
        dtypes = dict(self.dtypes)
        temp_dtype = self._temporary_dtypes(kernel)
        for symbol, _ in kernel.temporaries:
            texts[symbol] = self._claim(kernel, symbol.name, temporary=True)
            dtypes[symbol] = temp_dtype[symbol]
        lines: list[Line] = []
        last_comment = None
        pending = list(kernel.temporaries)
        for value in kernel.members:
            needed = _needed_temporaries(value.expr, pending)
            comment = comment_of(value.node)
            for symbol, expr in needed:
                lines.append(self._assign(texts[symbol], dtypes[symbol], expr, texts, dtypes,
                                          None if comment == last_comment else comment))
                last_comment = comment
            pending = [p for p in pending if p not in needed]
            lines.append(self._assign(texts[value.symbol], value.node.dtype, value.expr, texts,
                                      dtypes, None if comment == last_comment else comment))
            last_comment = comment
        return lines, last_comment

    def _strided_offset(self, shape: tuple[int, ...], kernel: Kernel, name: str,
                        offsets: dict[str, str]) -> str:
        """Where a view of `shape` with strides `<name>_strides` (in elements, any sign, 0
        where numpy broadcast it) is read at loop index i: its row offset once a row, then
        along the row at its last stride."""
        loop = kernel.shape or (1,)
        row = loop[-1]
        outer, along = [], None
        for axis, divisor, modulus in strided_terms(tuple(shape), loop):
            stride = f"{name}_strides[{axis}]"
            if divisor == 1:
                along = stride
                continue
            code = "row" if divisor == row else f"row / {divisor // row}"
            if modulus is not None:
                code = f"({code}) % {modulus}" if "/" in code else f"{code} % {modulus}"
            outer.append(f"({code}) * {stride}")
        offset = "0"
        if outer:
            code = " + ".join(outer)
            if code not in offsets:
                offsets[code] = self._claim(kernel, f"row_{name}")
            offset = offsets[code]
        if along is None:
            return offset
        return f"(i - base) * {along}" if offset == "0" else f"{offset} + (i - base) * {along}"

    def _offset(self, shape: tuple[int, ...], kernel: Kernel, name: str,
                offsets: dict[str, str]) -> str:
        """Where a buffer of `shape` is read at loop index i. The loop runs a row of the last
        axis at a time (`row`, starting at flat index `base`): an operand broadcast along the
        leading axes has its row offset computed once a row, and reads along the row are
        contiguous (vector loads, not gathers)."""
        if tuple(shape) == tuple(kernel.shape):
            return "i"
        loop = kernel.shape or (1,)
        aligned = (1,) * (len(loop) - len(shape)) + tuple(shape)
        along_row = aligned[-1] == loop[-1] != 1
        outer = index_code(index_terms(aligned[:-1], loop[:-1]), "row")
        if outer != "0" and aligned[-1] != 1:
            outer = f"({outer}) * {aligned[-1]}" if " " in outer else f"{outer} * {aligned[-1]}"
        if outer != "0":
            if outer not in offsets:
                offsets[outer] = self._claim(kernel, f"row_{name}")
            outer = offsets[outer]
        if not along_row:
            return outer
        return "i - base" if outer == "0" else f"{outer} + (i - base)"

    def _temporary_dtypes(self, kernel: Kernel) -> dict[sp.Symbol, str]:
        """A CSE temporary is computed in the type of the first member that reads it."""
        result: dict[sp.Symbol, str] = {}
        readers: list[tuple[sp.Expr, str]] = [(e, "") for _, e in kernel.temporaries]
        readers += [(v.expr, v.node.dtype) for v in kernel.members]
        for symbol, expr in kernel.temporaries:
            if isinstance(expr, sp.logic.boolalg.Boolean) and not isinstance(expr, sp.Symbol):
                result[symbol] = "bool"
                continue
            for reader, dtype in readers[len(kernel.temporaries):]:
                if reader.has(symbol) and dtype in FLOAT_TYPES:
                    result[symbol] = dtype
                    break
            else:
                floats = [v.node.dtype for v in kernel.members if v.node.dtype in FLOAT_TYPES]
                result[symbol] = floats[0] if floats else "float64"
        return result

    def _assign(self, name: str, dtype: str, expr: sp.Expr, texts: dict, dtypes: dict,
                comment: str | None) -> Line:
        printer = self.printer(dtype, texts, dtypes)
        code = printer.doprint(expr)
        self.helpers |= printer.helpers
        self.functions |= printer.functions
        if dtype in FLOAT_TYPES:
            self.float_types.add(dtype)
        return Line(f"const {self.types[dtype]} {name} = {code};", comment)

    def _reduction(self, kernel: Kernel, r: Reduction, texts: dict) -> dict[str, Any]:
        name = self.names[r.value.symbol]
        dtype = r.value.node.dtype
        ctype = "double" if r.op == "sum" and dtype == "float32" else C_TYPES[dtype]
        op = {"sum": "sum", "max": "maximum", "min": "minimum"}[r.op]
        self.reduction_helpers.add((op, ctype, "f" if ctype == "float" else ""))
        if r.op != "sum":  # numpy's NaN-propagating maximum/minimum, in the element type
            self.helpers.add({"max": "Max", "min": "Min"}[r.op])
            self.float_types.add(dtype)
        suffix = "f" if ctype == "float" else ""
        identity = {"sum": "0", "max": "-INFINITY", "min": "INFINITY"}[r.op]
        row_length = _row_length(r.kept_shape, kernel.shape)
        return {
            "row_length": row_length,
            "parts": self._claim(kernel, f"{name}_parts"),
            "terms": self._claim(kernel, f"{name}_terms"),
            "row": self._claim(kernel, f"{name}_row"),
            "out": name, "out_ctype": C_TYPES[dtype], "ctype": ctype,
            "full": r.full, "size": r.size,
            "parts_size": kernel.chunks * r.size,
            "out_index": index_code(index_terms(r.kept_shape, kernel.shape)),
            "identity": identity,
            "combine": f"sg_{op}_{ctype}" if r.op == "sum" else f"sg_{op}{suffix}",
            "combine_terms": f"sg_{op}_terms_{ctype}",
            "combine_parts": f"sg_{op}_terms_{ctype}",
            "comment": comment_of(r.value.node),
        }

    def helper_functions(self) -> set[tuple[str, str]]:
        """The <math.h> functions the helpers used call, in each float type used."""
        calls = set()
        for helper in self.helpers:
            for name in HELPER_CALLS.get(helper, ()):
                for dtype in self.float_types:
                    single = dtype == "float32"
                    calls.add((name + ("f" if single else ""), "float" if single else "double"))
        return calls

    # -- the launcher ------------------------------------------------------------------------
    def library_step(self, value: Value, loaded: set[Value],
                     constants: list[tuple[str, str]]) -> list[Line]:
        """The launcher's line computing a value by the array library (a constant array goes
        to `constants`): contiguous where a kernel loads it, a copy where a result would be a
        view."""
        node, name = value.node, self.names[value.symbol]
        if node.op == "const" and value.expr is None:
            constants.append((name, const_array_code(node.param("value"))))
            return []
        if value.expr is not None:
            return [Line(f"{name} = {constant_code(value)}", comment_of(node))]
        of_node = self.plan.lifted.of_node
        code = plain_code(node, *[self.names[of_node[i].symbol] for i in node.inputs])
        helper = structural_helper(node)
        if helper is not None:
            self.launcher_helpers.add(helper)
        if value in loaded:
            code = f"np.ascontiguousarray({code}, dtype=np.{node.dtype})"
        elif node.op in VIEW_OPS and value in self.plan.lifted.outputs:
            code = f"np.array({code})"
        return [Line(f"{name} = {code}", comment_of(node))]

    def launcher(self, rendered: dict[Kernel, RenderedKernel]
                 ) -> tuple[list[Line], list[tuple[str, str]]]:
        lines: list[Line] = []
        constants: list[tuple[str, str]] = []
        loaded = {v for step in self.plan.steps if isinstance(step, Kernel) for v in step.loads}
        for value in self.plan.lifted.values:
            if value.node.op == "input" and value in loaded:
                name = self.names[value.symbol]
                lines.append(Line(f"{name} = np.asarray({name})"))  # a view stays a view
        for step in self.plan.steps:
            if isinstance(step, LibraryStep):
                lines.extend(self.library_step(step.value, loaded, constants))
                continue
            kernel = rendered[step]
            for value in step.stores + [r.value for r in step.reductions]:
                node = value.node
                lines.append(Line(f"{self.names[value.symbol]} = np.empty({node.shape}, "
                                  f"dtype=np.{node.dtype})"))
            lines.append(Line(f"_launch({', '.join([kernel.name] + kernel.arguments)})"))
        return lines, constants


def constant_code(value: Any) -> str:
    """A value that reads nothing (a seed, the zeros of a disconnected gradient): a fill."""
    expr, node = value.expr, value.node
    if expr == sp.true or expr == sp.false:
        literal = "True" if expr == sp.true else "False"
    elif hasattr(expr, "value"):
        literal = float_literal(expr.value)
    elif node.dtype in FLOAT_TYPES:
        literal = float_literal(float(expr))
    else:
        literal = str(int(expr))
    return f"np.full({node.shape}, {literal}, dtype=np.{node.dtype})"


def returns_code(structure: Any, plan: KernelPlan, names: dict[sp.Symbol, str],
                 lines: list[Line], namer: Namer) -> str:
    copied: dict[str, str] = {}

    def leaf(index: int) -> str:
        value = plan.lifted.outputs[index]
        name = names[value.symbol]
        if value.node.op == "input":
            if name not in copied:
                copied[name] = namer.claim(f"{name}_copy")
                lines.append(Line(f"{copied[name]} = {name}.copy()"))
            return copied[name]
        return f"{name}[()]" if value.node.shape == () else name

    return returned_code(structure, leaf)


def simd_declarations(functions: set[tuple[str, str]]) -> list[str]:
    """`extern double exp(double)` lines for the libmvec functions the kernels call."""
    lines = []
    for name, ctype in sorted(functions):
        base = name[:-1] if ctype == "float" else name
        if base in LIBMVEC:
            args = ", ".join([ctype] * _ARGUMENTS.get(base, 1))
            lines.append(f"extern {ctype} {name}({args})")
    return lines


def render(plan: KernelPlan, params: list[str], hints: dict[Node, str], structure: Any,
           function_name: str, header: dict[str, Any]) -> tuple[str, str, list[tuple[str, int]]]:
    """(the .c text, the launcher text, the kernels as (name, argument count))."""
    renderer = Renderer(plan, params, hints)
    kernels = [step for step in plan.steps if isinstance(step, Kernel)]
    variants = {k: renderer.kernels(k) for k in kernels}
    rendered = {k: v[0] for k, v in variants.items()}
    lines, constants = renderer.launcher(rendered)
    returns = returns_code(structure, plan, renderer.names, lines, renderer.namer)
    types = [(C_TYPES[t], "f" if t == "float32" else "") for t in FLOAT_TYPES
             if t in renderer.float_types]
    env = environment()
    c_text = env.get_template("c/kernels.c.j2").render(
        header=header, chunk=CHUNK, kernels=[r for k in kernels for r in variants[k]],
        simd_functions=simd_declarations(renderer.functions | renderer.helper_functions()),
        helpers=sorted(renderer.helpers), types=types,
        reduction_helpers=sorted(renderer.reduction_helpers))
    table = [(r.name, len(r.arguments), _tuple_code(r.strided)) for r in rendered.values()]
    launcher = env.get_template("c/launcher.py.j2").render(
        header=header, constants=constants, kernels=table, function_name=function_name,
        params=renderer.param_names, statements=lines, returns=returns,
        helpers=sorted(renderer.launcher_helpers))
    return c_text, launcher, table



def _row_length(kept: tuple[int, ...], loop: tuple[int, ...]) -> int | None:
    """The length of the rows a reduction over trailing axes reduces (softmax's sums and
    maxima: each row is whole in one chunk, reduced there in order and written out, with no
    partials), when the chunk is a whole number of rows; else None."""
    j = len(loop)
    while j > 0 and kept[j - 1] == 1:
        j -= 1
    if tuple(kept[:j]) != tuple(loop[:j]) or j == 0:
        return None
    length = 1
    for d in loop[j:]:
        length *= d
    return length if length > 1 and CHUNK % length == 0 else None


def _tuple_code(items: list[int]) -> str:
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(map(str, items))})"


def _needed_temporaries(expr: sp.Expr, pending: list[tuple[sp.Symbol, sp.Expr]]
                        ) -> list[tuple[sp.Symbol, sp.Expr]]:
    """The CSE temporaries not yet computed that `expr` reads, directly or through others,
    in their computing order (each just before its first reader)."""
    wanted = set(expr.free_symbols)
    needed = []
    for symbol, definition in reversed(pending):
        if symbol in wanted:
            needed.append((symbol, definition))
            wanted |= definition.free_symbols
    return needed[::-1]
