"""Element math as C: a SymPy `C99CodePrinter` subclass that knows float from double.

One printer per statement type: `CExpressionPrinter("float32")` prints `expf(x)`, `2.0f` and
the float helpers (`sg_sigmoidf`); `"float64"` prints `exp(x)`, `2.0`, `sg_sigmoid`. Function
names live in tables; the stable primitives (sigmoid, softplus, logaddexp, xlogy, ...) are
static inline functions of the generated file (templates/c/helpers.c.j2), named in
`HELPERS` and recorded in `helpers` as they are printed. The CUDA printer of part 2 is meant
to subclass this one (`__device__` helpers, the same tables).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp
from sympy.printing.c import C99CodePrinter
from sympy.printing.precedence import PRECEDENCE, precedence

from ...errors import GeneratedCodeError
from ...symbolic.expressions import Literal

C_TYPES = {"float64": "double", "float32": "float", "int64": "int64_t", "int32": "int32_t",
           "int16": "int16_t", "int8": "int8_t", "uint8": "uint8_t", "bool": "bool"}

# SymPy function class name -> the C99 <math.h> function (double; the float one adds `f`).
MATH_FUNCTIONS = {
    "exp": "exp", "log": "log", "sin": "sin", "cos": "cos", "tan": "tan", "asin": "asin",
    "acos": "acos", "atan": "atan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh",
    "asinh": "asinh", "acosh": "acosh", "atanh": "atanh", "floor": "floor",
    "ceiling": "ceil", "rint": "rint", "trunc": "trunc", "cbrt": "cbrt", "log1p": "log1p",
    "expm1": "expm1", "exp2": "exp2", "log2": "log2", "log10": "log10", "hypot": "hypot",
    "atan2": "atan2", "arctan2": "atan2", "fmax": "fmax", "fmin": "fmin", "real_log": "log",
    "erf": "erf", "erfc": "erfc", "gammaln": "lgamma", "traced_power": "pow", "fmod": "fmod",
}

# SymPy function class name -> the generated file's static inline helper (templates/c/).
HELPERS = {
    "sigmoid": "sg_sigmoid", "softplus": "sg_softplus", "logaddexp": "sg_logaddexp",
    "logaddexp2": "sg_logaddexp2", "sigmoid_given_exp": "sg_sigmoid_given_exp",
    "reciprocal_or_zero": "sg_reciprocal_or_zero", "divide_or_zero": "sg_divide_or_zero",
    "xlogy": "sg_xlogy", "xlog1py": "sg_xlog1py", "logit": "sg_logit", "Abs": "sg_abs",
    "sign": "sg_sign", "Max": "sg_maximum", "Min": "sg_minimum", "clip": "sg_clip",
    "Heaviside": "sg_heaviside", "digamma": "sg_digamma", "trigamma": "sg_trigamma",
    "remainder": "sg_remainder", "floor_divide": "sg_floor_divide",
}

FLOAT_TYPES = ("float32", "float64")


class CExpressionPrinter(C99CodePrinter):
    """SymPy -> one C expression computed in `dtype`; `names` maps symbols to C text."""

    printmethod = "_symgrad_ccode"

    def __init__(self, dtype: str, names: dict[sp.Symbol, str],
                 dtypes: dict[sp.Symbol, str] | None = None):
        super().__init__({"allow_unknown_functions": False})
        self.dtype = dtype
        self.single = dtype == "float32"
        self.names = names
        self.dtypes = dtypes or {}  # symbol -> its stored dtype, for casts into float math
        self.helpers: set[str] = set()
        self.functions: set[tuple[str, str]] = set()  # (C name, C type) of <math.h> calls

    # -- atoms -------------------------------------------------------------------------------
    def _print_Symbol(self, expr: sp.Symbol) -> str:
        text = self.names.get(expr)
        if text is None:
            raise GeneratedCodeError(f"C printer: no name for {expr}")
        if self.dtype in FLOAT_TYPES and self.dtypes.get(expr, self.dtype) not in FLOAT_TYPES:
            return f"(({C_TYPES[self.dtype]}){text})"
        return text

    _print_Dummy = _print_Symbol

    def float_text(self, value: float) -> str:
        """A float literal that is exactly the value in the statement's type."""
        if value != value:
            return "NAN"
        if value in (float("inf"), float("-inf")):
            return "INFINITY" if value > 0 else "(-INFINITY)"
        if self.single:
            text = str(np.float32(value))  # the shortest text of the float32 value
            return (text if "e" in text or "." in text else text + ".0") + "f"
        text = repr(float(value))
        return text if "e" in text or "." in text or "n" in text else text + ".0"

    def _print_Literal(self, expr: Literal) -> str:
        return self.float_text(expr.value)

    def _print_Float(self, expr: sp.Float) -> str:
        return self.float_text(float(expr))

    def _print_Integer(self, expr: sp.Integer) -> str:
        if self.dtype in FLOAT_TYPES:
            return self.float_text(float(expr.p))
        return str(expr.p)

    def _print_Rational(self, expr: sp.Rational) -> str:
        if self.dtype in FLOAT_TYPES:
            return self.float_text(float(expr.p) / float(expr.q))
        return f"({expr.p}/{expr.q})"

    def _print_NaN(self, expr: Any) -> str:
        return "NAN"

    def _print_Infinity(self, expr: Any) -> str:
        return "INFINITY"

    def _print_NegativeInfinity(self, expr: Any) -> str:
        return "(-INFINITY)"

    def _print_BooleanTrue(self, expr: Any) -> str:
        return "true"

    def _print_BooleanFalse(self, expr: Any) -> str:
        return "false"

    def _print_Exp1(self, expr: Any) -> str:
        return self.float_text(float(sp.E))

    def _print_Pi(self, expr: Any) -> str:
        return self.float_text(float(sp.pi))

    # -- arithmetic --------------------------------------------------------------------------
    def _print_Mul(self, expr: sp.Mul) -> str:
        """A fraction coefficient as a division, as numpy computes `x/3` (x times a rounded
        0.333... is another float in a third of all cases). 1/16 stays a product: x*0.0625 is
        x/16 for every float."""
        coefficient, rest = expr.as_coeff_Mul()
        exact = abs(coefficient.p) == 1 and coefficient.q & (coefficient.q - 1) == 0 \
            if coefficient.is_Rational else True
        if exact or coefficient.q == 1 or self.dtype not in FLOAT_TYPES:
            return super()._print_Mul(expr)
        numerator = rest if coefficient.p == 1 else sp.Mul(sp.Integer(coefficient.p), rest)
        return f"({self.parenthesize(numerator, PRECEDENCE['Mul'], strict=True)} / " \
               f"{self._print(sp.Integer(coefficient.q))})"

    def _print_Pow(self, expr: sp.Pow) -> str:
        base, exponent = expr.args
        b = self.parenthesize(base, precedence(expr) + 1)
        if exponent == 2 and not base.is_Atom:  # exactly base*base, the base computed once
            return self._call("pow", base, exponent)
        if exponent.is_Integer and 1 <= abs(int(exponent)) <= 4 and base.is_Atom:
            product = " * ".join([b] * abs(int(exponent)))
            if abs(int(exponent)) > 1:
                product = f"({product})"
            return product if exponent > 0 else f"{self.float_text(1.0)} / {product}"
        if exponent == sp.S.Half:
            return self._call("sqrt", base)
        if exponent == -sp.S.Half:
            return f"{self.float_text(1.0)} / {self._call('sqrt', base)}"
        return self._call("pow", base, exponent)

    def _call(self, function: str, *args: sp.Basic) -> str:
        name = function + ("f" if self.single else "")
        self.functions.add((name, "float" if self.single else "double"))
        return f"{name}({', '.join(self._print(a) for a in args)})"

    def _print_Function(self, expr: sp.Function) -> str:
        name = type(expr).__name__
        if name in MATH_FUNCTIONS:
            return self._call(MATH_FUNCTIONS[name], *expr.args)
        if name in HELPERS:
            self.helpers.add(name)
            args = expr.args
            if name == "Heaviside" and len(args) == 1:
                args = (args[0], sp.S.Half)  # SymPy's own value at 0
            if name in ("Max", "Min") and len(args) > 2:  # nested pairs, in a fixed order
                args = sorted(args, key=sp.default_sort_key)
                return self._print(type(expr)(args[0], type(expr)(*args[1:], evaluate=False),
                                              evaluate=False))
            return self._call(HELPERS[name], *args)
        raise GeneratedCodeError(
            f"the C backend has no form for {name}(...) (use backend='numpy' for this function)")

    # Operations kept as written (exact_arithmetic.py): the compiler, without -ffast-math,
    # computes them as written too (x - x is NaN where x is inf).
    # Each operand parenthesized at the operator's level: (b - a) * 0 is not b - a * 0.
    def _print_unfolded(self, expr: sp.Function) -> str:
        _, a, b = expr.args
        return self._infix(a, f" {expr.operator} ", b, expr.level)

    def _print_true_divide(self, expr: sp.Function) -> str:
        return self._infix(expr.args[0], " / ", expr.args[1], PRECEDENCE["Mul"])

    def _infix(self, a: sp.Expr, symbol: str, b: sp.Expr, level: int) -> str:
        """(a <symbol> b), left-associative: b parenthesized at its operator's own level."""
        return f"({self.parenthesize(a, level, strict=True)}{symbol}{self.parenthesize(b, level)})"

    def _print_kept_power(self, expr: sp.Function) -> str:
        return self._print(sp.Pow(*expr.args, evaluate=False))

    _print_Abs = _print_Function
    _print_sign = _print_Function
    _print_Max = _print_Function
    _print_Min = _print_Function
    _print_exp = _print_Function
    _print_log = _print_Function
    _print_floor = _print_Function
    _print_ceiling = _print_Function
    _print_erf = _print_Function
    _print_erfc = _print_Function
    _print_atan2 = _print_Function
    for _name in (*MATH_FUNCTIONS, *HELPERS):  # SymPy's own C forms would not know floats
        locals()[f"_print_{_name}"] = _print_Function
    del _name

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        text = None
        for value, condition in reversed(expr.args):
            branch = self._print(value)
            if text is None or condition == sp.true:
                text = branch
            else:
                text = f"({self._print_condition(condition)} ? {branch} : {text})"
        return text

    def _print_condition(self, condition: sp.Basic) -> str:
        saved, self.dtype, self.single = self.dtype, "bool", False
        try:
            return self._print(condition)
        finally:
            self.dtype, self.single = saved, saved == "float32"

    def _print_Relational(self, expr: Any) -> str:
        # Operands compared in the type they are computed in: the printer's float type.
        operand_type = self._operand_dtype(expr.args)
        saved, self.dtype, self.single = self.dtype, operand_type, operand_type == "float32"
        try:
            lhs = self.parenthesize(expr.lhs, precedence(expr))
            rhs = self.parenthesize(expr.rhs, precedence(expr))
        finally:
            self.dtype, self.single = saved, saved == "float32"
        return f"({lhs} {expr.rel_op} {rhs})"

    def _operand_dtype(self, args: Any) -> str:
        kinds = {self.dtypes.get(s) for a in args for s in getattr(a, "free_symbols", ())}
        for dtype in ("float64", "float32"):
            if dtype in kinds:
                return dtype
        return "float64" if not kinds - {"bool"} - {None} else sorted(kinds - {None})[0]

    def _print_FloatTest(self, expr: Any) -> str:
        """isnan, isinf, isfinite, signbit: the <math.h> macros, of the operand's type."""
        saved = self.dtype
        self.dtype = self._operand_dtype(expr.args)
        self.single = self.dtype == "float32"
        try:
            return f"{type(expr).__name__}({self._print(expr.args[0])})"
        finally:
            self.dtype, self.single = saved, saved == "float32"

    _print_isnan = _print_isinf = _print_isfinite = _print_signbit = _print_FloatTest

    def _print_And(self, expr: Any) -> str:
        return "(" + " && ".join(self._print(a) for a in expr.args) + ")"

    def _print_Or(self, expr: Any) -> str:
        return "(" + " || ".join(self._print(a) for a in expr.args) + ")"

    def _print_Not(self, expr: Any) -> str:
        return f"(!{self._print(expr.args[0])})"

    def _print_Xor(self, expr: Any) -> str:
        return "(" + " != ".join(f"(bool){self._print(a)}" for a in expr.args) + ")"

