"""The SymPy side of elementwise ops: their forms, and derivatives with explicit conventions.

`namespace` is what op forms in `ops.py` receive as `s`. `local_form(node)` is a node's own
expression over positional symbols a0, a1, ...; `partial(expr, symbol)` is `sympy.diff` plus the
conventions for kinks and piecewise-constant functions (SymPy's own answers there, DiracDelta and
unevaluated Derivative, are not gradients anyone can use).
"""
from __future__ import annotations

import types
from functools import lru_cache
from typing import Sequence

import sympy as sp

from . import sympy_functions as sf
from .errors import GradientError
from .graph import Node
from .ops import OPS

namespace = types.SimpleNamespace(**{
    name: getattr(sp, name) for name in (
        "sqrt", "exp", "log", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh",
        "tanh", "asinh", "acosh", "atanh", "Abs", "sign", "Max", "Min", "floor", "ceiling",
        "Piecewise", "Gt", "Ge", "Lt", "Le", "Eq", "Ne", "And", "Or", "Not")
}, **{
    name: getattr(sf, name) for name in (
        "exp2", "expm1", "log2", "log10", "log1p", "hypot", "logaddexp", "logaddexp2", "cbrt",
        "rint", "trunc", "power", "fmax", "fmin", "clip", "arctan2")
})


@lru_cache(maxsize=None)
def _operand_symbol(k: int, boolean: bool) -> sp.Symbol:
    return sp.Symbol(f"a{k}") if boolean else sp.Symbol(f"a{k}", real=True)


def operand_symbols(inputs: Sequence[Node]) -> tuple[sp.Symbol, ...]:
    """One positional symbol per input: a0, a1, ... (real, or plain for boolean inputs)."""
    return tuple(_operand_symbol(k, n.dtype == "bool") for k, n in enumerate(inputs))


def symbol_for(node_dtype: str, name: str) -> sp.Symbol:
    if node_dtype == "bool":
        return sp.Symbol(name)
    return sp.Symbol(name, real=True)


def local_form(node: Node) -> tuple[sp.Expr, tuple[sp.Symbol, ...]]:
    """The node's expression over one positional symbol per input."""
    symbols = operand_symbols(node.inputs)
    if node.op == "ew":
        return node.param("expr"), symbols
    return OPS[node.op].sympy(namespace, *symbols), symbols


def constant_expr(value: object) -> sp.Expr:
    """A Python scalar as SymPy: integral values exact, floats with all their bits."""
    if isinstance(value, bool):
        return sp.true if value else sp.false
    if isinstance(value, int):
        return sp.Integer(value)
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")) or (
            value == 0 and str(value).startswith("-")):
        return Literal(value)
    if value.is_integer() and abs(value) < 2**53:
        return sp.Integer(int(value))
    return sp.Float(value, precision=53)


class Literal(sp.Symbol):
    """A float constant SymPy must not reason about (inf, nan, -0.0), printed exactly."""

    def __new__(cls, value: float):
        obj = super().__new__(cls, f"literal({value!r})", real=True)
        obj.value = value
        return obj

    def __getnewargs__(self):
        return (self.value,)


_DIFFERENTIATION_CONVENTIONS = (
    # d/dx sign(x) and d/dx Heaviside(x) are zero almost everywhere; PyTorch returns 0 at 0.
    (sp.DiracDelta, lambda *args: sp.S.Zero),
)

_PIECEWISE_CONSTANT = (sp.floor, sp.ceiling, sf.rint, sf.trunc)


def partial(expr: sp.Expr, symbol: sp.Symbol) -> sp.Expr:
    """d expr / d symbol, with symgrad's conventions at kinks."""
    # Piecewise-constant functions have derivative zero wherever it exists: differentiate
    # with each one frozen as an opaque symbol, then put it back.
    frozen = {}
    if expr.has(*_PIECEWISE_CONSTANT):
        for atom in expr.atoms(*_PIECEWISE_CONSTANT):
            frozen[atom] = sp.Dummy("piecewise_constant", real=True)
        expr = expr.xreplace(frozen)
    derivative = sp.diff(expr, symbol)
    if frozen:
        derivative = derivative.xreplace({v: k for k, v in frozen.items()})
    for function, replacement in _DIFFERENTIATION_CONVENTIONS:
        if derivative.has(function):
            derivative = derivative.replace(function, replacement)
    if derivative.has(sp.Derivative) or derivative.has(sp.Subs):
        raise GradientError(f"no derivative rule for {expr} with respect to {symbol}")
    return derivative
