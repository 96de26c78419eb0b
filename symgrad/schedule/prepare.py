"""The shared front of every backend: lift the outputs to SymPy, then the stable forms."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import sympy as sp

from ..ir.graph import Node
from ..symbolic.lift import Lifted, Value, lift
from ..symbolic.simplify import see_through_values, simplify_expression


@dataclass
class Prepared:
    lifted: Lifted
    rewrites: set[str] = field(default_factory=set)  # the stable forms that fired, by name
    lifted_exprs: list[sp.Expr] = field(default_factory=list)  # as lifted, before the rewrites

    @property
    def expression_values(self) -> list[Value]:
        """The elementwise values (those with a SymPy expression), in creation order."""
        return [v for v in self.lifted.values if v.expr is not None]


def prepare(outputs: Sequence[Node], hints: dict[Node, str], fast_math: bool = False
            ) -> Prepared:
    """Lift (with `fast_math`: SymPy's unsafe folds kept, x - x is 0), see through values
    where that lets a stable form fire, and simplify each expression (stability rewrites,
    kinks resolved by cases): the same for every backend."""
    lifted = lift(outputs, hints, fast_math)
    prepared = Prepared(lifted)
    values = prepared.expression_values
    prepared.lifted_exprs = [v.expr for v in values]
    seen = see_through_values(prepared.lifted_exprs, {v.symbol: v.expr for v in values})
    for value, expr in zip(values, seen):
        value.expr = simplify_expression(expr, prepared.rewrites)
    return prepared
