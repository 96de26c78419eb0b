"""Stability rewrites: a rule table mapping forms that overflow to stable primitives.

A symbolic derivative can be exact and still overflow: d/dz log(1+e^z) = e^z/(1+e^z) is NaN at
z=1000. `STABILITY_RULES` maps such forms to stable primitives (sigmoid, softplus, logaddexp,
xlogy, hypot), for primal and derivative expressions alike. Each rule is a row: a name (reported
by `lower(...).rewrites`), the SymPy heads that must occur for it to fire, a match and a
rewrite. tests/test_stability.py holds a case at extreme inputs for every rule.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sympy as sp

from .functions import divide_or_zero, hypot, log1p, logaddexp, sigmoid, softplus, xlogy


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


def _over_own_hypot(e: sp.Basic, head: type = hypot) -> tuple[int, int] | None:
    """Positions (i, j) of a factor `a` and hypot(a, b)**-1 (or |a|**-1) in a product."""
    if not isinstance(e, sp.Mul):
        return None
    for j, f in enumerate(e.args):
        if isinstance(f, sp.Pow) and f.exp == -1 and isinstance(f.base, head):
            for i, h in enumerate(e.args):
                if h in f.base.args:
                    return i, j
    return None


def _divide_by_own_hypot(e: sp.Mul) -> sp.Expr:
    """a/hypot(a, b) is in [-1, 1], 0/0 only at the origin: there the min-norm subgradient 0."""
    i, j = _over_own_hypot(e)
    rest = [f for t, f in enumerate(e.args) if t not in (i, j)]
    return sp.Mul(*rest) * divide_or_zero(e.args[i], e.args[j].base)


def _divide_by_own_abs(e: sp.Mul) -> sp.Expr:
    """a/|a| is sign(a): 0 at 0, symgrad's convention for |a| (sqrt(x*x) is |x|)."""
    i, j = _over_own_hypot(e, sp.Abs)
    rest = [f for t, f in enumerate(e.args) if t not in (i, j)]
    return sp.Mul(*rest) * sp.sign(e.args[i])


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
    Rule("sign: a/|a|, 0 at 0", (sp.Abs, sp.Pow, sp.Mul),
         lambda e: _over_own_hypot(e, sp.Abs) is not None, _divide_by_own_abs),
)


def stabilize(expr: sp.Expr, fired: set[str] | None = None) -> sp.Expr:
    """Apply every stability rule, bottom-up, until none fires."""
    return stabilize_counting(expr, fired)[0]


def stabilize_counting(expr: sp.Expr, fired: set[str] | None = None) -> tuple[sp.Expr, int]:
    """`stabilize`, and how many rewrites it made."""
    applications = 0
    for _ in range(4):
        before = expr
        present = {type(e) for e in sp.preorder_traversal(expr)}
        for rule in STABILITY_RULES:
            if not heads_present(rule, present):
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


def heads_present(rule: Rule, types: set[type]) -> bool:
    return all(any(issubclass(t, head) for t in types) for head in rule.heads)
