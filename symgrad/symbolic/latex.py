"""The generated statements as pure LaTeX math, for `math(latex=True)` and notebooks.

SymPy's LaTeX printer writes the elementwise expressions; the structural statements and the
structural code inlined into expressions (`h @ w2`, `t1.sum()`, `x[:, None]`, `np.einsum(...)`)
are read back from their plain Python form (`ast`, never `eval`) and written as math: a matrix
product as juxtaposition, a sum as a sum sign over the axes it reduces, `.T` as a transpose,
an einsum in index notation, any other numpy function as an operator name. Names become math
too: `b_bar` is b with a bar, `t0` is t with subscript 0. Nothing is printed as code or in
`\\texttt`, so MathJax and KaTeX typeset every line.
"""
from __future__ import annotations

import ast
import re
from typing import Any, Callable, Sequence

import sympy as sp
from sympy.printing.latex import LatexPrinter

# numpy function -> LaTeX operator; everything else is \operatorname{name}.
OPERATORS = {"exp": r"\exp", "log": r"\log", "sin": r"\sin", "cos": r"\cos", "tan": r"\tan",
             "tanh": r"\tanh", "sinh": r"\sinh", "cosh": r"\cosh", "arctan": r"\arctan",
             "max": r"\max", "min": r"\min", "amax": r"\max", "amin": r"\min",
             "maximum": r"\max", "minimum": r"\min"}
REDUCTIONS = {"sum": r"\sum", "max": r"\max", "min": r"\min", "amax": r"\max", "amin": r"\min",
              "prod": r"\prod", "mean": r"\operatorname{mean}"}
BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: r"\cdot"}


def name_latex(name: str) -> str:
    """`b_bar` -> `\\bar{b}`, `w2_bar` -> `\\bar{w}_{2}`, `t0` -> `t_{0}`, `value` -> `\\mathit{value}`."""
    if name.endswith("_bar") and len(name) > 4:
        base = name_latex(name[:-4])
        head, sub = (base.split("_", 1) + [""])[:2] if not base.startswith("\\") else (base, "")
        return rf"\bar{{{head}}}" + (f"_{sub}" if sub else "")
    match = re.fullmatch(r"([A-Za-z]+)_?(\d+)", name)
    if match:
        return f"{_word(match[1])}_{{{match[2]}}}"
    if "_" in name:
        head, tail = name.split("_", 1)
        return f"{_word(head)}_{{{name_latex(tail)}}}" if head else _word(name)
    return _word(name)


def _word(text: str) -> str:
    text = text.replace("_", r"\_")
    return text if len(text) <= 1 else rf"\mathit{{{text}}}"


# ---------------------------------------------------------------------------------------------
# plain numpy code -> math
# ---------------------------------------------------------------------------------------------
def code_latex(code: str) -> str:
    try:
        tree = ast.parse(code.strip(), mode="eval").body
    except SyntaxError:
        return r"\mathrm{(expression)}"
    return _CodeToLatex().visit(tree)


class _CodeToLatex(ast.NodeVisitor):
    def generic_visit(self, node: ast.AST) -> str:
        return r"\mathrm{(expression)}"

    def atom(self, node: ast.AST) -> str:
        text = self.visit(node)
        simple = isinstance(node, (ast.Name, ast.Constant, ast.Subscript, ast.Call)) or (
            isinstance(node, ast.Attribute) and node.attr == "T")
        return text if simple else rf"\left({text}\right)"

    def visit_Name(self, node: ast.Name) -> str:
        return name_latex(node.id)

    def visit_Constant(self, node: ast.Constant) -> str:
        if isinstance(node.value, str):
            return rf"\mathrm{{{node.value}}}"
        if isinstance(node.value, bool) or node.value is None:
            return rf"\mathrm{{{node.value}}}"
        return sp.latex(sp.sympify(node.value))

    def visit_Tuple(self, node: ast.Tuple) -> str:
        return "(" + ", ".join(self.visit(e) for e in node.elts) + ("," if len(node.elts) == 1
                                                                   else "") + ")"

    def visit_UnaryOp(self, node: ast.UnaryOp) -> str:
        sign = {ast.USub: "-", ast.UAdd: "+", ast.Not: r"\lnot "}.get(type(node.op))
        return f"{sign}{self.atom(node.operand)}" if sign else self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> str:
        left, right = node.left, node.right
        if isinstance(node.op, ast.MatMult):
            return rf"{self.atom(left)} \, {self.atom(right)}"
        if isinstance(node.op, ast.Div):
            return rf"\frac{{{self.visit(left)}}}{{{self.visit(right)}}}"
        if isinstance(node.op, ast.Pow):
            return f"{self.base(left)}^{{{self.visit(right)}}}"
        if type(node.op) in BINARY:
            wrap = self.visit if isinstance(node.op, (ast.Add, ast.Sub)) else self.atom
            return f"{wrap(left)} {BINARY[type(node.op)]} {self.atom(right)}"
        return self.generic_visit(node)

    def base(self, node: ast.AST) -> str:
        """An operand that takes a sub- or superscript: braced if it already has one."""
        text = self.atom(node)
        return f"{{{text}}}" if not text.startswith(r"\left(") and ("_" in text or "^" in text) \
            else text

    def visit_Attribute(self, node: ast.Attribute) -> str:
        if node.attr == "T":
            return rf"{self.base(node.value)}^{{\mathsf{{T}}}}"
        return rf"\operatorname{{{node.attr}}}\left({self.visit(node.value)}\right)"

    def visit_Subscript(self, node: ast.Subscript) -> str:
        index = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        separator = r",\,"
        return f"{self.base(node.value)}_{{{separator.join(self._index(i) for i in index)}}}"

    def _index(self, node: ast.AST) -> str:
        if isinstance(node, ast.Constant) and node.value is None:
            return r"\mathrm{new}"
        if isinstance(node, ast.Constant) and node.value is Ellipsis:
            return r"\ldots"
        if isinstance(node, ast.Slice):
            parts = [self.visit(p) if p is not None else "" for p in (node.lower, node.upper)]
            step = f":{self.visit(node.step)}" if node.step is not None else ""
            return ":".join(parts) + step
        return self.visit(node)

    def visit_Call(self, node: ast.Call) -> str:
        function = node.func
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        if isinstance(function, ast.Attribute) and not _is_numpy(function.value):
            # a method: x.sum(axis=1), x.reshape(...), x.astype(...)
            return self._function(function.attr, [function.value, *node.args], keywords)
        name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id",
                                                                                   "")
        return self._function(name, list(node.args), keywords)

    def _function(self, name: str, args: list[ast.AST], keywords: dict[str, ast.AST]) -> str:
        if name == "einsum" and args and isinstance(args[0], ast.Constant):
            return self._einsum(args[0].value, args[1:])
        if name in ("matmul", "dot") and len(args) == 2 and "out" not in keywords:
            return rf"{self.atom(args[0])} \, {self.atom(args[1])}"
        if name == "transpose" and len(args) == 1:
            return rf"{self.base(args[0])}^{{\mathsf{{T}}}}"
        if name == "sqrt" and len(args) == 1:
            return rf"\sqrt{{{self.visit(args[0])}}}"
        if name in ("astype", "asarray", "array", "copy", "ascontiguousarray") and args:
            return self.visit(args[0])
        under = self._keywords(keywords)
        if name in REDUCTIONS and len(args) == 1:
            axis = self._axis(keywords)
            return f"{REDUCTIONS[name]}_{{{axis}}} {self.atom(args[0])}" if axis else \
                f"{REDUCTIONS[name]} {self.atom(args[0])}"
        escaped = name.replace("_", r"\_")
        operator = OPERATORS.get(name, rf"\operatorname{{{escaped}}}")
        if under:
            operator += f"_{{{under}}}"
        return rf"{operator}\left({', '.join(self.visit(a) for a in args)}\right)"

    def _axis(self, keywords: dict[str, ast.AST]) -> str:
        axis = keywords.get("axis")
        if axis is None:
            return ""
        return rf"\text{{axis }} {self.visit(axis)}"

    def _keywords(self, keywords: dict[str, ast.AST]) -> str:
        shown = {k: v for k, v in keywords.items() if k not in ("out", "dtype", "keepdims",
                                                                "axis")}
        if "axis" in keywords:
            shown = {"axis": keywords["axis"], **shown}
        return r",\,".join(rf"\text{{{k.replace('_', ' ')}}}={self.visit(v)}"
                           for k, v in shown.items())

    def _einsum(self, spec: str, operands: Sequence[ast.AST]) -> str:
        """`np.einsum('ij,ij->i', a, b)` -> sum over j of a_ij b_ij."""
        inputs, _, output = spec.replace(" ", "").partition("->")
        letters = inputs.split(",")
        if len(letters) != len(operands) or not output and "->" not in spec:
            return r"\operatorname{einsum}\left(\ldots\right)"
        summed = sorted(set("".join(letters)) - set(output))
        terms = " ".join(f"{self.base(o)}_{{{ix}}}" if ix else self.atom(o)
                         for o, ix in zip(operands, letters))
        return (rf"\sum_{{{''.join(summed)}}} {terms}" if summed else terms)


def _is_numpy(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id in ("np", "numpy") or (
        isinstance(node, ast.Attribute) and _is_numpy(node.value))


# ---------------------------------------------------------------------------------------------
# SymPy expressions (with inlined structural code) -> math
# ---------------------------------------------------------------------------------------------
class MathLatexPrinter(LatexPrinter):
    """SymPy's LaTeX, with generated names as math and inlined structural code as math."""

    def __init__(self, names: dict[Any, str]):
        super().__init__({"mul_symbol": None})
        self.names = names

    def _print_Symbol(self, symbol: sp.Symbol, style: str = "plain") -> str:
        code = getattr(symbol, "plain", None) or getattr(symbol, "code", None)
        if code is not None:  # (a product is parenthesized by its precedence, as in code)
            return code_latex(code)
        return name_latex(self.names.get(symbol, symbol.name))

    _print_Dummy = _print_Symbol


def equation_latex(target: str, rhs: Any, names: dict[Any, str],
                   printer: Callable[[Any], str] | None = None) -> tuple[str, str]:
    """(left side, right side) of one statement, both LaTeX."""
    if isinstance(rhs, str):
        right = code_latex(rhs)
    else:
        right = (printer or MathLatexPrinter(names).doprint)(rhs)
    return name_latex(target), right


def program_latex(equations: Sequence[tuple[str, Any]], names: dict[Any, str],
                  aligned: bool = False) -> str:
    """One `left = right` line a statement, or (aligned) one `aligned` environment."""
    printer = MathLatexPrinter(names).doprint
    pairs = [equation_latex(target, rhs, names, printer) for target, rhs in equations]
    if aligned:
        body = " \\\\\n".join(f"{left} &= {right}" for left, right in pairs)
        return f"\\begin{{aligned}}\n{body}\n\\end{{aligned}}"
    return "".join(f"{left} = {right}\n" for left, right in pairs)
