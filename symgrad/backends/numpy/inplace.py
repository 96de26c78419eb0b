"""In-place printing: an expression as numpy operations that write into an existing array.

`t13 = -e*P_bar/t6**2`, computed into the array of a value no longer read (`buffers.py`),
becomes

    t13 = np.multiply(e, P_bar, out=P)
    t13 /= t6**2
    np.negative(t13, out=t13)

The first operation writes into the reused array, every later one updates it in place, so the
statement allocates nothing of its own size. Where an expression has no such form (a bare
name, np.where, a helper call) `steps` returns None and the statement keeps its one line.
"""
from __future__ import annotations

import re
from typing import Callable

import sympy as sp

from .printer import (NUMPY_FUNCTIONS, InlineCode, NumpyExpressionPrinter, common_divisor,
                      float_literal)
from ...symbolic.functions import softplus

_UNARY = {name for name in NUMPY_FUNCTIONS if name not in (
    "hypot", "atan2", "logaddexp", "logaddexp2")}
_UPDATES = {"add": "+=", "subtract": "-=", "multiply": "*=", "divide": "/="}
_BINARY = {"hypot": "hypot", "atan2": "arctan2", "logaddexp": "logaddexp",
           "logaddexp2": "logaddexp2", "Max": "maximum", "Min": "minimum"}


class InplaceWriter:
    """Writes expressions into existing arrays. `shape_of(expr)` is the shape numpy
    broadcasting gives `expr`; operands of that full shape are preferred as the first step."""

    def __init__(self, printer: NumpyExpressionPrinter,
                 shape_of: Callable[[sp.Expr], tuple[int, ...]]):
        self.printer = printer
        self.shape_of = shape_of

    def steps(self, expr: sp.Expr, target: str, buffer: str) -> list[str] | None:
        """Lines that compute `expr` into `buffer`: the first binds `target` (the same array),
        the others update `target` in place."""
        self.full = self.shape_of(expr)
        lines = self._into(expr, buffer, target)
        if lines is None:
            return None
        return [f"{target} = {lines[0]}"] + lines[1:]

    def updates(self, expr: sp.Expr, name: str) -> list[str] | None:
        """Lines that turn the array `name`, which `expr` reads once, into `expr` in place
        (`h += b`, `np.tanh(h, out=h)`); None where the first step would not read `name`,
        since every later step sees it overwritten."""
        self.full = self.shape_of(expr)
        lines = self._into(expr, name, name)
        first = None if lines is None else re.fullmatch(
            rf"np\.(\w+)\((.*), out={re.escape(name)}\)", lines[0])
        if first is None or not re.search(rf"\b{re.escape(name)}\b", first.group(2)):
            return None
        function, arguments = first.groups()
        if function in _UPDATES and arguments.startswith(f"{name}, "):
            lines[0] = f"{name} {_UPDATES[function]} {arguments[len(name) + 2:]}"
        elif function in ("add", "multiply") and arguments.endswith(f", {name}"):
            lines[0] = f"{name} {_UPDATES[function]} {arguments[:-len(name) - 2]}"
        return lines

    # Each _into returns [call writing into `out`, statements updating `name`...] or None.
    def _into(self, e: sp.Expr, out: str, name: str) -> list[str] | None:
        if isinstance(e, (sp.Symbol, InlineCode)) or e.is_Atom:
            return None
        if isinstance(e, sp.Add):
            return self._add(e, out, name)
        if isinstance(e, sp.Mul):
            return self._mul(e, out, name)
        if isinstance(e, sp.Pow):
            return self._pow(e, out, name)
        function = type(e).__name__
        if isinstance(e, softplus):
            return [f"np.logaddexp(0, {self._p(e.args[0])}, out={out})"]
        if function in _UNARY and len(e.args) == 1:
            return self._unary(f"np.{NUMPY_FUNCTIONS[function]}", e.args[0], out, name)
        if function in _BINARY and len(e.args) == 2:
            a, b = sorted(e.args, key=sp.default_sort_key) if function in ("Max", "Min") \
                else e.args
            return [f"np.{_BINARY[function]}({self._p(a)}, {self._p(b)}, out={out})"]
        return None

    def _p(self, e: sp.Expr) -> str:
        return self.printer.doprint(e)

    def _start(self, e: sp.Expr, out: str, name: str) -> list[str] | None:
        """`e` computed into `out`, if it is worth starting from (compound, full size)."""
        if e.is_Atom or isinstance(e, InlineCode) or self.shape_of(e) != self.full:
            return None
        return self._into(e, out, name)

    def _unary(self, function: str, argument: sp.Expr, out: str, name: str) -> list[str]:
        inner = self._start(argument, out, name)
        if inner is not None:
            return inner + [f"{function}({name}, out={name})"]
        return [f"{function}({self._p(argument)}, out={out})"]

    def _add(self, e: sp.Add, out: str, name: str) -> list[str] | None:
        content, primitive = common_divisor(e)
        if content is not None:
            inner = self._add(primitive, out, name)
            return None if inner is None else inner + [f"{name} /= {content.q}"]
        terms = sorted(self.printer._as_ordered_terms(e, order=None),
                       key=lambda t: t.could_extract_minus_sign())
        masked = [t for t in terms if _masked(t) is not None]
        if masked and len(masked) < len(terms):
            return self._add_masked(terms, masked, out, name)
        if len(terms) == 2 and terms[1].could_extract_minus_sign():  # r - x: x, then r - it
            lines = self._start(-terms[1], out, name)
            if lines is not None:
                return lines + [f"np.subtract({self._p(terms[0])}, {name}, out={name})"]
        lines = None
        for k, term in enumerate(terms):
            lines = self._start(term, out, name)
            if lines is not None:
                rest = terms[:k] + terms[k + 1:]
                break
        if lines is None:
            first, second, *rest = terms
            if second.could_extract_minus_sign():
                lines = [f"np.subtract({self._p(first)}, {self._p(-second)}, out={out})"]
            else:
                lines = [f"np.add({self._p(first)}, {self._p(second)}, out={out})"]
        # The right-hand side of an augmented assignment is evaluated whole: no parentheses.
        for term in rest:
            if term.could_extract_minus_sign():
                lines.append(f"{name} -= {self._p(-term)}")
            else:
                lines.append(f"{name} += {self._p(term)}")
        return lines

    def _add_masked(self, terms: list[sp.Expr], masked: list[sp.Expr], out: str,
                    name: str) -> list[str] | None:
        """a + where(c, v, 0): `a` into the array, then v added only where c holds (the ufunc's
        `where=`), without a full-size array of zeros and v."""
        others = [t for t in terms if t not in masked]
        if len(others) == 1 and self._p(others[0]) == out:
            lines = [out]  # the array already holds `a`: nothing to compute
        else:
            lines = self._into(sp.Add(*others), out, name) if len(others) > 1 else \
                self._start(others[0], out, name)
            if lines is None:
                return None
        for term in masked:
            value, condition = _masked(term)
            lines.append(f"np.add({name}, {self._p(value)}, out={name}, "
                         f"where={self._p(condition)})")
        return lines

    def _mul(self, e: sp.Mul, out: str, name: str) -> list[str] | None:
        coefficient, rest = e.as_coeff_Mul()
        factors = sp.Mul.make_args(rest)
        numerators = [f for f in factors if not (f.is_Pow and f.exp.is_negative)]
        denominators = [f.base ** -f.exp for f in factors if f.is_Pow and f.exp.is_negative]
        lines = None
        for k, factor in enumerate(numerators):
            lines = self._start(factor, out, name)
            if lines is not None:
                numerators = numerators[:k] + numerators[k + 1:]
                break
        if lines is None:
            if len(numerators) >= 2:
                a, b, *numerators = numerators
                lines = [f"np.multiply({self._p(a)}, {self._p(b)}, out={out})"]
            elif numerators and denominators:
                (a,), (b, *denominators) = numerators, denominators
                numerators = []
                lines = [f"np.divide({self._p(a)}, {self._p(b)}, out={out})"]
            elif denominators:
                b, *denominators = denominators
                lines = [f"np.divide(1, {self._p(b)}, out={out})"]
            elif numerators and coefficient != 1:  # c*x: the coefficient is the operation
                return self._scaled(self._p(numerators[0]), coefficient, out, name)
            else:
                return None
        # A constant factor joins a smaller operand (t /= -t6**2) instead of a pass of its own.
        small = [f for f in numerators + denominators if self.shape_of(f) != self.full]
        if coefficient != 1 and small:
            if small[0] in numerators:
                numerators[numerators.index(small[0])] = coefficient * small[0]
            else:
                denominators[denominators.index(small[0])] = small[0] / coefficient
            coefficient = sp.S.One
        lines += [f"{name} *= {self._p(f)}" for f in numerators]
        lines += [f"{name} /= {self._p(f)}" for f in denominators]
        return lines + self._coefficient(coefficient, name)

    def _scaled(self, x: str, c: sp.Expr, out: str, name: str) -> list[str]:
        if c == -1:
            return [f"np.negative({x}, out={out})"]
        if c.is_Rational and c.p == 1:
            return [f"np.divide({x}, {c.q}, out={out})"]
        return [f"np.multiply({x}, {self._p(c)}, out={out})"]

    def _coefficient(self, c: sp.Expr, name: str) -> list[str]:
        if c == 1:
            return []
        if c == -1:
            return [f"np.negative({name}, out={name})"]
        if c.is_Rational:
            lines = [] if abs(c.p) == 1 else [f"{name} *= {abs(c.p)}"]
            lines += [] if c.q == 1 else [f"{name} /= {c.q}"]
            return lines + ([f"np.negative({name}, out={name})"] if c < 0 else [])
        return [f"{name} *= {float_literal(float(c))}"]

    def _pow(self, e: sp.Pow, out: str, name: str) -> list[str] | None:
        base, exponent = e.args
        functions = {sp.Integer(2): ["np.square"], sp.S.Half: ["np.sqrt"],
                     sp.Integer(-1): ["np.reciprocal"], -sp.S.Half: ["np.sqrt", "np.reciprocal"]}
        inner = self._start(base, out, name)
        if exponent in functions:
            first, *more = functions[exponent]
            if inner is None:
                if exponent == -1:  # 1/x: np.reciprocal is integer division on integers
                    return [f"np.divide(1, {self._p(base)}, out={out})"]
                inner = [f"{first}({self._p(base)}, out={out})"]
            else:
                more = [first] + more
            return inner + [f"{function}({name}, out={name})" for function in more]
        if inner is None:
            return [f"np.power({self._p(base)}, {self._p(exponent)}, out={out})"]
        return inner + [f"np.power({name}, {self._p(exponent)}, out={name})"]


def _masked(term: sp.Expr) -> tuple[sp.Expr, sp.Expr] | None:
    """(k*v, c) for k*where(c, v, 0) with a constant k, else None."""
    factor, core = term.as_coeff_Mul()
    if isinstance(core, sp.Piecewise) and len(core.args) == 2 and core.args[1] == (0, True):
        value, condition = core.args[0]
        return factor * value, condition
    return None
