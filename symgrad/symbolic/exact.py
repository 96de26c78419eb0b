"""Arithmetic that SymPy would fold and IEEE floats would not.

SymPy simplifies as it builds: `x - x` is 0, `0*x` is 0, `x/x` is 1, and `x/1e-310` is
`1e310*x`. For floats these are wrong where `x` is NaN or inf (numpy gives NaN) or, for the
division, everywhere (1e310 is inf in float64). The binary ops of a traced program (and the
sums of adjoints) are built through `exact_binary`, which keeps the operation wherever SymPy's
fold is not exact for every float (an operand cancelled: `x - x`, `(x + y) - x`); the kept
forms print as the operation itself, so the generated code computes what numpy computes, and
differentiate as it.

`fast_math=True` (of every transform) lets SymPy's folds stand: x - x is 0, 0*x is 0, x/x is
1, (x*y)**2 is x**2*y**2 and x/3.0 is x*0.333..., which are faster and wrong at NaN and inf
(and in the last bit). A division whose reciprocal is not a finite normal float stays a
division even then: x*(1/1e-310) is wrong everywhere, not at the edges.
"""
from __future__ import annotations

import math

import numpy as np
import sympy as sp
from sympy.printing.precedence import PRECEDENCE

from .expressions import constant_expr
from .functions import hypot

_SYMBOLS = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/"}
_PYTHON = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply,
           "divide": np.divide}


class unfolded(sp.Function):
    """`a <op> b` kept as computed: args (op index, a, b); numbers are evaluated as numpy
    would. Its derivatives are those of the operation."""

    nargs = 3
    is_real = True

    @property
    def operator(self) -> str:
        return _SYMBOLS[self.operation]

    @property
    def operation(self) -> str:
        return list(_SYMBOLS)[int(self.args[0])]

    @property
    def precedence(self) -> int:
        # Below its operator's own level: parenthesized as an operand of an equal operator,
        # since SymPy's printers assume flattened sums and products (x - (a + b), y/(x/x)).
        return PRECEDENCE["Add" if self.operation in ("add", "subtract") else "Mul"] - 1

    @property
    def level(self) -> int:
        return PRECEDENCE["Add" if self.operation in ("add", "subtract") else "Mul"]

    @classmethod
    def eval(cls, code, a, b):
        if a.is_Number and b.is_Number:
            return _numpy_value(list(_SYMBOLS)[int(code)], a, b)

    def fdiff(self, argindex=1):
        _, a, b = self.args
        operation = self.operation
        if argindex == 1:
            return sp.S.Zero
        if operation in ("add", "subtract"):
            return sp.S.NegativeOne if argindex == 3 and operation == "subtract" else sp.S.One
        if operation == "multiply":
            return b if argindex == 2 else a
        return 1 / b if argindex == 2 else -a / b**2


class true_divide(sp.Function):
    """a/b for a constant b whose reciprocal is not a float of full precision (0, subnormal,
    huge): `x/1e-310` is x divided by 1e-310, not x times an overflowed 1e310."""

    nargs = 2
    is_real = True
    precedence = PRECEDENCE["Mul"] - 1  # y/(x/c), not y/x/c

    @classmethod
    def eval(cls, a, b):
        if a.is_Number and b.is_Number:
            return _numpy_value("divide", a, b)

    def fdiff(self, argindex=1):
        a, b = self.args
        if argindex == 1:
            return true_divide(1, b)
        return -true_divide(true_divide(a, b), b)


class kept_power(sp.Function):
    """(a*b)**n as written: SymPy distributes it to a**n * b**n, which underflows or
    overflows where the product does not ((1e-300 * inf)**2 is inf, 1e-600 * inf is NaN)."""

    nargs = 2
    is_real = True

    @property
    def precedence(self) -> int:
        # printed as `(x*y)**2` or `1/(x*y)/(x*y)`: parenthesized as the base of a power
        # (a**2**4 is a**16) and, when a quotient, as an operand of a product
        return PRECEDENCE["Mul" if self.args[1].is_negative else "Pow"] - 1

    def fdiff(self, argindex=1):
        base, exponent = self.args
        if argindex == 1:
            return exponent * base ** (exponent - 1)
        return self * sp.log(base)


def exact_power(expr: sp.Expr, base: sp.Expr, exponent: sp.Expr, fast_math: bool = False
                ) -> sp.Expr:
    """`expr` (SymPy's base**exponent), or the power kept where SymPy distributed it."""
    if fast_math:
        return expr
    if base.is_Mul and exponent.is_Integer and not isinstance(expr, sp.Pow) \
            and not base.is_number:
        return kept_power(base, exponent)
    return expr


def exact_binary(operation: str, expr: sp.Expr, a: sp.Expr, b: sp.Expr,
                 fast_math: bool = False) -> sp.Expr:
    """`expr` (SymPy's `a <op> b`), or the operation kept where SymPy's form is not exact
    (with `fast_math`: only where it is wrong for every float)."""
    if operation == "divide" and b.is_Float and not a.is_Number and not _exact_reciprocal(b) \
            and not (fast_math and _normal_reciprocal(b)):
        return true_divide(a, b)
    if operation == "divide" and b.is_zero and not a.is_Number:
        return true_divide(a, b)
    if fast_math:
        return expr
    if operation == "divide" and isinstance(b, (sp.Abs, hypot)) and a in b.args:
        # x/|x| as written is NaN at 0 (numpy); the 0-at-0 rewrite is for gradients only
        return true_divide(a, b)
    if operation in _SYMBOLS and not (a.is_number and b.is_number) and (
            expr.is_number or not a.free_symbols | b.free_symbols <= expr.free_symbols):
        # SymPy cancelled an operand: x - x is 0 and (x + y) - x is y, which for floats
        # they are not (NaN at inf; rounding), so the operation is kept as written
        return unfolded(sp.Integer(list(_SYMBOLS).index(operation)), a, b)
    return expr


def _normal_reciprocal(b: sp.Float) -> bool:
    """1/b is a finite normal float64 (x*(1/b) is x/b up to the last bit)."""
    value = float(b)
    reciprocal = 1 / value if value != 0 else math.inf
    return math.isfinite(reciprocal) and abs(reciprocal) >= np.finfo(np.float64).tiny


def _exact_reciprocal(b: sp.Float) -> bool:
    """1/b is a normal float64 that x*(1/b) may use in place of x/b: a power of two whose
    reciprocal is finite and normal (then x*(1/b) == x/b for every x)."""
    value = float(b)
    if value == 0 or not math.isfinite(value):
        return False
    mantissa, _ = math.frexp(value)
    reciprocal = 1 / value
    return abs(mantissa) == 0.5 and math.isfinite(reciprocal) and \
        abs(reciprocal) >= np.finfo(np.float64).tiny


def _numpy_value(operation: str, a: sp.Expr, b: sp.Expr) -> sp.Expr:
    with np.errstate(all="ignore"):
        value = float(_PYTHON[operation](np.float64(float(a)), np.float64(float(b))))
    return constant_expr(value)
