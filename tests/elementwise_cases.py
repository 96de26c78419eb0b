"""The elementwise op-case table: one record per way of calling each elementwise op, with its
PyTorch twin and an input domain per operand. The oracle harness, the extreme-input sweep and
the property tests are all parametrised from here; a test fails when an elementwise op of
`symgrad.ops.OPS` has no case.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.special as sc
import torch
import torch.nn.functional as F

T = torch


@dataclass(frozen=True)
class Case:
    op: str  # the OPS entry this case calls
    numpy: Callable  # float arrays -> float array, through the op
    torch: Callable  # the same in PyTorch
    domains: tuple[str, ...]  # one input domain per operand (DOMAINS)
    variant: str = ""  # how the op is reached, when not the plain ufunc

    @property
    def id(self) -> str:
        return f"{self.op}-{self.variant}" if self.variant else self.op

    @property
    def arity(self) -> int:
        return len(self.domains)


DOMAINS: dict[str, Callable[[np.random.Generator, tuple], np.ndarray]] = {
    "real": lambda rng, shape: rng.uniform(-2.0, 2.0, shape),
    "positive": lambda rng, shape: rng.uniform(0.2, 3.0, shape),
    "nonzero": lambda rng, shape: rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 2.0, shape),
    "unit": lambda rng, shape: rng.uniform(-0.9, 0.9, shape),
    "above_one": lambda rng, shape: rng.uniform(1.2, 3.0, shape),
    "probability": lambda rng, shape: rng.uniform(0.05, 0.95, shape),
    "above_minus_one": lambda rng, shape: rng.uniform(-0.8, 2.0, shape),
    "low": lambda rng, shape: rng.uniform(-1.2, -0.2, shape),
    "high": lambda rng, shape: rng.uniform(0.2, 1.2, shape),
    "gamma": lambda rng, shape: rng.uniform(0.3, 6.0, shape),
}


def _where_bool(test: Callable, test_t: Callable, op: str) -> Case:
    """A boolean op through np.where: its value picks the branch, its gradient is zero."""
    return Case(op, lambda a, b: np.where(test(a, b), a * b, a - b),
                lambda a, b: T.where(test_t(a, b), a * b, a - b), ("real", "real"))


CASES: list[Case] = [
    # arithmetic
    Case("add", np.add, T.add, ("real", "real")),
    Case("add", lambda a, b: a + b, lambda a, b: a + b, ("real", "real"), "operator"),
    Case("subtract", np.subtract, T.subtract, ("real", "real")),
    Case("subtract", lambda a, b: 1.5 - a - b, lambda a, b: 1.5 - a - b, ("real", "real"),
         "operator"),
    Case("multiply", np.multiply, T.mul, ("real", "real")),
    Case("divide", np.divide, T.div, ("real", "nonzero")),
    Case("divide", lambda a, b: 2 / a + b / 3, lambda a, b: 2 / a + b / 3,
         ("nonzero", "real"), "operator"),
    Case("power", np.power, T.pow, ("positive", "real")),
    Case("power", lambda a, b: a ** b, lambda a, b: a ** b, ("positive", "real"), "operator"),
    Case("power", lambda a: a ** 3 + a ** 0.5 + a ** -2, lambda a: a ** 3 + a ** 0.5 + a ** -2,
         ("positive",), "constant_exponent"),
    Case("power", lambda a: 2.0 ** a, lambda a: 2.0 ** a, ("real",), "constant_base"),
    Case("power", np.float_power, T.float_power, ("positive", "real"), "float_power"),
    Case("negative", np.negative, T.neg, ("real",)),
    Case("negative", lambda a: -a, lambda a: -a, ("real",), "operator"),
    Case("positive", np.positive, lambda a: +a, ("real",)),
    Case("reciprocal", np.reciprocal, T.reciprocal, ("nonzero",)),
    Case("square", np.square, T.square, ("real",)),
    Case("sqrt", np.sqrt, T.sqrt, ("positive",)),
    Case("cbrt", np.cbrt, lambda a: T.sign(a) * T.abs(a) ** (1 / 3), ("nonzero",)),
    # exponentials and logarithms
    Case("exp", np.exp, T.exp, ("real",)),
    Case("exp2", np.exp2, T.exp2, ("real",)),
    Case("expm1", np.expm1, T.expm1, ("real",)),
    Case("log", np.log, T.log, ("positive",)),
    Case("log2", np.log2, T.log2, ("positive",)),
    Case("log10", np.log10, T.log10, ("positive",)),
    Case("log1p", np.log1p, T.log1p, ("above_minus_one",)),
    Case("logaddexp", np.logaddexp, T.logaddexp, ("real", "real")),
    Case("logaddexp2", np.logaddexp2, T.logaddexp2, ("real", "real")),
    # trigonometric and hyperbolic
    Case("sin", np.sin, T.sin, ("real",)),
    Case("cos", np.cos, T.cos, ("real",)),
    Case("tan", np.tan, T.tan, ("unit",)),
    Case("arcsin", np.arcsin, T.asin, ("unit",)),
    Case("arccos", np.arccos, T.acos, ("unit",)),
    Case("arctan", np.arctan, T.atan, ("real",)),
    Case("arctan2", np.arctan2, T.atan2, ("real", "real")),
    Case("sinh", np.sinh, T.sinh, ("real",)),
    Case("cosh", np.cosh, T.cosh, ("real",)),
    Case("tanh", np.tanh, T.tanh, ("real",)),
    Case("arcsinh", np.arcsinh, T.asinh, ("real",)),
    Case("arccosh", np.arccosh, T.acosh, ("above_one",)),
    Case("arctanh", np.arctanh, T.atanh, ("unit",)),
    Case("hypot", np.hypot, T.hypot, ("real", "real")),
    # kinks
    Case("abs", np.abs, T.abs, ("real",)),
    Case("abs", np.fabs, T.abs, ("real",), "fabs"),
    Case("abs", lambda a: abs(a), lambda a: abs(a), ("real",), "builtin"),
    Case("sign", lambda a: np.sign(a) * a, lambda a: T.sign(a) * a, ("real",)),
    Case("maximum", np.maximum, T.maximum, ("real", "real")),
    Case("minimum", np.minimum, T.minimum, ("real", "real")),
    Case("fmax", np.fmax, T.fmax, ("real", "real")),
    Case("fmin", np.fmin, T.fmin, ("real", "real")),
    Case("clip", np.clip, T.clamp, ("real", "low", "high")),
    Case("clip", lambda a, hi: np.clip(a, None, hi), lambda a, hi: T.clamp(a, max=hi),
         ("real", "high"), "no_lower_bound"),
    Case("clip", lambda a: a.clip(min=-0.5), lambda a: T.clamp(a, min=-0.5), ("real",),
         "method"),
    Case("floor", lambda a: np.floor(a) * a, lambda a: T.floor(a) * a, ("real",)),
    Case("ceil", lambda a: np.ceil(a) * a, lambda a: T.ceil(a) * a, ("real",)),
    Case("rint", lambda a: np.rint(a) * a, lambda a: T.round(a) * a, ("real",)),
    Case("rint", lambda a: np.round(a) + np.around(a) * a, lambda a: T.round(a) * (1 + a),
         ("real",), "round"),
    Case("rint", lambda a: a.round() * a, lambda a: T.round(a) * a, ("real",), "method"),
    Case("trunc", lambda a: np.trunc(a) * a, lambda a: T.trunc(a) * a, ("real",)),
    Case("remainder", np.remainder, T.remainder, ("real", "nonzero")),
    Case("remainder", np.mod, T.remainder, ("real", "nonzero"), "mod"),
    Case("remainder", lambda a, b: a % b, lambda a, b: a % b, ("real", "nonzero"), "operator"),
    Case("fmod", np.fmod, T.fmod, ("real", "nonzero")),
    Case("floor_divide", lambda a, b: np.floor_divide(a, b) * a,
         lambda a, b: T.floor(a / b) * a, ("real", "nonzero")),
    Case("floor_divide", lambda a, b: (a // b) * a, lambda a, b: T.floor(a / b) * a,
         ("real", "nonzero"), "operator"),
    Case("degrees", np.degrees, T.rad2deg, ("real",)),
    Case("degrees", np.rad2deg, T.rad2deg, ("real",), "rad2deg"),
    Case("radians", np.radians, T.deg2rad, ("real",)),
    Case("radians", np.deg2rad, T.deg2rad, ("real",), "deg2rad"),
    Case("where", lambda c, a, b: np.where(c > 0, a, b), lambda c, a, b: T.where(c > 0, a, b),
         ("real", "real", "real")),
    # comparisons and logical ops: boolean, not differentiable
    _where_bool(np.greater, T.gt, "greater"),
    _where_bool(np.greater_equal, T.ge, "greater_equal"),
    _where_bool(np.less, T.lt, "less"),
    _where_bool(np.less_equal, T.le, "less_equal"),
    _where_bool(lambda a, b: np.equal(np.floor(a), np.floor(b)),
                lambda a, b: T.eq(T.floor(a), T.floor(b)), "equal"),
    _where_bool(lambda a, b: np.not_equal(np.floor(a), np.floor(b)),
                lambda a, b: T.ne(T.floor(a), T.floor(b)), "not_equal"),
    _where_bool(lambda a, b: np.logical_and(a > 0, b > 0),
                lambda a, b: T.logical_and(a > 0, b > 0), "logical_and"),
    _where_bool(lambda a, b: np.logical_or(a > 0, b > 0),
                lambda a, b: T.logical_or(a > 0, b > 0), "logical_or"),
    _where_bool(lambda a, b: np.logical_xor(a > 0, b > 0),
                lambda a, b: T.logical_xor(a > 0, b > 0), "logical_xor"),
    _where_bool(lambda a, b: np.logical_not(a > b), lambda a, b: T.logical_not(a > b),
                "logical_not"),
    _where_bool(lambda a, b: np.isnan(np.where(a > b, np.nan, a)),
                lambda a, b: T.isnan(T.where(a > b, np.nan, a)), "isnan"),
    _where_bool(lambda a, b: np.isinf(np.where(a > b, -np.inf, a)),
                lambda a, b: T.isinf(T.where(a > b, -np.inf, a)), "isinf"),
    _where_bool(lambda a, b: np.isfinite(np.where(a > b, np.inf, a)),
                lambda a, b: T.isfinite(T.where(a > b, np.inf, a)), "isfinite"),
    _where_bool(lambda a, b: np.signbit(a - b), lambda a, b: T.signbit(a - b), "signbit"),
    # scipy.special
    Case("expit", sc.expit, T.sigmoid, ("real",)),
    Case("log_expit", sc.log_expit, F.logsigmoid, ("real",)),
    Case("logit", sc.logit, T.logit, ("probability",)),
    Case("erf", sc.erf, T.erf, ("real",)),
    Case("erfc", sc.erfc, T.erfc, ("real",)),
    Case("xlogy", sc.xlogy, T.xlogy, ("real", "positive")),
    Case("xlog1py", sc.xlog1py, T.special.xlog1py, ("real", "above_minus_one")),
    Case("gammaln", sc.gammaln, T.lgamma, ("gamma",)),
    Case("digamma", sc.digamma, T.digamma, ("gamma",)),
    Case("digamma", sc.psi, T.digamma, ("gamma",), "psi"),
]

CASE_IDS = [c.id for c in CASES]
