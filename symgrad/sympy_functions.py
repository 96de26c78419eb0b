"""SymPy functions for numpy operations SymPy lacks, and for the stable primitives that the
stability rewrites produce. Each one knows its derivative (`fdiff`), so expressions that contain
them can be differentiated again (Hessians), and its value at the points where it folds.
"""
from __future__ import annotations

import sympy as sp
from sympy.printing.precedence import PRECEDENCE
from sympy.codegen.cfunctions import exp2, expm1, hypot, log1p, log2, log10  # noqa: F401


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
    """log(exp(a) + exp(b)) without overflow."""

    nargs = 2

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


def power(a, b):
    """numpy's power: an integral float exponent is kept exact (x**2.0 is x**2)."""
    if isinstance(b, sp.Float) and b == int(b):
        b = sp.Integer(int(b))
    return a**b


def fmax(a, b):
    return sp.Max(a, b)


def fmin(a, b):
    return sp.Min(a, b)


def clip(a, lo, hi):
    return sp.Min(sp.Max(a, lo), hi)


def arctan2(y, x):
    return sp.atan2(y, x)
