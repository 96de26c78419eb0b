"""Arithmetic that SymPy would fold and IEEE floats would not.

SymPy simplifies as it builds: `x - x` is 0, `0*x` is 0, `x/x` is 1, and `x/1e-310` is
`1e310*x`. For floats these are wrong where `x` is NaN or inf (numpy gives NaN) or, for the
division, everywhere (1e310 is inf in float64). The binary ops of a traced program (and the
sums of adjoints) are built through `exact_binary`, which keeps the operation wherever SymPy's
fold is not exact for every float: an operand cancelled (`x - x`, `(x + y) - x`), or parts
of the two operands joined (`(x*1e200)*1e-200` is x to SymPy, inf to numpy; `(x - 1)*1e16` is
distributed; `(x*x)/x` cancels; see `_merges_numbers`). The kept forms print as the operation
itself, so the generated code computes what numpy computes, and differentiate as it.

`fast_math=True` (of every transform) lets SymPy's folds stand: x - x is 0, 0*x is 0, x/x is
1, (x*y)**2 is x**2*y**2, x/3.0 is x*0.333... and (x*2)*3 is 6*x, which are faster and wrong
at NaN and inf, where a step overflows or cancels (and in the last bit). A division whose
reciprocal is not a finite normal float stays a division even then: x*(1/1e-310) is wrong
everywhere, not at the edges.
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
            expr.is_number or not a.free_symbols | b.free_symbols <= expr.free_symbols
            or _merges_numbers(operation, a, b, expr)):
        # SymPy cancelled an operand: x - x is 0 and (x + y) - x is y, which for floats
        # they are not (NaN at inf; rounding); or it joined parts of the two operands in a
        # way floats do not (see _merges_numbers). The operation is kept as written.
        return unfolded(sp.Integer(list(_SYMBOLS).index(operation)), a, b)
    return expr


def _merges_numbers(operation: str, a: sp.Expr, b: sp.Expr, expr: sp.Expr) -> bool:
    """Whether SymPy's `expr` for `a <op> b` joined parts of the two operands in a way that
    is a different computation for floats, far from numpy's where it overflows or cancels:

    - terms of a sum merged: (x + 1e16) - 1e16 is 0 at x = 1 in numpy, not 1; 2*x - x is NaN
      at inf, not x; x + 0 is +0.0 at x = -0.0;
    - numbers of both operands folded: (x*1e200)*1e-200 is inf, not x;
    - a number distributed over a sum: (x - 1)*1e16 at x = 1 + 2**-52 is 2.22, not
      1e16*x - 1e16 = 2.0, and (t - 32)*5/9 cancels as written near 32;
    - powers of opposite sign cancelled: (x*x)/x is NaN at 0 and inf, not x.

    A term added to itself (c*x + c*x is 2c*x, an adjoint's two equal parts), like powers of one
    sign joining (x*x is x**2, which numpy computes as x*x) and a sign joining a number
    (-x*3 is -3*x) are exact for every float, and stay as SymPy writes them."""
    if operation in ("add", "subtract"):
        terms_a = sp.Add.make_args(a)
        terms_b = sp.Add.make_args(b if operation == "add" else -b)
        if len(sp.Add.make_args(expr)) >= len(terms_a) + len(terms_b):
            return False  # nothing merged
        return not _doubled_only(terms_a, terms_b)
    factors_a, factors_b = sp.Mul.make_args(a), sp.Mul.make_args(b)
    if len(sp.Mul.make_args(expr)) >= len(factors_a) + len(factors_b) and not expr.is_Add:
        return False  # nothing joined
    if expr.is_Add:  # a number distributed over a sum
        return _scale(a) or _scale(b)
    if _scale(a) and _scale(b):
        return True
    powers_a, powers_b = _powers(factors_a), _powers(factors_b)
    sign = -1 if operation == "divide" else 1
    return any(not (powers_a[base] * powers_b[base] * sign).is_positive
               for base in powers_a.keys() & powers_b.keys())


def _doubled_only(terms_a: tuple, terms_b: tuple) -> bool:
    """Every term the two sums share is the same in both (c*x + c*x is 2c*x: doubling is
    exact), no number merged and no zero dropped."""
    if any(t.is_zero for t in terms_a + terms_b):
        return False  # x + 0 is +0.0 at x = -0.0, not x
    coefficients = dict(reversed(t.as_coeff_Mul()) for t in terms_a)
    for term in terms_b:
        coefficient, rest = term.as_coeff_Mul()
        if rest in coefficients and (rest.is_Number or coefficient != coefficients[rest]):
            return False
    return True


def _scale(e: sp.Expr) -> bool:
    """`e` is a number, or a product with a number, other than 1 and -1 (1.0 included:
    multiplying by one and negating are exact)."""
    coefficient = e if e.is_Number else e.as_coeff_Mul()[0] if e.is_Mul else sp.S.One
    return coefficient.is_Number and float(coefficient) not in (1.0, -1.0)


def _powers(factors: tuple) -> dict:
    """base -> exponent of the factors of a product (numbers left out)."""
    powers: dict = {}
    for factor in factors:
        if not factor.is_Number:
            base, exponent = factor.as_base_exp()
            powers[base] = powers.get(base, 0) + exponent
    return powers


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
