"""Graph-level rewrites: patterns that span reductions and elementwise ops, which the SymPy
stability rules (stability.py) cannot see because a reduction sits in the middle.

They run after tracing and before differentiation, so the derivative is taken of the stable
form. Each rule is one row of a pass in `GRAPH_PASSES`: a name (reported by
`lower(...).rewrites`) and a function that returns the replacement of a node, or None.

- `exp(x) / sum(exp(x))` becomes the `softmax` op and `x - log(sum(exp(x)))` the
  `log_softmax` op (also when written by hand as `x - (m + log(sum(exp(x - m))))`). The ops
  shift by max(x) themselves, so `softmax(x - max(x))` is `softmax(x)`: their gradients are the
  short closed forms y * (g - sum(g * y)) and g - exp(y) * sum(g), with no gradient through the
  shift (zero in exact arithmetic, rounding noise and a tie count per row in floating point).
- `log(sum(exp(x)))` overflows at x = 1000: it becomes `m + log(sum(exp(x - m)))` with
  m = max(x) held constant (the identity holds for every m, so every derivative is unchanged),
  and m = 0 where max(x) is infinite (inf and -inf, not NaN, as torch.logsumexp).
- `m + log(sum(exp(x - m)))` written by hand does not depend on m (held constant along the
  summed axes): m is held constant, so no gradient flows through it (or its ties).
- `sqrt(sum(x*x))` has the gradient x/|x|, NaN at x = 0: it becomes the `norm` op, whose
  gradient there is 0, the minimum-norm subgradient (PyTorch's `linalg.norm` convention).
- `hypot(a, b)**2` (`np.abs(z)**2` of a complex z, a power spectrum) becomes `a*a + b*b`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..ir import reduce as prim_reduce
from ..ir import primitives as prim
from ..ir.graph import Builder, Graph, Node, Shape

GraphRewrite = Callable[[Builder, Node], "Node | None"]


@dataclass(frozen=True)
class GraphRule:
    name: str
    rewrite: GraphRewrite


# What may wrap a shift by the maximum (x - max(x)) without changing its values.
_SHIFT_WRAPPERS = ("stop_gradient", "reshape", "broadcast_to")


def _peel(node: Node, ops: tuple[str, ...]) -> Node:
    while node.op in ops:
        node = node.inputs[0]
    return node


def _already_shifted(x: Node) -> bool:
    """x is `a - max(a)` (the user shifted it already)."""
    if x.op != "subtract":
        return False
    shift = _peel(x.inputs[1], _SHIFT_WRAPPERS)
    return shift.op == "max" and shift.inputs[0] is x.inputs[0]


def _summed_exp(s: Node) -> Node | None:
    """The x of `sum(exp(x))`, if x is a float array not already shifted by its max."""
    if s.op != "sum" or s.inputs[0].op != "exp":
        return None
    x = s.inputs[0].inputs[0]
    if not x.is_float or _already_shifted(x) or x.shape != s.inputs[0].shape:
        return None
    return x


def _logsumexp(b: Builder, node: Node) -> Node | None:
    if node.op != "log":
        return None
    s = node.inputs[0]
    x = _summed_exp(s)
    if x is None:
        return None
    axes, keepdims = s.param("axes"), s.param("keepdims")
    m = prim_reduce.reduce(b, "max", x, axes, True)
    # An infinite maximum shifts by 0 instead: inf - inf would be NaN where the answer is
    # inf (a row holding inf) or -inf (a row of -inf, a fully masked row), as torch.logsumexp.
    m = prim.elementwise(b, "where", prim.elementwise(b, "less", prim.elementwise(
        b, "abs", m), float("inf")), m, 0)
    e = prim.elementwise(b, "exp", prim.elementwise(b, "subtract", x, prim.stop_gradient(b, m)))
    total = prim.reduce_sum(b, e, axes, keepdims)
    shift = prim.stop_gradient(b, prim.reshape(b, m, s.shape))
    return prim.elementwise(b, "add", shift, prim.elementwise(b, "log", total))


def _sum_of_exp(total: Node, shape: Shape) -> tuple[Node, tuple[int, ...]] | None:
    """(x, axes) when `total` is sum(exp(x)) over `axes` of an x of `shape`, in a form that
    broadcasts against x as the kept-dims sum: keepdims, reshaped to the kept shape
    (`e.sum(-1)[:, None]`), or summed over every axis."""
    s = total.inputs[0] if total.op == "reshape" else total
    if s.op != "sum" or s.inputs[0].op != "exp":
        return None
    x, axes = s.inputs[0].inputs[0], s.param("axes")
    if not x.is_float or x.shape != shape or any(shape[a] == 0 for a in axes):
        return None
    kept = prim.reduced_shape(shape, axes, True)
    if total is not s and total.shape != kept:
        return None  # a reshape that moves the sum onto other axes
    if total is s and not s.param("keepdims") and axes != tuple(range(len(axes))):
        return None  # the sum broadcasts against other axes: not a normalisation (over
        # leading axes it does not: e / e.sum(0) broadcasts back along axis 0)
    return x, axes


def _softmax(b: Builder, node: Node) -> Node | None:
    """exp(x) / sum(exp(x)) -> softmax(x); (a * exp(x)) / sum(exp(x)) -> a * softmax(x)."""
    if node.op != "divide":
        return None
    numerator, factor = node.inputs[0], None
    if numerator.op == "multiply":
        exps = [k for k, n in enumerate(numerator.inputs) if n.op == "exp"]
        if not exps:
            return None
        factor, numerator = numerator.inputs[1 - exps[-1]], numerator.inputs[exps[-1]]
    if numerator.op != "exp":
        return None
    found = _sum_of_exp(node.inputs[1], numerator.shape)
    if found is None or found[0] is not numerator.inputs[0]:
        return None
    softmax = prim_reduce.normalise(b, "softmax", *found)
    return softmax if factor is None else prim.elementwise(b, "multiply", factor, softmax)


def _log_of_softmax(b: Builder, node: Node) -> Node | None:
    """log(softmax(x)) -> log_softmax(x): -inf where softmax underflows, not x - logsumexp."""
    if node.op != "log" or node.inputs[0].op != "softmax":
        return None
    softmax = node.inputs[0]
    return prim_reduce.normalise(b, "log_softmax", softmax.inputs[0], softmax.param("axes"))


def _log_softmax(b: Builder, node: Node) -> Node | None:
    """x - log(sum(exp(x))) -> log_softmax(x); also x - (c + log(sum(exp(x - c)))), the
    hand-stabilised form, -> log_softmax(x - c)."""
    if node.op != "subtract" or node.shape != node.inputs[0].shape:
        return None
    x, subtracted = node.inputs
    if subtracted.op == "log":
        found = _sum_of_exp(subtracted.inputs[0], x.shape)
        if found is not None and found[0] is x:
            return prim_reduce.normalise(b, "log_softmax", *found)
    if subtracted.op == "add":
        for c, log in (subtracted.inputs, subtracted.inputs[::-1]):
            if log.op != "log":
                continue
            found = _sum_of_exp(log.inputs[0], x.shape)
            if found is not None and found[0].op == "subtract" \
                    and found[0].inputs[0] is x and found[0].inputs[1] is c:
                return prim_reduce.normalise(b, "log_softmax", *found)
    return None


def _unshifted(b: Builder, node: Node) -> Node | None:
    """softmax(x - max(x)) -> softmax(x) (and so for log_softmax): the op shifts by the
    maximum itself, and the gradient through the shift, zero in exact arithmetic, is not
    computed at all."""
    if node.op not in prim_reduce.NORMALISERS or node.inputs[0].op != "subtract":
        return None
    x, shift = node.inputs[0].inputs
    peeled = _peel(shift, _SHIFT_WRAPPERS)
    if peeled.op != "max" or peeled.inputs[0] is not x or x.shape != node.shape:
        return None
    aligned = (1,) * (x.ndim - len(shift.shape)) + shift.shape
    if any(aligned[a] != 1 for a in node.param("axes")):
        return None  # the shift varies along the normalised axes
    return prim_reduce.normalise(b, node.op, x, node.param("axes"))


def _unit_moves(node: Node) -> Node:
    """`node` without the reshapes and stop_gradients that only add or drop unit axes."""
    while node.op == "stop_gradient" or node.op == "reshape" and _no_units(
            node.shape) == _no_units(node.inputs[0].shape):
        node = node.inputs[0]
    return node


def _no_units(shape: Shape) -> Shape:
    return tuple(d for d in shape if d != 1)


def _logsumexp_by_hand(b: Builder, node: Node) -> Node | None:
    """m + log(sum(exp(x - m))) -> the same with m held constant: written by hand with any m
    constant along the summed axes (usually max(x)), its value does not depend on m, so the
    gradient through m is zero in exact arithmetic (and rounding noise split among ties in
    floating point, when m is a maximum)."""
    if node.op != "add":
        return None
    for outer, log in (node.inputs, node.inputs[::-1]):
        if log.op != "log" or log.inputs[0].op != "sum" or outer.op == "stop_gradient":
            continue
        s = log.inputs[0]
        if s.inputs[0].op != "exp" or s.inputs[0].inputs[0].op != "subtract":
            continue
        x, inner = s.inputs[0].inputs[0].inputs
        shift = _unit_moves(_peel(inner, ("broadcast_to",)))
        aligned = (1,) * (x.ndim - inner.ndim) + inner.shape
        if _unit_moves(outer) is not shift or inner.op == "stop_gradient" \
                or any(aligned[a] != 1 for a in s.param("axes")) \
                or _no_units(outer.shape) != _no_units(log.shape) \
                or _no_units(shift.shape) != _no_units(log.shape):
            continue
        shifted = prim.elementwise(b, "subtract", x, prim.stop_gradient(b, inner))
        total = prim.reduce_sum(b, prim.elementwise(b, "exp", shifted), s.param("axes"),
                                s.param("keepdims"))
        return prim.elementwise(b, "add", prim.stop_gradient(b, outer),
                                prim.elementwise(b, "log", total))
    return None


def _squared(q: Node) -> Node | None:
    """The x of x*x, x**2 or np.square(x)."""
    if q.op == "multiply" and q.inputs[0] is q.inputs[1]:
        return q.inputs[0]
    if q.op == "square":
        return q.inputs[0]
    if q.op == "power" and q.inputs[1].op == "const" and q.inputs[1].param("value") == 2:
        return q.inputs[0]
    return None


def _norm(b: Builder, node: Node) -> Node | None:
    if node.op != "sqrt" or node.inputs[0].op != "sum":
        return None
    s = node.inputs[0]
    x = _squared(s.inputs[0])
    if x is None or not x.is_float or x.shape != s.inputs[0].shape or x.dtype != node.dtype:
        return None
    return prim_reduce.reduce(b, "norm", x, s.param("axes"), s.param("keepdims"))


def _squared_modulus(b: Builder, node: Node) -> Node | None:
    """|z|**2 of a complex z (np.abs(z)**2 is hypot(re, im)**2): re*re + im*im, whose
    gradient 2*(re, im) needs no division by |z|."""
    h = _squared(node)
    if h is None or h.op != "hypot" or h.dtype != node.dtype:
        return None
    a, b_ = h.inputs
    return prim.elementwise(b, "add", prim.elementwise(b, "multiply", a, a),
                            prim.elementwise(b, "multiply", b_, b_))


# Passes run in order. The normalisations come first, so that the stability rules below do
# not rewrite the log(sum(exp(x))) inside x - log(sum(exp(x))) before it is recognised.
GRAPH_PASSES: tuple[tuple[GraphRule, ...], ...] = (
    (
        GraphRule("softmax: exp(x)/sum(exp(x)) as softmax(x), shifted by max(x)", _softmax),
        GraphRule("log_softmax: x - log(sum(exp(x))) as log_softmax(x), shifted by max(x)",
                  _log_softmax),
        GraphRule("softmax(x - max(x)) as softmax(x): no gradient through the shift",
                  _unshifted),
        GraphRule("log_softmax: log(softmax(x)) as log_softmax(x)", _log_of_softmax),
    ),
    (
        GraphRule("logsumexp: log(sum(exp(x))) shifted by max(x)", _logsumexp),
        GraphRule("logsumexp by hand: m + log(sum(exp(x - m))) with no gradient through m",
                  _logsumexp_by_hand),
        GraphRule("norm: sqrt(sum(x*x)) as norm(x), gradient 0 at x = 0", _norm),
        GraphRule("squared modulus: hypot(a, b)**2 as a*a + b*b (np.abs(z)**2 of a complex z)",
                  _squared_modulus),
    ),
)
GRAPH_RULES: tuple[GraphRule, ...] = tuple(rule for rules in GRAPH_PASSES for rule in rules)


def rewrite_graph(graph: Graph) -> tuple[Graph, list[str]]:
    """The graph with every rule applied (rebuilt only if one fires), and the rules that did."""
    fired: set[str] = set()
    for rules in GRAPH_PASSES:
        graph = _rewrite_pass(graph, rules, fired)
    return graph, sorted(fired)


def _rewrite_pass(graph: Graph, rules: tuple[GraphRule, ...], fired: set[str]) -> Graph:
    nodes = sorted(set(graph.inputs) | set(graph.nodes()), key=lambda n: n.serial)
    if not any(rule.rewrite(Builder(), n) is not None for n in nodes for rule in rules):
        return graph
    builder = Builder()
    new: dict[Node, Node] = {}
    for node in nodes:  # creation order is a topological order
        rebuilt = builder.node(node.op, [new[i] for i in node.inputs], dict(node.params),
                               node.shape, node.dtype, node.site)
        builder.site = node.site
        for rule in rules:
            replacement = rule.rewrite(builder, rebuilt)
            if replacement is not None:
                fired.add(rule.name)
                rebuilt = replacement
        builder.site = None
        new[node] = rebuilt
    hints = {new[n]: name for n, name in graph.name_hints.items() if n in new}
    return Graph(tuple(new[n] for n in graph.inputs), tuple(new[n] for n in graph.outputs),
                 name_hints=hints)
