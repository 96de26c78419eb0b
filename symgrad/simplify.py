"""Simplification: stability rewrites, kinks resolved by cases, and CSE over everything.

A symbolic derivative can be exact and still overflow: d/dz log(1+e^z) = e^z/(1+e^z) is NaN at
z=1000. `STABILITY_RULES` maps such forms to stable primitives (sigmoid, softplus, logaddexp),
for primal and derivative expressions alike. Each rule is a (name, match, rewrite) row.

Kinks: an expression with |z|, max(z, 0), sign(z) or where(z > 0, ...) is evaluated for z > 0
and z < 0 separately; when both cases (after the stability rules) are the same expression, and
it also agrees at z = 0, the kinks were only apparent and that one expression replaces them.
That is how the gradient of BCE-with-logits becomes sigmoid(z) - y.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sympy as sp

from .symbolic import rebuild_node, substitute
from .sympy_functions import (divide_or_zero, hypot, log1p, logaddexp, sigmoid, softplus,
                              xlogy)

KINK_FUNCTIONS = (sp.Abs, sp.sign, sp.Heaviside, sp.Max, sp.Min, sp.Piecewise)
MAX_KINK_SPLIT_OPS = 400


@dataclass(frozen=True)
class Rule:
    name: str
    heads: tuple[type, ...]  # the rule can only fire where all of these occur
    match: Callable[[sp.Basic], bool]
    rewrite: Callable[[sp.Basic], sp.Basic]


def _one_plus_exp(e: sp.Basic) -> sp.Expr | None:
    """The `a` of `1 + exp(a)`, else None."""
    if isinstance(e, sp.Add) and len(e.args) == 2 and sp.S.One in e.args:
        other = e.args[0] if e.args[1] == 1 else e.args[1]
        if isinstance(other, sp.exp):
            return other.args[0]
    return None


def _is_logistic_ratio(e: sp.Basic) -> bool:
    return isinstance(e, sp.Mul) and any(
        isinstance(f, sp.Pow) and f.exp.is_Integer and f.exp < 0 and _one_plus_exp(f.base)
        is not None for f in e.args)


def _logistic_ratio(e: sp.Mul) -> sp.Expr:
    """exp(m*a)**1 * (1 + exp(a))**-n  ->  sigmoid(a)**m * sigmoid(-a)**(n-m), for 0<=m<=n."""
    factors = list(e.args)
    for i, f in enumerate(factors):
        if not (isinstance(f, sp.Pow) and f.exp.is_Integer and f.exp < 0):
            continue
        a = _one_plus_exp(f.base)
        if a is None:
            continue
        n = -int(f.exp)
        for j, h in enumerate(factors):
            if j != i and isinstance(h, sp.exp):
                m = sp.simplify(h.args[0] / a) if h.args[0].has(*a.free_symbols) else None
                if m is not None and m.is_Integer and 1 <= m <= n:
                    rest = [x for t, x in enumerate(factors) if t not in (i, j)]
                    return sp.Mul(*rest) * sigmoid(a) ** int(m) * sigmoid(-a) ** (n - int(m))
        rest = [x for t, x in enumerate(factors) if t != i]
        return sp.Mul(*rest) * sigmoid(-a) ** n
    return e


def _exp_terms(e: sp.Basic) -> list[sp.Expr] | None:
    """The exponents of a sum of two or more exponentials, else None."""
    if isinstance(e, sp.Add) and all(isinstance(t, sp.exp) for t in e.args):
        return [t.args[0] for t in e.args]
    return None


def _logaddexp_all(exponents: list[sp.Expr]) -> sp.Expr:
    result = exponents[0]
    for exponent in exponents[1:]:
        result = logaddexp(result, exponent)
    return result


def _is_softmax_ratio(e: sp.Basic) -> bool:
    return isinstance(e, sp.Mul) and any(
        isinstance(f, sp.Pow) and f.exp.is_Integer and f.exp < 0 and _exp_terms(f.base)
        for f in e.args)


def _softmax_ratio(e: sp.Mul) -> sp.Expr:
    """exp(u) * (exp(a) + exp(b) + ...)**-n -> exp(u - n*logaddexp(a, b, ...)); for two terms
    and u in (a, b), sigmoid(a - b). The exponent is <= 0 where it matters: no overflow."""
    factors = list(e.args)
    i = next(k for k, f in enumerate(factors) if isinstance(f, sp.Pow) and f.exp.is_Integer
             and f.exp < 0 and _exp_terms(f.base))
    exponents, n = _exp_terms(factors[i].base), -int(factors[i].exp)
    numerators = [k for k, f in enumerate(factors) if k != i and isinstance(f, sp.exp)]
    rest = [f for k, f in enumerate(factors) if k != i and k not in numerators]
    u = sp.Add(*[factors[k].args[0] for k in numerators])
    if n == 1 and len(exponents) == 2 and u in exponents:
        other = exponents[1] if u == exponents[0] else exponents[0]
        return sp.Mul(*rest) * sigmoid(u - other)
    return sp.Mul(*rest) * sp.exp(u - n * _logaddexp_all(exponents))


def _exp_times_sum_of_exps(e: sp.Basic) -> bool:
    return isinstance(e, sp.Mul) and any(isinstance(f, sp.exp) for f in e.args) and any(
        isinstance(f, sp.Add) and f.atoms(sp.exp) and f.has(logaddexp) for f in e.args)


def _combine_exps(e: sp.Mul) -> sp.Expr:
    """exp(u) * (exp(v - LSE) + ...) -> exp(u + v - LSE) + ...: the softmax ratio rule leaves
    such products when the chain rule multiplied by exp(u) outside a sum; combined, the large
    exponents cancel against the logaddexp. Kept only when exponentials are fewer."""
    combined = sp.powsimp(sp.expand_mul(e), combine="exp")
    return combined if len(combined.atoms(sp.exp)) < len(e.atoms(sp.exp)) else e


def _one_minus_sigmoid(e: sp.Basic) -> sp.Expr | None:
    """The `a` of an Add holding 1 - sigmoid(a), else None."""
    if not (isinstance(e, sp.Add) and sp.S.One in e.args):
        return None
    for t in e.args:
        if isinstance(t, sp.Mul) and t.args == (sp.S.NegativeOne, t.args[1]) and isinstance(
                t.args[1], sigmoid):
            return t.args[1].args[0]
    return None


def _replace_one_minus_sigmoid(e: sp.Add) -> sp.Expr:
    a = _one_minus_sigmoid(e)
    return e - 1 + sigmoid(a) + sigmoid(-a)


def _self_log_factor(e: sp.Basic) -> sp.Expr | None:
    """The `x` of a product holding x * log(x), else None."""
    if not isinstance(e, sp.Mul):
        return None
    for f in e.args:
        if isinstance(f, sp.log) and f.args[0] in e.args:
            return f.args[0]
    return None


def _xlogy_of_self(e: sp.Mul) -> sp.Expr:
    x = _self_log_factor(e)
    log_factor = next(f for f in e.args if isinstance(f, sp.log) and f.args[0] == x)
    rest = list(e.args)
    rest.remove(x)
    rest.remove(log_factor)
    return sp.Mul(*rest) * xlogy(x, x)


def _sum_of_two_squares(e: sp.Basic) -> tuple[sp.Expr, sp.Expr] | None:
    """(a, b) of (a**2 + b**2)**(k/2) for a nonzero integer k, else None."""
    if isinstance(e, sp.Pow) and e.exp.is_Rational and e.exp.q <= 2 \
            and isinstance(e.base, sp.Add) \
            and len(e.base.args) == 2 and all(
                isinstance(t, sp.Pow) and t.exp == 2 for t in e.base.args):
        return e.base.args[0].base, e.base.args[1].base
    return None


def _sigmoid_arguments(e: sp.Mul) -> list[sp.Expr]:
    """Arguments of the sigmoid factors (positive powers) of a product."""
    found = []
    for f in e.args:
        base = f.base if isinstance(f, sp.Pow) and f.exp.is_positive else f
        if isinstance(base, sigmoid):
            found.append(base.args[0])
    return found


def _cancels_sigmoid(e: sp.Basic) -> bool:
    return isinstance(e, sp.Mul) and bool(_sigmoid_arguments(e)) and any(
        isinstance(f, sp.Add) for f in e.args)


def _cancel_sigmoid(e: sp.Mul) -> sp.Expr:
    """sigmoid(a) * (1 + exp(-a) + ...) -> 1 + sigmoid(a)*(...): 1 + exp(-a) is 1/sigmoid(a),
    and distributing the product cancels it (the chain rule through log(sigmoid) makes such
    products). Kept only when fewer raw exponentials, or as many and fewer operations, remain."""
    reciprocals = {}
    for a in _sigmoid_arguments(e):
        for sign in (1, -1):
            reciprocals[sign * (1 + sp.exp(-a))] = sign / sigmoid(a)
            reciprocals[sign * (1 + sp.exp(a))] = sign / sigmoid(-a)

    def rewrite_sum(f: sp.Add) -> sp.Expr:
        terms = list(f.args)
        for pair, reciprocal in reciprocals.items():
            if all(t in terms for t in pair.args):
                for t in pair.args:
                    terms.remove(t)
                terms.append(reciprocal)
        return sp.Add(*terms)

    cancelled = sp.expand_mul(e.replace(lambda f: isinstance(f, sp.Add), rewrite_sum))
    exps = lambda x: len(x.atoms(sp.exp))  # noqa: E731
    return cancelled if exps(cancelled) < exps(e) or (
        exps(cancelled) == exps(e) and sp.count_ops(cancelled) < sp.count_ops(e)) else e


def _exp_times_sigmoid(e: sp.Basic) -> tuple[int, int] | None:
    """Positions (i, j) of exp(-a) and sigmoid(a)**k (k >= 1) in a product, else None."""
    if not isinstance(e, sp.Mul):
        return None
    for i, f in enumerate(e.args):
        if isinstance(f, sp.exp):
            for j, h in enumerate(e.args):
                base = h.base if isinstance(h, sp.Pow) and h.exp.is_positive else h
                if isinstance(base, sigmoid) and base.args[0] == -f.args[0]:
                    return i, j
    return None


def _merge_exp_into_sigmoid(e: sp.Mul) -> sp.Expr:
    """exp(-a) * sigmoid(a) = sigmoid(-a): the exponential is gone."""
    i, j = _exp_times_sigmoid(e)
    h = e.args[j]
    s, k = (h.base, h.exp) if isinstance(h, sp.Pow) else (h, 1)
    rest = [f for t, f in enumerate(e.args) if t not in (i, j)]
    return sp.Mul(*rest) * sigmoid(-s.args[0]) * s ** (k - 1)


def _distributes_exp(e: sp.Basic) -> bool:
    """A product of exp(-a) and a sum holding sigmoid(a)."""
    if not isinstance(e, sp.Mul):
        return False
    exponents = {-f.args[0] for f in e.args if isinstance(f, sp.exp)}
    return bool(exponents) and any(
        isinstance(f, sp.Add) and any(s.args[0] in exponents for s in f.atoms(sigmoid))
        for f in e.args)


def _distribute_exp(e: sp.Mul) -> sp.Expr:
    """exp(-a) * (sigmoid(a)**k * u + v) -> sigmoid(-a) * sigmoid(a)**(k-1) * u + exp(-a)*v;
    kept only when raw exponentials are fewer."""
    distributed = sp.expand_mul(e)
    merged = distributed.replace(lambda f: _exp_times_sigmoid(f) is not None,
                                 _merge_exp_into_sigmoid)
    return merged if len(merged.atoms(sp.exp)) < len(e.atoms(sp.exp)) else e


def _over_own_hypot(e: sp.Basic) -> tuple[int, int] | None:
    """Positions (i, j) of a factor `a` and hypot(a, b)**-1 in a product, else None."""
    if not isinstance(e, sp.Mul):
        return None
    for j, f in enumerate(e.args):
        if isinstance(f, sp.Pow) and f.exp == -1 and isinstance(f.base, hypot):
            for i, h in enumerate(e.args):
                if h in f.base.args:
                    return i, j
    return None


def _divide_by_own_hypot(e: sp.Mul) -> sp.Expr:
    """a/hypot(a, b) is in [-1, 1], 0/0 only at the origin: there the min-norm subgradient 0."""
    i, j = _over_own_hypot(e)
    rest = [f for t, f in enumerate(e.args) if t not in (i, j)]
    return sp.Mul(*rest) * divide_or_zero(e.args[i], e.args[j].base)


STABILITY_RULES: tuple[Rule, ...] = (
    Rule("softplus: log1p(exp(a))", (log1p, sp.exp),
         lambda e: isinstance(e, log1p) and isinstance(e.args[0], sp.exp),
         lambda e: softplus(e.args[0].args[0])),
    Rule("softplus: log(1 + exp(a))", (sp.log, sp.exp),
         lambda e: isinstance(e, sp.log) and _one_plus_exp(e.args[0]) is not None,
         lambda e: softplus(_one_plus_exp(e.args[0]))),
    Rule("logaddexp: log(exp(a) + exp(b) + ...)", (sp.log, sp.exp),
         lambda e: isinstance(e, sp.log) and _exp_terms(e.args[0]) is not None,
         lambda e: _logaddexp_all(_exp_terms(e.args[0]))),
    Rule("softmax: exp(u)/(exp(a) + exp(b) + ...)", (sp.exp, sp.Pow), _is_softmax_ratio,
         _softmax_ratio),
    Rule("softmax: exp(u)*(exp(v - logaddexp(...)) + ...)", (sp.exp, logaddexp, sp.Mul, sp.Add),
         _exp_times_sum_of_exps, _combine_exps),
    Rule("sigmoid: exp(a)/(1 + exp(a))", (sp.exp, sp.Pow), _is_logistic_ratio,
         _logistic_ratio),
    Rule("sigmoid: 1/(1 + exp(a))", (sp.exp, sp.Pow),
         lambda e: isinstance(e, sp.Pow) and e.exp.is_Integer and e.exp < 0
         and _one_plus_exp(e.base) is not None,
         lambda e: sigmoid(-_one_plus_exp(e.base)) ** int(-e.exp)),
    Rule("sigmoid: 1 - sigmoid(a)", (sigmoid, sp.Add),
         lambda e: _one_minus_sigmoid(e) is not None, _replace_one_minus_sigmoid),
    Rule("log-sigmoid: log(sigmoid(a))", (sp.log, sigmoid),
         lambda e: isinstance(e, sp.log) and isinstance(e.args[0], sigmoid),
         lambda e: -softplus(-e.args[0].args[0])),
    Rule("xlogy: x*log(x)", (sp.log, sp.Mul), lambda e: _self_log_factor(e) is not None,
         _xlogy_of_self),
    Rule("sigmoid: sigmoid(a) * (1 + exp(-a)) = 1", (sigmoid, sp.Mul, sp.Add), _cancels_sigmoid,
         _cancel_sigmoid),
    Rule("sigmoid: exp(-a)*sigmoid(a) = sigmoid(-a)", (sigmoid, sp.exp, sp.Mul),
         lambda e: _exp_times_sigmoid(e) is not None, _merge_exp_into_sigmoid),
    Rule("sigmoid: exp(-a)*(sigmoid(a)*u + v)", (sigmoid, sp.exp, sp.Mul, sp.Add),
         _distributes_exp, _distribute_exp),
    Rule("hypot: sqrt(a**2 + b**2)", (sp.Pow, sp.Add),
         lambda e: _sum_of_two_squares(e) is not None,
         lambda e: hypot(*_sum_of_two_squares(e)) ** (2 * e.exp)),
    Rule("hypot: a/hypot(a, b), 0 at the origin", (hypot, sp.Pow, sp.Mul),
         lambda e: _over_own_hypot(e) is not None, _divide_by_own_hypot),
)


def stabilize(expr: sp.Expr, fired: set[str] | None = None) -> sp.Expr:
    """Apply every stability rule, bottom-up, until none fires."""
    return _stabilize(expr, fired)[0]


def _stabilize(expr: sp.Expr, fired: set[str] | None = None) -> tuple[sp.Expr, int]:
    """`stabilize`, and how many rewrites it made."""
    applications = 0
    for _ in range(4):
        before = expr
        present = {type(e) for e in sp.preorder_traversal(expr)}
        for rule in STABILITY_RULES:
            if not _heads_present(rule, present):
                continue
            made = []

            def rewrite(e: sp.Basic, r: Rule = rule) -> sp.Basic:
                new = r.rewrite(e)
                if new != e:
                    made.append(e)
                return new

            rewritten = expr.replace(rule.match, rewrite)
            if rewritten != expr:
                applications += len(made)
                if fired is not None:
                    fired.add(rule.name)
            expr = rewritten
        if expr == before:
            break
    return expr, applications


def _heads_present(rule: Rule, types: set[type]) -> bool:
    return all(any(issubclass(t, head) for t in types) for head in rule.heads)


# ---------------------------------------------------------------------------------------------
# Stability rules see through named values
# ---------------------------------------------------------------------------------------------
SEE_THROUGH_DEPTH = 3  # levels of named values written out
SEE_THROUGH_MAX_OPS = 200


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

    def types_in(e: sp.Basic) -> set[type]:
        if e not in own_types:
            own_types[e] = {type(n) for n in sp.preorder_traversal(e)}
        return own_types[e]

    def reachable_types(e: sp.Expr) -> set[type]:
        types, frontier = set(types_in(e)), [e]
        for _ in range(SEE_THROUGH_DEPTH):
            frontier = [definitions[s] for f in frontier for s in f.free_symbols
                        if s in definitions]
            for f in frontier:
                types |= types_in(f)
        return types

    result = []
    for expr in exprs:
        if not any(s in definitions for s in expr.free_symbols) or not any(
                _heads_present(rule, reachable_types(expr)) for rule in STABILITY_RULES):
            result.append(expr)
            continue
        expanded = expr
        for _ in range(SEE_THROUGH_DEPTH):
            expanded = substitute(expanded, {s: definitions[s] for s in expanded.free_symbols
                                             if s in definitions})
        better = sp.count_ops(expanded) <= SEE_THROUGH_MAX_OPS and (
            _stabilize(expanded)[1] > _stabilize(expr)[1])
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
    for kink in expr.atoms(*KINK_FUNCTIONS):
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
    if not kinks or sp.count_ops(expr) > MAX_KINK_SPLIT_OPS:
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
        if any(k in kink.free_symbols for kink in branch.atoms(*KINK_FUNCTIONS)):
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
            return _merge_piecewise_terms(e)
        if not isinstance(e, sp.Mul):
            return e
        e = _merge_piecewise_factors(e)
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


def _merge_piecewise_factors(e: sp.Mul) -> sp.Expr:
    """Piecewise factors with the same conditions, in the same order, as one Piecewise."""
    groups: dict[tuple, list[sp.Piecewise]] = {}
    others = []
    for factor in e.args:
        if isinstance(factor, sp.Piecewise):
            groups.setdefault(tuple(c for _, c in factor.args), []).append(factor)
        else:
            others.append(factor)
    if all(len(g) == 1 for g in groups.values()):
        return e
    merged = [sp.Piecewise(*[(sp.Mul(*[t.args[k][0] for t in group]), condition)
                             for k, condition in enumerate(conditions)])
              for conditions, group in groups.items()]
    return sp.Mul(*others, *merged)


def _merge_piecewise_terms(e: sp.Add) -> sp.Expr:
    """Piecewise terms with the same conditions, in the same order, as one Piecewise."""
    groups: dict[tuple, list[sp.Piecewise]] = {}
    others = []
    for term in e.args:
        if isinstance(term, sp.Piecewise):
            groups.setdefault(tuple(c for _, c in term.args), []).append(term)
        else:
            others.append(term)
    if all(len(g) == 1 for g in groups.values()):
        return e
    merged = [sp.Piecewise(*[(sp.Add(*[t.args[k][0] for t in group]), condition)
                             for k, condition in enumerate(conditions)])
              for conditions, group in groups.items()]
    return sp.Add(*others, *merged)


def simplify_expression(expr: sp.Expr, fired: set[str]) -> sp.Expr:
    expr = stabilize(expr, fired)
    expr = resolve_kinks(expr, fired)
    return fold_piecewise_products(expr)


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
                stack.extend((a, False) for a in reversed(e.args))
                continue
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
