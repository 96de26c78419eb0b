"""Printers: SymPy expressions and structural ops as numpy source text.

`NumpyExpressionPrinter` subclasses SymPy's `NumPyPrinter`: numpy names in tables, floats
printed so they round-trip (`repr`), `Piecewise` as nested `np.where` (never `np.select`, which
evaluates and warns on every branch), and the stable primitives as numpy calls or helpers.
`STRUCTURAL` holds one formatter per structural op. Nothing outside this module turns values
into code.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import sympy as sp
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE

from ...ir.graph import Node
from ...symbolic.expressions import Literal

# SymPy function class name -> numpy function, for one-to-one calls.
NUMPY_FUNCTIONS = {
    "exp": "exp", "log": "log", "sin": "sin", "cos": "cos", "tan": "tan", "asin": "arcsin",
    "acos": "arccos", "atan": "arctan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh",
    "asinh": "arcsinh", "acosh": "arccosh", "atanh": "arctanh", "Abs": "abs", "sign": "sign",
    "floor": "floor", "ceiling": "ceil", "rint": "rint", "trunc": "trunc", "cbrt": "cbrt",
    "log1p": "log1p", "expm1": "expm1", "exp2": "exp2", "log2": "log2", "log10": "log10",
    "hypot": "hypot", "atan2": "arctan2", "logaddexp": "logaddexp", "logaddexp2": "logaddexp2",
    "arctan2": "arctan2", "fmax": "fmax", "fmin": "fmin", "clip": "clip", "real_log": "log",
    "remainder": "remainder", "fmod": "fmod", "floor_divide": "floor_divide",
}

# Helpers defined in the generated module (their text lives in the templates).
HELPER_FUNCTIONS = {
    "sigmoid": "_sigmoid", "reciprocal_or_zero": "_reciprocal_or_zero",
    "divide_or_zero": "_divide_or_zero", "logit": "_logit",
    "xlogy": "_xlogy", "xlog1py": "_xlog1py", "erf": "_erf", "erfc": "_erfc",
    "gammaln": "_gammaln", "digamma": "_digamma", "trigamma": "_trigamma",
}


def common_divisor(expr: sp.Add) -> tuple[sp.Rational | None, sp.Expr]:
    """(1/q, the sum times q) when every term is divided by the same q: (a + b)/2 for a/2 + b/2.
    Not for x - s/512, which as (512*x - s)/512 would cost a multiplication per element."""
    content, primitive = expr.primitive()
    if content.is_Rational and content.p == 1 and content.q != 1 and primitive.is_Add and all(
            abs(term.as_coeff_Mul()[0]) == 1 for term in primitive.args):
        return content, primitive
    return None, expr


class NumpyExpressionPrinter(NumPyPrinter):
    """SymPy -> numpy source, with names for symbols and a record of helpers used."""

    printmethod = "_symgrad_numpycode"

    def __init__(self, names: dict[sp.Symbol, str]):
        super().__init__({"fully_qualified_modules": True, "inline": True,
                          "allow_unknown_functions": False})
        self.names = names
        self.helpers: set[str] = set()
        self.float_dtype: str | None = None  # the dtype of the statement being printed

    def _print(self, expr: Any, **kwargs: Any) -> str:
        # A constant like log(2) or logaddexp(0, 0) becomes a float literal: numpy would
        # evaluate np.log(2) to a float64 scalar, which is "strong" and would upcast float32.
        if isinstance(expr, sp.Expr) and not isinstance(expr, (sp.Rational, sp.Float, Literal)) \
                and expr.is_number:
            folded = self._fold_constant(expr)
            if folded is not None:
                return float_literal(folded)
        return super()._print(expr, **kwargs)

    def _fold_constant(self, expr: sp.Expr) -> float | None:
        """The value of a constant expression: by SymPy, or else by numpy on its printed code
        (functions SymPy cannot evaluate, such as logaddexp); None if neither can."""
        if expr.is_real:
            try:
                return float(expr)
            except (TypeError, ValueError):
                pass
        helpers = set(self.helpers)
        try:
            with np.errstate(all="ignore"):
                value = eval(super()._print(expr), {"np": np})  # our own code, numpy only
        except Exception:
            return None
        finally:
            self.helpers = helpers
        value = np.asarray(value)
        return float(value) if value.shape == () and value.dtype.kind == "f" else None

    def _module_format(self, fqn: str, register: bool = True) -> str:
        return "np." + fqn.split(".", 1)[1] if fqn.startswith("numpy.") else fqn

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        return self.names.get(expr, expr.name)

    _print_Dummy = _print_Symbol

    def _print_Literal(self, expr: Literal) -> str:
        return float_literal(expr.value)

    def _print_Float(self, expr: sp.Float) -> str:
        return float_literal(float(expr))

    def _print_Rational(self, expr: sp.Rational) -> str:
        return f"{expr.p}/{expr.q}"

    def _print_InlineCode(self, expr: "InlineCode") -> str:
        return expr.code

    def _print_Add(self, expr: sp.Add, order: Any = None) -> str:
        content, primitive = common_divisor(expr)
        if content is not None:
            return f"({self._print_Add(primitive)})/{content.q}"
        terms = sorted(self._as_ordered_terms(expr, order=None),
                       key=lambda t: t.could_extract_minus_sign())
        code = ""
        for term in terms:
            negative = term.could_extract_minus_sign()
            text = self.parenthesize(-term if negative else term, PRECEDENCE["Add"],
                                     strict=True)
            if not code:
                code = f"-{text}" if negative else text
            else:
                code += f" - {text}" if negative else f" + {text}"
        return code

    def _print_Mul(self, expr: sp.Mul) -> str:
        coefficient, rest = expr.as_coeff_Mul()
        if coefficient.is_Rational and not coefficient.is_Integer and abs(coefficient.p) == 1:
            sign = "-" if coefficient.p < 0 else ""
            # strict: a product needs no parentheses before /q (y*np.exp(-t)/16)
            rest_code = self.parenthesize(rest, PRECEDENCE["Mul"], strict=True)
            return f"{sign}{rest_code}/{coefficient.q}"
        squares = [f for f in expr.args if isinstance(f, sp.Pow) and f.exp in (-2, -3)]
        if squares:
            # x/b/b, not x/b**2: b**2 overflows or underflows long before x/b/b does (the
            # gradient of a/b at b = 1e-300 is finite).
            divisor = squares[0]
            others = sp.Mul(*[f for f in expr.args if f is not divisor])
            sign = "-" if others.could_extract_minus_sign() else ""
            numerator = self.parenthesize(-others if sign else others, PRECEDENCE["Mul"],
                                          strict=True)
            return sign + numerator + self._repeated_division(divisor)
        return super()._print_Mul(expr)

    def _print_Function(self, expr: sp.Function) -> str:
        name = type(expr).__name__
        args = ", ".join(self._print(a) for a in expr.args)
        if name in NUMPY_FUNCTIONS:
            return f"np.{NUMPY_FUNCTIONS[name]}({args})"
        if name in HELPER_FUNCTIONS:
            self.helpers.add(name)
            return f"{HELPER_FUNCTIONS[name]}({args})"
        raise NotImplementedError(f"no numpy printer for {name}")

    _print_exp = _print_log = _print_sin = _print_cos = _print_tan = _print_Function
    _print_asin = _print_acos = _print_atan = _print_sinh = _print_cosh = _print_Function
    _print_tanh = _print_asinh = _print_acosh = _print_atanh = _print_Abs = _print_Function
    _print_sign = _print_floor = _print_ceiling = _print_log1p = _print_expm1 = _print_Function
    _print_exp2 = _print_log2 = _print_log10 = _print_hypot = _print_atan2 = _print_Function
    _print_sigmoid = _print_logaddexp = _print_logaddexp2 = _print_Function
    _print_cbrt = _print_rint = _print_trunc = _print_Function
    _print_remainder = _print_fmod = _print_floor_divide = _print_Function
    _print_real_log = _print_arctan2 = _print_fmax = _print_fmin = _print_clip = _print_Function
    _print_reciprocal_or_zero = _print_divide_or_zero = _print_logit = _print_xlogy = _print_xlog1py = _print_Function
    _print_erf = _print_erfc = _print_gammaln = _print_digamma = _print_trigamma = _print_Function

    def _print_unfolded(self, expr: sp.Function) -> str:
        """`x - x`, `0*x`, `x/x` as computed (NaN where x is), not SymPy's constant."""
        _, a, b = expr.args
        symbol = f" {expr.operator} " if expr.operator in "+-" else expr.operator
        return self._infix(a, symbol, b, expr.level)

    def _print_true_divide(self, expr: sp.Function) -> str:
        return self._infix(*expr.args[:1], "/", expr.args[1], PRECEDENCE["Mul"])

    def _infix(self, a: sp.Expr, symbol: str, b: sp.Expr, level: int) -> str:
        """a <symbol> b, left-associative: b is parenthesized at its operator's own level."""
        return self.parenthesize(a, level, strict=True) + symbol + self.parenthesize(b, level)

    def _print_FloatTest(self, expr: sp.Basic) -> str:
        return f"np.{type(expr).__name__}({self._print(expr.args[0])})"

    _print_isnan = _print_isinf = _print_isfinite = _print_signbit = _print_FloatTest

    def _print_kept_power(self, expr: sp.Function) -> str:
        return self._print_Pow(sp.Pow(*expr.args, evaluate=False))

    def _print_traced_power(self, expr: sp.Function) -> str:
        return self._print_Pow(sp.Pow(*expr.args, evaluate=False))

    def _print_softplus(self, expr: sp.Function) -> str:
        return f"np.logaddexp(0, {self._print(expr.args[0])})"

    def _print_sigmoid_given_exp(self, expr: sp.Function) -> str:
        a, e = expr.args
        return f"np.exp(np.minimum({self._print(a)}, 0))/{self.parenthesize(1 + e, PRECEDENCE['Mul'])}"

    def _print_Heaviside(self, expr: sp.Heaviside) -> str:
        return f"np.heaviside({self._print(expr.args[0])}, 0.5)"

    def _print_Max(self, expr: sp.Max) -> str:
        return self._nested("np.maximum", expr.args)

    def _print_Min(self, expr: sp.Min) -> str:
        return self._nested("np.minimum", expr.args)

    def _nested(self, function: str, args: Sequence[sp.Expr]) -> str:
        printed = [self._print(a) for a in sorted(args, key=sp.default_sort_key)]
        code = printed[-1]
        for a in reversed(printed[:-1]):
            code = f"{function}({a}, {code})"
        return code

    def _repeated_division(self, power: sp.Pow) -> str:
        base = self.parenthesize(power.base, PRECEDENCE["Mul"])  # /(x*y), never /x*y
        return f"/{base}" * int(-power.exp)

    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        base, exponent = expr.args
        if exponent in (-2, -3):
            return "1" + self._repeated_division(expr)
        if exponent == sp.S.Half:
            return f"np.sqrt({self._print(base)})"
        if exponent == -sp.S.Half:
            return f"1/np.sqrt({self._print(base)})"
        if exponent == -1:
            return f"1/{self.parenthesize(base, PRECEDENCE['Mul'])}"
        return super()._print_Pow(expr, rational=rational)

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        *branches, (last_value, last_condition) = expr.args
        if last_condition != sp.true:
            raise NotImplementedError("Piecewise without a default branch")
        # np.where(c, 1, 0) is an int64 array, which would make float32 arrays float64: with
        # numbers in every branch, they are typed as the statement's float dtype.
        typed = self.float_dtype not in (None, "float64") and all(
            v.is_number for v, _ in expr.args)
        value_code = (lambda v: f"np.{self.float_dtype}({self._print(v)})") if typed \
            else self._print
        code = value_code(last_value)
        for value, condition in reversed(branches):
            code = f"np.where({self._print(condition)}, {value_code(value)}, {code})"
        return code

    def _print_Relational(self, expr: sp.core.relational.Relational) -> str:
        ops = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
        return f"({self._print(expr.lhs)} {ops[expr.rel_op]} {self._print(expr.rhs)})"

    def _print_And(self, expr: sp.And) -> str:
        return self._nested("np.logical_and", expr.args)

    def _print_Or(self, expr: sp.Or) -> str:
        return self._nested("np.logical_or", expr.args)

    def _print_Xor(self, expr: sp.Xor) -> str:
        return self._nested("np.logical_xor", expr.args)

    def _print_Not(self, expr: sp.Not) -> str:
        return f"np.logical_not({self._print(expr.args[0])})"

    def _print_BooleanTrue(self, expr: Any) -> str:
        return "True"

    def _print_BooleanFalse(self, expr: Any) -> str:
        return "False"


class InlineCode(sp.Symbol):
    """A structural op's code placed inside the one expression that reads it (`x @ w + b`).

    `precedence` tells SymPy's printer when to parenthesize: a matrix product binds like `*`
    but must be parenthesized inside products (`y*(x @ w)`); views and calls are atoms.
    """

    precedence = PRECEDENCE["Atom"]
    plain: str  # the code as a reader expects it (printer.plain_code), for the math view
    reads: frozenset  # the values whose names the code holds (lower.py): buffer-reuse safety
    plain_infix: bool  # whether `plain` has an operator outside brackets (`x @ w`)

    def __new__(cls, name: str, code: str, reads: frozenset = frozenset(),
                plain: str | None = None, plain_infix: bool = False):
        # Not Symbol's cached constructor, and everything it carries is part of equality and
        # hashing: otherwise SymPy's caches (tanh(...), products) hand back an equal one from
        # an earlier compilation, with that compilation's code, plain form and reads (`h @ w`
        # reading the parameter h there, a computed h here: a wrong buffer-reuse answer).
        obj = sp.Symbol.__xnew__(cls, name, real=True)
        obj.code = code
        obj.reads = frozenset(reads)
        obj.plain = plain or code
        obj.plain_infix = plain_infix
        return obj

    def __getnewargs_ex__(self):  # (Symbol's passes the assumptions as keywords)
        return (self.name, self.code, self.reads, self.plain, self.plain_infix), {}

    def _hashable_content(self):
        return super()._hashable_content() + (self.code, self.reads, self.plain,
                                              self.plain_infix)


class InlineProduct(InlineCode):
    precedence = PRECEDENCE["Mul"] - 1


def inline_code(node: Node, name: str, code: str, plain: str | None = None,
                reads: frozenset = frozenset(), exact: bool = False) -> InlineCode:
    """`node`'s code inside its reader. A matrix product, or an einsum spelled as one
    (`x @ y`), binds like `*`: parenthesized as an operand of `**`, `/` and products.
    `exact`: `code` is all it prints (not the node's own form: a blocked sum's parts added)."""
    infix = not exact and spelled_with_operator(node)
    return (InlineProduct if infix else InlineCode)(
        name, code, reads, plain, not exact and spelled_with_operator(node, plain=True))


def as_plain(inline: InlineCode) -> InlineCode:
    """The same inlined value, printed in its plain form (`x.sum(axis=1)` for the columns of
    `x` added): for the comment above a statement that holds a faster form."""
    infix = inline.plain_infix
    return (InlineProduct if infix else InlineCode)(inline.name, inline.plain, inline.reads,
                                                    inline.plain, infix)


# The structural ops' formatters and code builders, for the modules that import them here.
from .printer_structural import (  # noqa: E402, F401
    STRUCTURAL, STRUCTURAL_HELPERS, blocks_call_code, cast_code, column_code, const_array_code,
    dtype_code, empty_code, fill_code, float_literal, index_code, matmul_into_code, owned_copy_code,
    plain_code, spelled_with_operator, structural_helper, sum_code, tuple_code, whole_code)
