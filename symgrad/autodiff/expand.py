"""Calls expanded before differentiation: each `call` node (`ir/calls.py`) replaced by its
inner transform's graph, differentiated, innermost first."""
from __future__ import annotations

from ..ir import primitives as prim
from ..ir.calls import CALL, CallBody, nodes_in_order, substitute
from ..ir.graph import Builder, Graph, Node
from .transforms import differentiate, output_avals


def expand_calls(graph: Graph) -> Graph:
    """The graph with every call replaced by its inner transform's graph."""
    nodes = graph.nodes()
    if not any(n.op == CALL for n in nodes):
        return graph
    builder = Builder()
    memo: dict[Node, Node] = {}
    hints: dict[Node, str] = {}
    expanded: dict[tuple, list[Node]] = {}
    reached = set(nodes)
    unread = [i for i in graph.inputs if i not in reached]  # inputs that no output reads
    for node in unread + nodes:
        if node.op != CALL:
            memo[node] = builder.node(node.op, [memo[i] for i in node.inputs],
                                      dict(node.params), node.shape, node.dtype, node.site)
            continue
        body: CallBody = node.param("body")
        inputs = tuple(memo[i] for i in node.inputs)
        results = expanded.get((body, inputs))
        if results is None:
            results = _expand(builder, body, inputs, hints)
            expanded[(body, inputs)] = results
        memo[node] = results[node.param("index")]
    for node, name in graph.name_hints.items():
        if node in memo:
            hints[memo[node]] = name
    return Graph(tuple(memo[i] for i in graph.inputs), tuple(memo[o] for o in graph.outputs),
                 name_hints=hints)


def _expand(builder: Builder, body: CallBody, inputs: tuple[Node, ...],
            hints: dict[Node, str]) -> list[Node]:

    if hasattr(body, "expand"):  # a transform that rewrites its body itself (vmap.py)
        return body.expand(builder, inputs, hints)
    inner = expand_calls(body.graph)
    outputs, _, _, inner_hints = differentiate(inner, body.structure, body.specs, body.transform)
    placeholders: dict[int, Node] = {}
    for node in nodes_in_order(outputs, {}):
        if node.op == "input":
            placeholders[node.param("position")] = node
    mapping = {placeholders[p]: value for p, value in zip(body.positions, inputs)
               if p in placeholders}
    memo: dict[Node, Node] = {}
    results = substitute(builder, outputs, mapping, memo)
    for node, name in inner_hints.items():
        if node in memo and node.op != "input":
            hints.setdefault(memo[node], name)
    # Gradients have their argument's dtype (as the call node promised at trace time).
    avals = output_avals(body.graph, body.structure, body.specs, body.transform)
    return [r if r.dtype == dtype else prim.astype(builder, r, dtype)
            for r, (_, dtype) in zip(results, avals)]
