"""In-place printing: an expression as numpy operations that write into an existing array.

`t13 = -e*P_bar/t6**2`, computed into the array of a value no longer read (`buffers.py`),
becomes

    t13 = np.multiply(e, P_bar, out=P)
    t13 /= t6**2
    np.negative(t13, out=t13)

The first operation writes into the reused array, every later one updates it in place, so the
statement allocates nothing of its own size. Where an expression has no such form (a bare
name, np.where, a helper call) `plan` returns None and the statement keeps its one line.

The steps are data (`Call`, `Update`, `Same`) whose operands are SymPy expressions: what a
step reads is known from them (`InPlace.reads`), and they are printed once, by `print_step`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

import sympy as sp

from .printer import (NUMPY_FUNCTIONS, InlineCode, NumpyExpressionPrinter, common_divisor,
                      float_literal)
from ...symbolic.functions import softplus

_UNARY = {name for name in NUMPY_FUNCTIONS if name not in (
    "hypot", "atan2", "logaddexp", "logaddexp2")}
_UPDATES = {"add": "+=", "subtract": "-=", "multiply": "*=", "divide": "/="}
_BINARY = {"hypot": "hypot", "atan2": "arctan2", "logaddexp": "logaddexp",
           "logaddexp2": "logaddexp2", "Max": "maximum", "Min": "minimum"}


@dataclass(frozen=True)
class Target:
    """The array being computed, as an operand of a step that updates it (`np.exp(t, out=t)`):
    it is the value itself, so it reads no other value's array."""

    name: str


@dataclass(frozen=True)
class FloatText:
    """A float constant as the exact text `float_literal` gives it (`t *= 0.1`)."""

    text: str


Operand = Union[sp.Expr, Target, FloatText]


@dataclass(frozen=True)
class Call:
    """`np.<function>(*operands, out=<out>[, where=<where>])`."""

    function: str
    operands: tuple[Operand, ...]
    out: str
    where: sp.Expr | None = None


@dataclass(frozen=True)
class Update:
    """`<name> <operator> <operand>`: an augmented assignment (`t += c`)."""

    name: str
    operator: str
    operand: Operand


@dataclass(frozen=True)
class Same:
    """The array already holds the value: nothing computed (the target only binds it)."""

    out: str


Step = Union[Call, Update, Same]


@dataclass(frozen=True)
class InPlace:
    """`target = <first step>`, then steps that update `target` in place."""

    target: str
    steps: tuple[Step, ...]

    def reads(self, k: int) -> set[sp.Symbol]:
        """The symbols that step `k` reads (InlineCode ones included, as themselves)."""
        step = self.steps[k]
        if isinstance(step, Same):
            return set()
        operands = step.operands if isinstance(step, Call) else (step.operand,)
        if isinstance(step, Call) and step.where is not None:
            operands = operands + (step.where,)
        return {s for operand in operands for s in _reads(operand)}

    @property
    def first_write(self) -> int:
        """The index of the step that first writes the array (after a bare binding)."""
        return 1 if isinstance(self.steps[0], Same) else 0


class InplaceWriter:
    """Writes expressions into existing arrays. `shape_of(expr)` is the shape numpy
    broadcasting gives `expr`; operands of that full shape are preferred as the first step."""

    def __init__(self, printer: NumpyExpressionPrinter,
                 shape_of: Callable[[sp.Expr], tuple[int, ...]]):
        self.printer = printer
        self.shape_of = shape_of

    def plan(self, expr: sp.Expr, target: str, buffer: str) -> InPlace | None:
        """The steps that compute `expr` into `buffer`: the first binds `target` (the same
        array), the others update `target` in place."""
        self.full = self.shape_of(expr)
        steps = self._into(expr, buffer, target)
        return None if steps is None else InPlace(target, tuple(steps))

    def steps(self, expr: sp.Expr, target: str, buffer: str) -> list[str] | None:
        """`plan`, printed: one line a step."""
        plan = self.plan(expr, target, buffer)
        return None if plan is None else self.lines(plan)

    def lines(self, plan: InPlace) -> list[str]:
        return [f"{target} = {code}" if target else code
                for target, code in self.assignments(plan)]

    def assignments(self, plan: InPlace) -> list[tuple[str, str]]:
        """(target, code) a step: the first binds the target, the others stand alone."""
        return [(plan.target if k == 0 else "", self.print_step(step))
                for k, step in enumerate(plan.steps)]

    def updates(self, expr: sp.Expr, symbol: sp.Symbol, name: str) -> list[str] | None:
        """Lines that turn the array `name` (of `symbol`), which `expr` reads once, into `expr`
        in place (`h += b`, `np.tanh(h, out=h)`); None where the first step would not read
        the array, since every later step sees it overwritten."""
        self.full = self.shape_of(expr)
        steps = self._into(expr, name, name)
        first = steps[0] if steps else None
        if not isinstance(first, Call) or first.out != name or first.where is not None \
                or symbol not in InPlace(name, (first,)).reads(0):
            return None
        operands = first.operands
        if first.function in _UPDATES and len(operands) == 2 and operands[0] == symbol:
            steps[0] = Update(name, _UPDATES[first.function], operands[1])
        elif first.function in ("add", "multiply") and len(operands) == 2 \
                and operands[1] == symbol:
            steps[0] = Update(name, _UPDATES[first.function], operands[0])
        return [self.print_step(step) for step in steps]

    def print_step(self, step: Step) -> str:
        if isinstance(step, Same):
            return step.out
        if isinstance(step, Update):
            # The right-hand side of an augmented assignment is evaluated whole: no parentheses.
            return f"{step.name} {step.operator} {self._p(step.operand)}"
        operands = ", ".join(self._p(operand) for operand in step.operands)
        where = "" if step.where is None else f", where={self._p(step.where)}"
        return f"np.{step.function}({operands}, out={step.out}{where})"

    # Each _into returns [a call writing into `out`, steps updating `name`...] or None.
    def _into(self, e: sp.Expr, out: str, name: str) -> list[Step] | None:
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
            return [Call("logaddexp", (sp.S.Zero, e.args[0]), out)]
        if function in _UNARY and len(e.args) == 1:
            return self._unary(NUMPY_FUNCTIONS[function], e.args[0], out, name)
        if function in _BINARY and len(e.args) == 2:
            a, b = sorted(e.args, key=sp.default_sort_key) if function in ("Max", "Min") \
                else e.args
            return [Call(_BINARY[function], (a, b), out)]
        return None

    def _p(self, e: Operand) -> str:
        if isinstance(e, Target):
            return e.name
        if isinstance(e, FloatText):
            return e.text
        return self.printer.doprint(e)

    def _start(self, e: sp.Expr, out: str, name: str) -> list[Step] | None:
        """`e` computed into `out`, if it is worth starting from (compound, full size)."""
        if e.is_Atom or isinstance(e, InlineCode) or self.shape_of(e) != self.full:
            return None
        return self._into(e, out, name)

    def _unary(self, function: str, argument: sp.Expr, out: str, name: str) -> list[Step]:
        inner = self._start(argument, out, name)
        if inner is not None:
            return inner + [Call(function, (Target(name),), name)]
        return [Call(function, (argument,), out)]

    def _add(self, e: sp.Add, out: str, name: str) -> list[Step] | None:
        content, primitive = common_divisor(e)
        if content is not None:
            inner = self._add(primitive, out, name)
            return None if inner is None else inner + [Update(name, "/=", sp.Integer(content.q))]
        terms = sorted(self.printer._as_ordered_terms(e, order=None),
                       key=lambda t: t.could_extract_minus_sign())
        masked = [t for t in terms if _masked(t) is not None]
        if masked and len(masked) < len(terms):
            return self._add_masked(terms, masked, out, name)
        if len(terms) == 2 and terms[1].could_extract_minus_sign():  # r - x: x, then r - it
            steps = self._start(-terms[1], out, name)
            if steps is not None:
                return steps + [Call("subtract", (terms[0], Target(name)), name)]
        steps = None
        for k, term in enumerate(terms):
            steps = self._start(term, out, name)
            if steps is not None:
                rest = terms[:k] + terms[k + 1:]
                break
        if steps is None:
            first, second, *rest = terms
            if second.could_extract_minus_sign():
                steps = [Call("subtract", (first, -second), out)]
            else:
                steps = [Call("add", (first, second), out)]
        for term in rest:
            if term.could_extract_minus_sign():
                steps.append(Update(name, "-=", -term))
            else:
                steps.append(Update(name, "+=", term))
        return steps

    def _add_masked(self, terms: list[sp.Expr], masked: list[sp.Expr], out: str,
                    name: str) -> list[Step] | None:
        """a + where(c, v, 0): `a` into the array, then v added only where c holds (the ufunc's
        `where=`), without a full-size array of zeros and v."""
        others = [t for t in terms if t not in masked]
        if len(others) == 1 and isinstance(others[0], sp.Symbol) \
                and not isinstance(others[0], InlineCode) and self._p(others[0]) == out:
            steps: list[Step] = [Same(out)]  # the array already holds `a`: nothing to compute
        else:
            steps = self._into(sp.Add(*others), out, name) if len(others) > 1 else \
                self._start(others[0], out, name)
            if steps is None:
                return None
        for term in masked:
            value, condition = _masked(term)
            steps.append(Call("add", (Target(name), value), name, where=condition))
        return steps

    def _mul(self, e: sp.Mul, out: str, name: str) -> list[Step] | None:
        coefficient, rest = e.as_coeff_Mul()
        factors = sp.Mul.make_args(rest)
        numerators = [f for f in factors if not (f.is_Pow and f.exp.is_negative)]
        denominators = [f.base ** -f.exp for f in factors if f.is_Pow and f.exp.is_negative]
        steps = None
        for k, factor in enumerate(numerators):
            steps = self._start(factor, out, name)
            if steps is not None:
                numerators = numerators[:k] + numerators[k + 1:]
                break
        if steps is None:
            if len(numerators) >= 2:
                a, b, *numerators = numerators
                steps = [Call("multiply", (a, b), out)]
            elif numerators and denominators:
                (a,), (b, *denominators) = numerators, denominators
                numerators = []
                steps = [Call("divide", (a, b), out)]
            elif denominators:
                b, *denominators = denominators
                steps = [Call("divide", (sp.S.One, b), out)]
            elif numerators and coefficient != 1:  # c*x: the coefficient is the operation
                return self._scaled(numerators[0], coefficient, out)
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
        steps += [Update(name, "*=", f) for f in numerators]
        steps += [Update(name, "/=", f) for f in denominators]
        return steps + self._coefficient(coefficient, name)

    @staticmethod
    def _scaled(x: sp.Expr, c: sp.Expr, out: str) -> list[Step]:
        if c == -1:
            return [Call("negative", (x,), out)]
        if c.is_Rational and c.p == 1:
            return [Call("divide", (x, sp.Integer(c.q)), out)]
        return [Call("multiply", (x, c), out)]

    @staticmethod
    def _coefficient(c: sp.Expr, name: str) -> list[Step]:
        if c == 1:
            return []
        negate: list[Step] = [Call("negative", (Target(name),), name)]
        if c == -1:
            return negate
        if c.is_Rational:
            steps: list[Step] = [] if abs(c.p) == 1 else [Update(name, "*=", sp.Integer(abs(c.p)))]
            steps += [] if c.q == 1 else [Update(name, "/=", sp.Integer(c.q))]
            return steps + (negate if c < 0 else [])
        return [Update(name, "*=", FloatText(float_literal(float(c))))]

    def _pow(self, e: sp.Pow, out: str, name: str) -> list[Step] | None:
        base, exponent = e.args
        functions = {sp.Integer(2): ["square"], sp.S.Half: ["sqrt"],
                     sp.Integer(-1): ["reciprocal"], -sp.S.Half: ["sqrt", "reciprocal"]}
        inner = self._start(base, out, name)
        if exponent in functions:
            first, *more = functions[exponent]
            if inner is None:
                if exponent == -1:  # 1/x: np.reciprocal is integer division on integers
                    return [Call("divide", (sp.S.One, base), out)]
                inner = [Call(first, (base,), out)]
            else:
                more = [first] + more
            return inner + [Call(function, (Target(name),), name) for function in more]
        if inner is None:
            return [Call("power", (base, exponent), out)]
        return inner + [Call("power", (Target(name), exponent), name)]


def _reads(operand: Operand) -> set[sp.Symbol]:
    if isinstance(operand, (Target, FloatText)):
        return set()
    if isinstance(operand, sp.Basic):
        return set(operand.free_symbols)
    raise TypeError(f"an in-place step's operand is a SymPy expression, a Target or a "
                    f"FloatText, not {type(operand).__name__}")


def _masked(term: sp.Expr) -> tuple[sp.Expr, sp.Expr] | None:
    """(k*v, c) for k*where(c, v, 0) with a constant k, else None."""
    factor, core = term.as_coeff_Mul()
    if isinstance(core, sp.Piecewise) and len(core.args) == 2 and core.args[1] == (0, True):
        value, condition = core.args[0]
        return factor * value, condition
    return None
