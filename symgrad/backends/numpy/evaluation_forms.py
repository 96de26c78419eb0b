"""The numpy backend's evaluation forms: the same values with fewer passes over memory, chosen
for numpy's loops (a fused backend computes sigmoid and softplus in one pass anyway and keeps
their stable helpers). Every form is exact also at +-inf and NaN.
"""
from __future__ import annotations

import sympy as sp

from ...symbolic.expressions import namespace
from ...symbolic.functions import log1p, sigmoid, sigmoid_given_exp, softplus

# numpy's logaddexp is a scalar loop (~20 ns an element); abs, exp, log1p, maximum are
# vectorised (~1-3 ns). np.heaviside branches on every element: on the random signs of a
# ReLU's input it costs ~6 ns an element, np.sign ~0.4 ns. Below this many elements the call
# count matters more than the loops.
LARGE_ELEMENTWISE = 1024


def evaluation_forms(exprs: list[sp.Expr], sizes: list[int]) -> list[sp.Expr]:
    """Rewrite sigmoid and softplus into forms that share work, exact also at +-inf.

    With e = exp(-|a|), which the CSE pass then computes once for all of them:
    - on large arrays softplus(a) = max(a, 0) + log1p(e), and a sigmoid of the same `a` reuses
      log1p(e): sigmoid(a) = exp(min(a, 0) - log1p(e)); a sigmoid alone is
      exp(min(a, 0)) / (1 + e);
    - anywhere, sigmoid(a) = exp(-softplus(-a)) where softplus(-a) is computed anyway;
    - on large arrays sigmoid(a) * sigmoid(-a), the derivative of a sigmoid, is e/(1 + e)**2:
      exact for every a, with no second exponential.
    Elsewhere sigmoid stays the `_sigmoid` helper and softplus `np.logaddexp(0, a)`.
    On large arrays the step of a maximum's gradient, Heaviside(a) (1/2 at 0), is
    (sign(a) + 1)/2: the same values, NaN included, without a branch per element.
    """
    softplus_arguments = {f.args[0] for e in exprs for f in e.atoms(softplus)}
    out = []
    for expr, size in zip(exprs, sizes):
        large = size >= LARGE_ELEMENTWISE
        if large and expr.has(sigmoid):
            expr = expr.replace(lambda e: e.is_Mul and e.has(sigmoid), _paired_sigmoids)
        if expr.has(sigmoid):
            expr = expr.replace(lambda e: isinstance(e, sigmoid),
                                lambda e: _sigmoid_form(e.args[0], softplus_arguments, large))
        if large and expr.has(softplus):
            expr = expr.replace(lambda e: isinstance(e, softplus),
                                lambda e: sp.Max(e.args[0], 0) + log1p(_exp_minus_abs(e.args[0])))
        if large and expr.has(sp.Heaviside):
            expr = expr.replace(
                lambda e: isinstance(e, sp.Heaviside) and e.args[1:] == (sp.S.Half,),
                lambda e: (sp.sign(e.args[0]) + 1) / 2)
        out.append(expr)
    return out


def _paired_sigmoids(product: sp.Expr) -> sp.Expr:
    """sigmoid(a)**p * sigmoid(-a)**q -> (e/(1 + e)**2)**min(p, q) * the rest, e = exp(-|a|)."""
    powers = product.as_powers_dict()
    pairs = []
    for base, power in list(powers.items()):
        partner = sigmoid(-base.args[0]) if isinstance(base, sigmoid) else None
        if partner is None or base.args[0].could_extract_minus_sign() or partner not in powers \
                or not (power.is_Integer and powers[partner].is_Integer):
            continue
        k = min(power, powers[partner])
        powers[base] -= k
        powers[partner] -= k
        e = _exp_minus_abs(base.args[0])
        pairs.append((e / (1 + e) ** 2) ** k)
    if not pairs:
        return product
    return sp.Mul(*[b ** p for b, p in powers.items()], *pairs)


def _exp_minus_abs(a: sp.Expr) -> sp.Expr:
    a = -a if a.could_extract_minus_sign() else a  # one spelling of |a|, for the CSE pass
    return namespace.exp(-sp.Abs(a, evaluate=a.is_Atom))


def _sigmoid_form(a: sp.Expr, softplus_arguments: set[sp.Expr], large: bool) -> sp.Expr:
    if -a in softplus_arguments:
        return namespace.exp(-softplus(-a))
    if large and a in softplus_arguments:
        return namespace.exp(sp.Min(a, 0) - log1p(_exp_minus_abs(a)))
    if large:
        return sigmoid_given_exp(a, _exp_minus_abs(a))
    return sigmoid(a)
