"""Simplification: stability rewrites (the rule table is in `stability.py`), seen through named
values; kinks resolved by cases; np.where products folded into their branches; CSE.

Kinks: an expression with |z|, max(z, 0), sign(z) or where(z > 0, ...) is evaluated for z > 0
and z < 0 separately; when both cases (after the stability rules) are the same expression, and
it also agrees at z = 0, the kinks were only apparent and that one expression replaces them.
That is how the gradient of BCE-with-logits becomes sigmoid(z) - y.
"""
from __future__ import annotations

from typing import Callable

import sympy as sp

from .stability import STABILITY_RULES, heads_present, stabilize, stabilize_counting
from .expressions import rebuild_node, substitute
from .functions import KINKED, sigmoid, softplus

MAX_KINK_SPLIT_OPS = 400


# ---------------------------------------------------------------------------------------------
# Stability rules see through named values
# ---------------------------------------------------------------------------------------------
SEE_THROUGH_DEPTH = 3  # levels of named values written out
SEE_THROUGH_MAX_OPS = 200


def tree_ops(expr: sp.Basic) -> int:
    """About `sp.count_ops(expr)`: the operations of `expr` written out as a tree, but counted
    once per distinct subexpression. count_ops walks the tree, which is exponential in the
    nesting depth when subexpressions are shared (sin(e)*cos(e), thirty deep)."""
    size: dict[sp.Basic, int] = {}
    stack = [(expr, False)]
    while stack:
        e, expanded = stack.pop()
        if e in size:
            continue
        if e.is_Atom or not e.args:
            size[e] = 0
        elif not expanded:
            stack.append((e, True))
            stack.extend((a, False) for a in e.args if a not in size)
        else:
            own = len(e.args) - 1 if isinstance(e, (sp.Add, sp.Mul)) else 1
            size[e] = own + sum(size[a] for a in e.args)
    return size[expr]


def symbols_in(expr: sp.Basic) -> set[sp.Symbol]:
    """`expr.free_symbols`, visiting each distinct subexpression once (SymPy's free_symbols
    walks the tree: exponential in the nesting depth when subexpressions are shared)."""
    seen: set[sp.Basic] = set()
    found: set[sp.Symbol] = set()
    stack = [expr]
    while stack:
        e = stack.pop()
        if e.is_Atom:  # numbers are slow to hash (Float): never put them in `seen`
            if isinstance(e, sp.Symbol):
                found.add(e)
        elif e not in seen:
            seen.add(e)
            stack.extend(e.args)
    return found


def see_through_values(exprs: list[sp.Expr], definitions: dict[sp.Symbol, sp.Expr]
                       ) -> list[sp.Expr]:
    """Each expression with the elementwise values it reads written out (up to three levels),
    where that lets a stability rule fire that cannot fire on the expression as it is.

    `e = np.exp(z); np.log(1 + e)` keeps `e` as a named value (the backward pass reads it too),
    so `log(1 + v)` alone shows no softplus; written out it does. CSE shares what is repeated.
    Values are written out stabilized, and never the arguments of kinks (resolving kinks needs
    them as symbols).
    """
    kink_arguments = {k for e in exprs for k in kink_symbols(e)}
    definitions = {s: stabilize(d) for s, d in definitions.items() if s not in kink_arguments}
    own_types: dict[sp.Basic, set[type]] = {}
    own_symbols: dict[sp.Basic, set[sp.Symbol]] = {}

    def symbols_of(e: sp.Basic) -> set[sp.Symbol]:
        if e not in own_symbols:
            own_symbols[e] = symbols_in(e)
        return own_symbols[e]

    def types_in(e: sp.Basic) -> set[type]:
        if e not in own_types:
            own_types[e] = {type(n) for n in sp.preorder_traversal(e)}
        return own_types[e]

    def reachable_types(e: sp.Expr) -> set[type]:
        types, frontier = set(types_in(e)), [e]
        for _ in range(SEE_THROUGH_DEPTH):
            frontier = [definitions[s] for f in frontier for s in symbols_of(f)
                        if s in definitions]
            for f in frontier:
                types |= types_in(f)
        return types

    result = []
    for expr in exprs:
        if not any(s in definitions for s in symbols_of(expr)) or not any(
                heads_present(rule, reachable_types(expr)) for rule in STABILITY_RULES):
            result.append(expr)
            continue
        expanded = expr
        for _ in range(SEE_THROUGH_DEPTH):
            expanded = substitute(expanded, {s: definitions[s] for s in symbols_in(expanded)
                                             if s in definitions})
        better = tree_ops(expanded) <= SEE_THROUGH_MAX_OPS and (
            stabilize_counting(expanded)[1] > stabilize_counting(expr)[1])
        result.append(expanded if better else expr)
    return result


# ---------------------------------------------------------------------------------------------
# Kinks resolved by cases
# ---------------------------------------------------------------------------------------------
def kink_symbols(expr: sp.Expr) -> list[sp.Symbol]:
    """Symbols at which `expr` has a kink that splitting by cases may remove.

    A Piecewise with an equality condition is a convention at a singular point (0 where PyTorch
    has 0, instead of 0/0 or 0*inf): evaluating both sides away from the point and comparing
    the results there would let SymPy's 0*x = 0 erase it, so its symbols are never split.
    """
    found: set[sp.Symbol] = set()
    protected: set[sp.Basic] = set()
    for kink in expr.atoms(sp.Piecewise):
        if any(c.atoms(sp.Eq) for _, c in kink.args):
            protected |= kink.free_symbols
    for kink in expr.atoms(*KINKED):
        if isinstance(kink, sp.Piecewise):
            arguments = [c for _, c in kink.args]
        else:
            arguments = kink.args
        for argument in arguments:
            if isinstance(argument, sp.Symbol):
                found.add(argument)
            elif isinstance(argument, sp.core.relational.Relational):
                found.update(s for s in (argument.lhs, argument.rhs) if isinstance(s, sp.Symbol))
    return sorted(found - protected, key=lambda s: s.name)


def _normal(expr: sp.Expr) -> sp.Expr:
    """A form in which equal expressions built from sigmoid/softplus compare equal."""
    expr = expr.replace(
        lambda e: isinstance(e, sigmoid) and e.args[0].could_extract_minus_sign(),
        lambda e: 1 - sigmoid(-e.args[0]))
    expr = expr.replace(
        lambda e: isinstance(e, softplus) and e.args[0].could_extract_minus_sign(),
        lambda e: softplus(-e.args[0]) + e.args[0])
    return sp.expand(expr)


def resolve_kinks(expr: sp.Expr, fired: set[str] | None = None) -> sp.Expr:
    kinks = kink_symbols(expr)
    if not kinks or tree_ops(expr) > MAX_KINK_SPLIT_OPS:
        return expr
    for k in kinks:
        resolved = _split_at(expr, k)
        if resolved is not None:
            expr = resolved
            if fired is not None:
                fired.add("kinks resolved by cases (|z|, max, sign, where)")
    return expr


def _split_at(expr: sp.Expr, k: sp.Symbol) -> sp.Expr | None:
    positive = sp.Symbol(f"{k.name}_positive", positive=True)
    negative = sp.Symbol(f"{k.name}_negative", negative=True)
    cases = []
    for case in (positive, negative):
        branch = stabilize(expr.xreplace({k: case})).xreplace({case: k})
        if any(k in kink.free_symbols for kink in branch.atoms(*KINKED)):
            return None
        cases.append(branch)
    if _normal(cases[0]) != _normal(cases[1]):
        return None
    chosen = min(cases, key=lambda e: (sp.count_ops(e), sp.srepr(e)))
    if _normal(expr.xreplace({k: sp.S.Zero})) != _normal(chosen.xreplace({k: sp.S.Zero})):
        return None
    return chosen


# ---------------------------------------------------------------------------------------------
# Branch-correct products: a factor of np.where moves into the branches
# ---------------------------------------------------------------------------------------------
MAX_FOLDED_PIECEWISE = 2  # Piecewise factors one product may fold (branches multiply)


def fold_piecewise_products(expr: sp.Expr) -> sp.Expr:
    """`rest * Piecewise((u, c), (v, True))` -> `Piecewise((rest*u, c), (rest*v, True))`, and
    Piecewise terms of a sum with the same conditions merged into one.

    The derivative of where(c, a, b) is a Piecewise of 1s and 0s that the chain rule multiplies
    by the branch's own derivative; where that is inf or NaN (sqrt(x) at x < 0, exp(x) at 1000)
    the unselected branch would give 0*inf = NaN. Inside the branch the product is computed
    only where it is selected (np.where), and SymPy's 0*rest = 0 makes the other branch 0.
    """
    if not expr.has(sp.Piecewise):
        return expr

    def fold(e: sp.Basic) -> sp.Basic:
        if not e.args or not e.has(sp.Piecewise) or isinstance(e, sp.Piecewise):
            return e.func(*[(fold(v), c) for v, c in e.args]) if isinstance(
                e, sp.Piecewise) else e
        e = e.func(*[fold(a) for a in e.args])
        if isinstance(e, sp.Add):
            return _merge_piecewise(e)
        if not isinstance(e, sp.Mul):
            return e
        e = _merge_piecewise(e)
        if not isinstance(e, sp.Mul):
            return fold(e) if isinstance(e, sp.Piecewise) else e
        pieces = [f for f in e.args if isinstance(f, sp.Piecewise)]
        if not pieces or len(pieces) > MAX_FOLDED_PIECEWISE:
            return e
        piece = pieces[0]
        rest = sp.Mul(*[f for f in e.args if f is not piece])
        return sp.Piecewise(*[(fold(rest * value), condition)
                              for value, condition in piece.args])

    return fold(expr)


def _merge_piecewise(e: sp.Expr) -> sp.Expr:
    """The Piecewise arguments of a product (or sum) that have the same conditions, in the same
    order, as one Piecewise of their products (or sums) per branch."""
    combine = e.func  # sp.Mul or sp.Add
    groups: dict[tuple, list[sp.Piecewise]] = {}
    others = []
    for argument in e.args:
        if isinstance(argument, sp.Piecewise):
            groups.setdefault(tuple(c for _, c in argument.args), []).append(argument)
        else:
            others.append(argument)
    if all(len(g) == 1 for g in groups.values()):
        return e
    merged = [sp.Piecewise(*[(combine(*[t.args[k][0] for t in group]), condition)
                             for k, condition in enumerate(conditions)])
              for conditions, group in groups.items()]
    return combine(*others, *merged)


def simplify_expression(expr: sp.Expr, fired: set[str]) -> sp.Expr:
    expr = stabilize(expr, fired)
    expr = resolve_kinks(expr, fired)
    return _integral_floats_exact(fold_piecewise_products(expr))


def _integral_floats_exact(expr: sp.Expr) -> sp.Expr:
    """Whole-number floats made by arithmetic on constants (the 0.5 of 0.5*a**2 times the 2 of
    its derivative) as integers: SymPy keeps a factor 1.0, which would cost a pass."""
    floats = {f: sp.Integer(int(f)) for f in expr.atoms(sp.Float)
              if f.is_finite and float(f).is_integer() and abs(f) < 2**53}
    return expr.xreplace(floats) if floats else expr


# ---------------------------------------------------------------------------------------------
# Common subexpressions
# ---------------------------------------------------------------------------------------------
def _worth_naming(e: sp.Basic) -> bool:
    """Compound expressions only: not symbols, numbers, or a negated symbol."""
    if e.is_Atom or not isinstance(e, sp.Expr):
        return False
    if isinstance(e, sp.Mul) and len(e.args) == 2 and e.args[0] == -1 and e.args[1].is_Atom:
        return False
    return True


def common_subexpressions(exprs: list[sp.Expr], make_symbol: Callable[[], sp.Symbol]
                          ) -> tuple[list[tuple[sp.Symbol, sp.Expr]], list[sp.Expr]]:
    """Name every compound subexpression that occurs more than once, across all `exprs`.

    SymPy's `cse` does this too, but re-evaluates every rebuilt node (milliseconds per
    transcendental function on large graphs); this pass is linear in the expression DAG and
    rebuilds without evaluating functions. Returns (temporaries in definition order, reduced).
    """
    seen: set[sp.Basic] = set()
    repeated: set[sp.Basic] = set()
    for root in exprs:
        stack = [root]
        while stack:
            e = stack.pop()
            if not _worth_naming(e) and e.is_Atom:
                continue
            if e in seen:
                if _worth_naming(e):
                    repeated.add(e)
                continue
            seen.add(e)
            stack.extend(e.args)

    # x**-q beside x**q (1/sqrt(t) beside sqrt(t)): compute the power once and divide by it.
    reciprocal: dict[sp.Basic, sp.Basic] = {}
    for e in seen:
        if isinstance(e, sp.Pow) and e.exp.is_Rational and e.exp.is_negative and e.exp != -1:
            positive = sp.Pow(e.base, -e.exp)
            if positive in seen:
                reciprocal[e] = positive
                repeated.add(positive)

    replacements: list[tuple[sp.Symbol, sp.Expr]] = []
    rebuilt: dict[sp.Basic, sp.Basic] = {}

    def rebuild(root: sp.Basic) -> sp.Basic:
        stack = [(root, False)]
        while stack:
            e, expanded = stack.pop()
            if e in rebuilt or e.is_Atom:
                continue
            if not expanded:
                stack.append((e, True))
                children = (reciprocal[e],) if e in reciprocal else e.args
                stack.extend((a, False) for a in reversed(children))
                continue
            if e in reciprocal:
                new = sp.Pow(rebuilt[reciprocal[e]], -1)
            else:
                args = [rebuilt.get(a, a) for a in e.args]
                new = e if all(n is o for n, o in zip(args, e.args)) else rebuild_node(e, args)
            if e in repeated:
                symbol = make_symbol()
                replacements.append((symbol, new))
                new = symbol
            rebuilt[e] = new
        return rebuilt.get(root, root)

    reduced = [rebuild(e) for e in exprs]
    return replacements, reduced
