"""SymPy functions for numpy operations SymPy lacks, and for the stable primitives that the
stability rewrites produce. Each one knows its derivative (`fdiff`), so expressions that contain
them can be differentiated again (Hessians), and its value at the points where it folds.
"""
from __future__ import annotations

import sympy as sp
from sympy.codegen.cfunctions import exp2, expm1, log1p, log2, log10  # noqa: F401
from sympy.logic.boolalg import BooleanFunction
from sympy.printing.precedence import PRECEDENCE

from ..errors import GradientError

# SymPy functions with a kink (non-smooth at some argument value): a region keeps their
# arguments as named values, and kinks are resolved by cases on them (simplify.py).
KINKED = (sp.Abs, sp.sign, sp.Heaviside, sp.Max, sp.Min, sp.Piecewise)
# Piecewise constant: their arguments are named values too, but splitting by cases on them
# removes nothing (the derivative is 0 on both sides), so resolving kinks leaves them alone.
STEPPED = (sp.floor, sp.ceiling)


class sigmoid(sp.Function):
    """1 / (1 + exp(-x)), printed as a stable helper."""

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sp.Rational(1, 2)

    def fdiff(self, argindex=1):
        s = sigmoid(self.args[0])
        return s * (1 - s)


class softplus(sp.Function):
    """log(1 + exp(x)), printed as np.logaddexp(0, x)."""

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sp.log(2)

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])


class sigmoid_given_exp(sp.Function):
    """sigmoid(a) given e = exp(-|a|): exp(min(a, 0)) / (1 + e). An evaluation form (lowering
    only, never differentiated): `e` is an argument so that common-subexpression elimination
    computes it once for this sigmoid and a softplus of the same `a`."""

    nargs = 2
    precedence = PRECEDENCE["Mul"]  # printed as a quotient


class logaddexp(sp.Function):
    """log(exp(a) + exp(b)) without overflow; with a zero operand, the softplus of the other
    (whose evaluation forms share exp(-|x|) with its derivative on large arrays)."""

    nargs = 2

    @classmethod
    def eval(cls, a, b):
        if a.is_zero:
            return softplus(b)
        if b.is_zero:
            return softplus(a)

    def fdiff(self, argindex=1):
        a, b = self.args
        return sigmoid(a - b) if argindex == 1 else sigmoid(b - a)


class logaddexp2(sp.Function):
    """log2(2**a + 2**b) without overflow."""

    nargs = 2

    def fdiff(self, argindex=1):
        a, b = self.args
        return sigmoid((a - b) * sp.log(2)) if argindex == 1 else sigmoid((b - a) * sp.log(2))


class cbrt(sp.Function):
    """The real cube root (numpy's cbrt is real for negative inputs)."""

    def fdiff(self, argindex=1):
        return 1 / (3 * cbrt(self.args[0]) ** 2)


class rint(sp.Function):
    """Round half to even; piecewise constant (derivative 0 by convention)."""

    def fdiff(self, argindex=1):
        return sp.S.Zero


class trunc(sp.Function):
    """Round toward zero; piecewise constant (derivative 0 by convention)."""

    def fdiff(self, argindex=1):
        return sp.S.Zero


class floor_divide(sp.Function):
    """numpy's floor_divide (Python's `//`): piecewise constant in both operands (derivative
    0, as PyTorch's floor of a quotient)."""

    nargs = 2

    def fdiff(self, argindex=1):
        return sp.S.Zero


class remainder(sp.Function):
    """numpy's remainder (np.mod, Python's `%`), of the divisor's sign: a - floor(a/b)*b as
    numpy computes it (from fmod, exact). Derivatives as PyTorch's: 1 and -floor_divide(a, b)."""

    nargs = 2

    def fdiff(self, argindex=1):
        a, b = self.args
        return sp.S.One if argindex == 1 else -floor_divide(a, b)


class fmod(sp.Function):
    """C's fmod (np.fmod), of the dividend's sign. Derivatives as PyTorch's: 1 and
    -trunc(a/b)."""

    nargs = 2

    def fdiff(self, argindex=1):
        a, b = self.args
        return sp.S.One if argindex == 1 else -trunc(a / b)


# ---------------------------------------------------------------------------------------------
# Conventions at singular points. PyTorch zeroes some gradient factors where they are 0/0 or
# 0*inf; these functions and Piecewise derivatives say the same in SymPy (docs/conventions.md).
# ---------------------------------------------------------------------------------------------
class reciprocal_or_zero(sp.Function):
    """1/x, and 0 where x == 0: the factor of a gradient that is 0 at a singular point."""

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sp.S.Zero
        if x.is_Number:
            return 1 / x

    def fdiff(self, argindex=1):
        return -self**2


class divide_or_zero(sp.Function):
    """a/b, and 0 where b == 0: a gradient that is 0 at a singular point."""

    nargs = 2

    @classmethod
    def eval(cls, a, b):
        if b.is_zero or a.is_zero:
            return sp.S.Zero
        if b.is_Number and a.is_Number:
            return a / b

    def fdiff(self, argindex=1):
        a, b = self.args
        if argindex == 1:
            return divide_or_zero(1, b)
        return -divide_or_zero(self, b)


class FloatTest(BooleanFunction):
    """A test of a float's class (numpy's isnan, isinf, isfinite, signbit): a condition,
    printed as the numpy (or C) function of the same name; `fold` decides a number, or
    says nothing (None) where SymPy's numbers cannot tell (the sign of a zero or a NaN)."""

    nargs = 1

    @staticmethod
    def fold(x: sp.Number) -> bool | None:
        raise NotImplementedError

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            decided = cls.fold(x)
            return None if decided is None else sp.true if decided else sp.false


class isnan(FloatTest):
    """numpy's isnan, also a condition of derivative Piecewises (fmax, fmin)."""

    fold = staticmethod(lambda x: x is sp.nan)


class isinf(FloatTest):
    fold = staticmethod(lambda x: x in (sp.oo, -sp.oo))


class isfinite(FloatTest):
    fold = staticmethod(lambda x: x.is_finite is True)


class signbit(FloatTest):
    fold = staticmethod(lambda x: None if x.is_zero or x is sp.nan else bool(x.is_negative))


def _select(condition, if_true=1, otherwise=0):
    return sp.Piecewise((if_true, condition), (otherwise, True))


def power(a, b):
    """numpy's power: an integral float exponent is kept exact (x**2.0 is x**2); a traced
    exponent of a base that may be 0 or negative keeps PyTorch's conventions (`traced_power`)."""
    if isinstance(b, sp.Float) and b == int(b):
        b = sp.Integer(int(b))
    elif isinstance(b, sp.Float) and b == 0.5:  # numpy computes x**0.5 as sqrt(x)
        b = sp.S.Half
    if b.is_Number or (a.is_Number and a.is_positive):
        return a**b
    return traced_power(a, b)


class real_log(sp.Function):
    """numpy's log, which SymPy must not evaluate: a base that becomes a constant <= 0 gives
    -inf or NaN as in numpy, not zoo or log(2) + i*pi."""

    @classmethod
    def eval(cls, x):
        if x.is_Number and x.is_positive:
            return sp.log(x)

    def fdiff(self, argindex=1):
        return 1 / self.args[0]


class traced_power(sp.Function):
    """a**b with both operands traced. Derivatives as PyTorch's: d/da is 0 where b == 0, and
    d/db is 0 where a == 0 and b >= 0 (there 0**b is constant in b from the right)."""

    nargs = 2
    precedence = PRECEDENCE["Pow"]  # printed as a**b

    @classmethod
    def eval(cls, a, b):
        if b.is_Number or (a.is_Number and a.is_positive):
            return power(a, b)

    def fdiff(self, argindex=1):
        a, b = self.args
        if argindex == 1:
            return _select(sp.Eq(b, 0), 0, b * power(a, b - 1))
        return _select(sp.And(sp.Eq(a, 0), sp.Ge(b, 0)), 0, self * real_log(a))


class fmax(sp.Function):
    """numpy's fmax: the larger operand, ignoring a NaN. The gradient goes to the operand
    returned; on a tie to the first (PyTorch)."""

    nargs = 2

    @classmethod
    def eval(cls, a, b):
        if a.is_Number and b.is_Number:
            return b if a is sp.nan else a if b is sp.nan else sp.Max(a, b)

    def fdiff(self, argindex=1):
        a, b = self.args
        first = sp.Or(sp.Ge(a, b), isnan(b))
        return _select(first) if argindex == 1 else _select(first, 0, 1)


class fmin(sp.Function):
    """numpy's fmin: the smaller operand, ignoring a NaN (gradient as `fmax`)."""

    nargs = 2

    @classmethod
    def eval(cls, a, b):
        if a.is_Number and b.is_Number:
            return b if a is sp.nan else a if b is sp.nan else sp.Min(a, b)

    def fdiff(self, argindex=1):
        a, b = self.args
        first = sp.Or(sp.Le(a, b), isnan(b))
        return _select(first) if argindex == 1 else _select(first, 0, 1)


class clip(sp.Function):
    """numpy's clip, min(max(a, lo), hi). Gradients as torch.clamp: to `a` where
    lo <= a <= hi (the bounds included), to `lo` where a < lo < hi, to `hi` where a > hi or
    hi < lo."""

    nargs = 3

    @classmethod
    def eval(cls, a, lo, hi):
        if a.is_Number and lo.is_Number and hi.is_Number:
            return sp.Min(sp.Max(a, lo), hi)

    def fdiff(self, argindex=1):
        a, lo, hi = self.args
        # A missing bound (np.clip(x, lo, None)) is an infinite Literal: its tests always hold.
        no_lo, no_hi = _infinite(lo, -1), _infinite(hi, 1)
        if argindex == 1:
            return _select(sp.And(sp.true if no_lo else sp.Ge(a, lo),
                                  sp.true if no_hi else sp.Le(a, hi)))
        if argindex == 2:
            return _select(sp.And(sp.Lt(a, lo), sp.true if no_hi else sp.Lt(lo, hi)))
        return _select(sp.Or(sp.Gt(a, hi), sp.false if no_lo else sp.Lt(hi, lo)))


def _infinite(bound, sign: int) -> bool:
    """Whether `bound` is the constant sign*inf (a symbolic.Literal, which SymPy cannot see)."""
    return getattr(bound, "value", None) == sign * float("inf")


class arctan2(sp.Function):
    """numpy's arctan2(y, x). Gradient (x, -y)/(x**2 + y**2), zero at the origin (PyTorch)."""

    nargs = 2

    @classmethod
    def eval(cls, y, x):
        if y.is_Number and x.is_Number:
            return sp.atan2(y, x)

    def fdiff(self, argindex=1):
        y, x = self.args
        scale = reciprocal_or_zero(x**2 + y**2)
        return x * scale if argindex == 1 else -y * scale


class hypot(sp.Function):
    """numpy's hypot. Gradient (a, b)/hypot(a, b), and 0 at the origin: the min-norm
    subgradient, where PyTorch returns NaN."""

    nargs = 2

    @classmethod
    def eval(cls, a, b):
        if a.is_Number and b.is_Number:
            return sp.sqrt(a**2 + b**2)

    def fdiff(self, argindex=1):
        return divide_or_zero(self.args[argindex - 1], self)


# ---------------------------------------------------------------------------------------------
# scipy.special functions (numpy-only helpers print them: printer.HELPER_FUNCTIONS)
# ---------------------------------------------------------------------------------------------
class logit(sp.Function):
    """log(p / (1 - p)) (scipy.special.logit)."""

    @classmethod
    def eval(cls, p):
        if p.is_Number and 0 < p < 1:  # a constant folds to a literal, not a float64 call
            return sp.log(p / (1 - p))

    def fdiff(self, argindex=1):
        p = self.args[0]
        return 1 / (p * (1 - p))


class xlogy(sp.Function):
    """x*log(y), and 0 where x == 0 (scipy.special.xlogy). As PyTorch, d/dx is log(y) but 0 at
    x == 0 with y <= 0; d/dy is x/y, and 0 at x == y == 0 (PyTorch: NaN; xlogy(0, y) is 0 for
    every y)."""

    nargs = 2

    @classmethod
    def eval(cls, x, y):
        if x.is_Number and y.is_Number and y is not sp.nan:
            return sp.S.Zero if x.is_zero else (x * sp.log(y) if y.is_positive else None)

    def fdiff(self, argindex=1):
        x, y = self.args
        if argindex == 1:
            return _select(sp.And(sp.Eq(x, 0), sp.Le(y, 0)), 0, real_log(y))
        return _select(sp.And(sp.Eq(x, 0), sp.Eq(y, 0)), 0, x / y)


class xlog1py(sp.Function):
    """x*log1p(y), and 0 where x == 0 (scipy.special.xlog1py); derivatives as `xlogy`, with
    y + 1 in place of y."""

    nargs = 2

    @classmethod
    def eval(cls, x, y):
        if x.is_Number and y.is_Number and y is not sp.nan:
            return sp.S.Zero if x.is_zero else (x * sp.log(1 + y) if y > -1 else None)

    def fdiff(self, argindex=1):
        x, y = self.args
        if argindex == 1:
            return _select(sp.And(sp.Eq(x, 0), sp.Le(y, -1)), 0, log1p(y))
        return _select(sp.And(sp.Eq(x, 0), sp.Eq(y, -1)), 0, x / (1 + y))


class gammaln(sp.Function):
    """log|Gamma(x)| (scipy.special.gammaln)."""

    @classmethod
    def eval(cls, x):
        if x.is_Number and x.is_positive:
            return sp.loggamma(x)

    def fdiff(self, argindex=1):
        return digamma(self.args[0])


class digamma(sp.Function):
    """d/dx log Gamma(x) (scipy.special.digamma)."""

    @classmethod
    def eval(cls, x):
        if x.is_Number and x.is_positive:
            return sp.polygamma(0, x)

    def fdiff(self, argindex=1):
        return trigamma(self.args[0])


class trigamma(sp.Function):
    """d/dx digamma(x) (scipy.special.polygamma(1, x))."""

    def fdiff(self, argindex=1):
        raise GradientError("the derivative of trigamma (a third derivative of "
                            "scipy.special.gammaln) is not implemented")
