"""Graph-level rewrites: patterns that span reductions and elementwise ops, which the SymPy
stability rules (stability.py) cannot see because a reduction sits in the middle.

They run after tracing and before differentiation, so the derivative is taken of the stable
form. Each rule is one row of `GRAPH_RULES`: a name (reported by `lower(...).rewrites`) and a
function that returns the replacement of a node, or None.

- `log(sum(exp(x)))` overflows at x = 1000: it becomes `m + log(sum(exp(x - m)))` with
  m = max(x) held constant (the identity holds for every m, so every derivative is unchanged).
- `exp(x) / sum(exp(x))` (softmax) is NaN at x = 1000: numerator and denominator are both
  shifted by that m.
- `sqrt(sum(x*x))` has the gradient x/|x|, NaN at x = 0: it becomes the `norm` op, whose
  gradient there is 0, the minimum-norm subgradient (PyTorch's `linalg.norm` convention).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import prim_reduce
from . import primitives as prim
from .graph import Builder, Graph, Node

GraphRewrite = Callable[[Builder, Node], "Node | None"]


@dataclass(frozen=True)
class GraphRule:
    name: str
    rewrite: GraphRewrite


def _peel(node: Node, ops: tuple[str, ...]) -> Node:
    while node.op in ops:
        node = node.inputs[0]
    return node


def _already_shifted(x: Node) -> bool:
    """x is `a - max(a)` (the user shifted it already)."""
    if x.op != "subtract":
        return False
    shift = _peel(x.inputs[1], ("stop_gradient", "reshape", "broadcast_to"))
    return shift.op == "max" and shift.inputs[0] is x.inputs[0]


def _summed_exp(s: Node) -> Node | None:
    """The x of `sum(exp(x))`, if x is a float array not already shifted by its max."""
    if s.op != "sum" or s.inputs[0].op != "exp":
        return None
    x = s.inputs[0].inputs[0]
    if not x.is_float or _already_shifted(x) or x.shape != s.inputs[0].shape:
        return None
    return x


def _shifted_exp(b: Builder, x: Node, axes: tuple[int, ...]) -> tuple[Node, Node]:
    """(m, exp(x - m)) with m = max(x) over `axes` (kept as size 1); m is held constant."""
    m = prim_reduce.reduce(b, "max", x, axes, True)
    shifted = prim.elementwise(b, "subtract", x, prim.stop_gradient(b, m))
    return m, prim.elementwise(b, "exp", shifted)


def _logsumexp(b: Builder, node: Node) -> Node | None:
    if node.op != "log":
        return None
    s = node.inputs[0]
    x = _summed_exp(s)
    if x is None:
        return None
    axes, keepdims = s.param("axes"), s.param("keepdims")
    m, e = _shifted_exp(b, x, axes)
    total = prim.reduce_sum(b, e, axes, keepdims)
    shift = prim.stop_gradient(b, prim.reshape(b, m, s.shape))
    return prim.elementwise(b, "add", shift, prim.elementwise(b, "log", total))


def _softmax(b: Builder, node: Node) -> Node | None:
    if node.op != "divide" or node.inputs[0].op != "exp":
        return None
    numerator, s = node.inputs
    if s.op == "reshape" and s.inputs[0].op == "sum":  # e / e.sum(-1)[:, None]
        s = s.inputs[0]
        if node.inputs[1].shape != prim.reduced_shape(numerator.shape, s.param("axes"), True):
            return None
    x = _summed_exp(s)
    if x is None or s.inputs[0] is not numerator:
        return None
    axes = s.param("axes")
    if not s.param("keepdims") and node.inputs[1] is s and len(axes) != x.ndim:
        return None  # the sum broadcasts against other axes: not a softmax
    m, e = _shifted_exp(b, x, axes)
    return prim.elementwise(b, "divide", e, prim.reduce_sum(b, e, axes, True))


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


GRAPH_RULES: tuple[GraphRule, ...] = (
    GraphRule("logsumexp: log(sum(exp(x))) shifted by max(x)", _logsumexp),
    GraphRule("softmax: exp(x)/sum(exp(x)) shifted by max(x)", _softmax),
    GraphRule("norm: sqrt(sum(x*x)) as norm(x), gradient 0 at x = 0", _norm),
)


def rewrite_graph(graph: Graph) -> tuple[Graph, list[str]]:
    """The graph with every rule applied (rebuilt only if one fires), and the rules that did."""
    nodes = sorted(set(graph.inputs) | set(graph.nodes()), key=lambda n: n.serial)
    if not any(rule.rewrite(Builder(), n) is not None for n in nodes for rule in GRAPH_RULES):
        return graph, []
    builder = Builder()
    fired: set[str] = set()
    new: dict[Node, Node] = {}
    for node in nodes:  # creation order is a topological order
        rebuilt = builder.node(node.op, [new[i] for i in node.inputs], dict(node.params),
                               node.shape, node.dtype, node.site)
        builder.site = node.site
        for rule in GRAPH_RULES:
            replacement = rule.rewrite(builder, rebuilt)
            if replacement is not None:
                fired.add(rule.name)
                rebuilt = replacement
        builder.site = None
        new[node] = rebuilt
    hints = {new[n]: name for n, name in graph.name_hints.items() if n in new}
    rewritten = Graph(tuple(new[n] for n in graph.inputs), tuple(new[n] for n in graph.outputs),
                      name_hints=hints)
    return rewritten, sorted(fired)
