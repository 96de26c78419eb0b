"""The SymPy side of elementwise ops: their forms, and derivatives with explicit conventions.

`namespace` is what op forms in `ops.py` receive as `s`. `local_form(node)` is a node's own
expression over positional symbols a0, a1, ...; `partial(expr, symbol)` is `sympy.diff` plus the
conventions for kinks and piecewise-constant functions (SymPy's own answers there, DiracDelta and
unevaluated Derivative, are not gradients anyone can use).
"""
from __future__ import annotations

import types
from functools import lru_cache
from typing import Callable, Sequence

import sympy as sp

from . import functions as sf
from ..errors import GradientError
from ..ir.graph import Node
from ..ir.ops import OPS

def _deferred(function: type) -> Callable[..., sp.Expr]:
    """Apply a transcendental function without SymPy's automatic evaluation on compound
    arguments: its eval hunts for multiples of pi and i and asks the assumptions system about
    the whole argument, milliseconds a node on large graphs, for rewrites we do not need.
    Atoms (symbols, numbers) are evaluated as usual, so sin(0) is still 0."""
    def apply(*args: sp.Expr) -> sp.Expr:
        if all(a.is_Atom for a in args):
            return function(*args)
        return function(*args, evaluate=False)
    return apply


_TRANSCENDENTAL = ("exp", "log", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh",
                   "tanh", "asinh", "acosh", "atanh")

_DEFERRED_CLASSES = tuple(getattr(sp, name) for name in _TRANSCENDENTAL)


def substitute(expr: sp.Expr, mapping: dict[sp.Basic, sp.Expr]) -> sp.Expr:
    """`expr.xreplace(mapping)`, rebuilding transcendental functions the `_deferred` way."""
    rebuilt: dict[sp.Basic, sp.Basic] = {}

    def rebuild(e: sp.Basic) -> sp.Basic:
        if e in mapping:
            return mapping[e]
        if not e.args:
            return e
        if e in rebuilt:
            return rebuilt[e]
        args = [rebuild(a) for a in e.args]
        result = e if all(n is o for n, o in zip(args, e.args)) else rebuild_node(e, args)
        rebuilt[e] = result
        return result

    return rebuild(expr)


def rebuild_node(e: sp.Basic, args: Sequence[sp.Basic]) -> sp.Basic:
    """`e` with new arguments; transcendental functions of compound arguments unevaluated."""
    if isinstance(e, _DEFERRED_CLASSES) and not all(a.is_Atom for a in args):
        return e.func(*args, evaluate=False)
    if isinstance(e, sp.Pow) and args[0].is_zero and args[1].is_negative:
        return Literal(float("inf"))  # 1/0 as numpy computes it, not SymPy's complex infinity
    return e.func(*args)


namespace = types.SimpleNamespace(**{
    name: getattr(sp, name) for name in (
        "sqrt", "Abs", "sign", "Max", "Min", "floor", "ceiling",
        "Piecewise", "Gt", "Ge", "Lt", "Le", "Eq", "Ne", "And", "Or", "Not", "Xor", "erf",
        "erfc")
}, **{name: _deferred(getattr(sp, name)) for name in _TRANSCENDENTAL}, **{
    name: getattr(sf, name) for name in (
        "exp2", "expm1", "log2", "log10", "log1p", "hypot", "logaddexp", "logaddexp2", "cbrt",
        "rint", "trunc", "power", "fmax", "fmin", "clip", "arctan2", "sigmoid", "softplus",
        "logit", "xlogy", "xlog1py", "gammaln", "digamma", "trigamma", "isnan", "isinf",
        "isfinite", "signbit", "remainder", "fmod", "floor_divide")
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
