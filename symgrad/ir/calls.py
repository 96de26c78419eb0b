"""Transforms inside traced code: `call` nodes, and their expansion before differentiation.

A symgrad transform called on traced values (`sg.grad(g)(x)` inside a function being traced,
or `sg.grad(sg.grad(f))`) does not differentiate there: it traces its function on fresh
placeholder inputs into a `CallBody` (the inner graph and its transform) and leaves one `call`
node per result in the outer graph. The outer graph, calls included, is what the cache key
hashes, so a warm cache never imports SymPy. On a miss, `expand_calls` replaces each call by
the inner transform's graph (differentiated there, innermost first) with the placeholders
bound to the call's inputs; the whole composition is then one graph, differentiated again by
the outer transform and compiled once.

Values the inner function closes over (traced values of the outer function) become extra
inputs of the call, so the inner derivative treats them as constants and the outer one
differentiates through them, as JAX does.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from .graph import Builder, Graph, Node

CALL = "call"


@dataclass(frozen=True, eq=False)
class CallBody:
    """The inner function of a call: its traced graph, argument specs and transform."""

    graph: Graph
    structure: Any
    specs: tuple  # ArgSpec of each parameter: traced leaves, statics, then closed-over values
    transform: Any  # compiler.Transform
    positions: tuple[int, ...]  # the input position each of the call's inputs binds
    digest: str = field(default="")

    @staticmethod
    def make(graph: Graph, structure: Any, specs: Sequence, transform: Any,
             positions: Sequence[int]) -> "CallBody":
        text = "\n".join([graph.canonical_text(), repr(structure), repr(tuple(specs)),
                          repr(transform), repr(tuple(positions))])
        return CallBody(graph, structure, tuple(specs), transform, tuple(positions),
                        hashlib.sha256(text.encode()).hexdigest())

    def __hash__(self) -> int:
        return hash(self.digest)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CallBody) and other.digest == self.digest

    def __repr__(self) -> str:
        return f"<{self.transform.kind} {self.digest}>"


def substitute(builder: Builder, roots: Sequence[Node], mapping: dict[Node, Node],
               memo: dict[Node, Node] | None = None) -> list[Node]:
    """`roots` rebuilt in `builder` with each node of `mapping` replaced by its value."""
    memo = {} if memo is None else memo
    memo.update(mapping)
    for node in _order(roots, memo):
        memo[node] = builder.node(node.op, [memo[i] for i in node.inputs], dict(node.params),
                                  node.shape, node.dtype, node.site)
    return [memo[r] for r in roots]


def _order(roots: Sequence[Node], done: dict[Node, Node]) -> Iterator[Node]:
    """Nodes reachable from `roots` but not through `done`, inputs first (iterative)."""
    seen = set(done)
    for root in roots:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(root.inputs))]
        while stack:
            node, pending = stack[-1]
            for child in pending:
                if child not in seen:
                    seen.add(child)
                    stack.append((child, iter(child.inputs)))
                    break
            else:
                stack.pop()
                yield node


def next_serial() -> int:
    """The serial the next node will get: nodes made from now on have this one or later."""
    return Node("const", (), (), (), "float64").serial + 1


def foreign_nodes(outputs: Sequence[Node], first_serial: int) -> list[Node]:
    """Nodes the outputs read that existed before the inner trace began (serial before
    `first_serial`): the outer function's traced values the inner function closes over."""
    found: list[Node] = []
    seen: set[int] = set()
    stack = list(outputs)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.serial < first_serial:
            if node.op != "const":
                found.append(node)
            continue
        stack.extend(node.inputs)
    return sorted(found, key=lambda n: n.serial)


def close_over(inner: Builder, graph: Graph, specs: Sequence, first_serial: int
               ) -> tuple[Graph, list, list[Node]]:
    """An inner trace's graph with the outer values it closes over (nodes made before
    `first_serial`) turned into extra inputs after `specs`: (graph, specs, those values)."""
    from . import primitives as prim
    from ..trace.tracer import ArgSpec

    specs = list(specs)
    foreign = foreign_nodes(graph.outputs, first_serial)
    if not foreign:
        return graph, specs, foreign
    closures = {node: prim.input_node(inner, f"closure_{len(specs) + k}", len(specs) + k,
                                      node.shape, node.dtype) for k, node in enumerate(foreign)}
    specs += [ArgSpec(c.param("name"), c.shape, c.dtype) for c in closures.values()]
    outputs = substitute(inner, list(graph.outputs), closures)
    return (Graph(graph.inputs + tuple(closures.values()), tuple(outputs),
                  name_hints=graph.name_hints), specs, foreign)


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
    from . import primitives as prim
    from ..compiler import differentiate, output_avals

    if hasattr(body, "expand"):  # a transform that rewrites its body itself (vmap.py)
        return body.expand(builder, inputs, hints)
    inner = expand_calls(body.graph)
    outputs, _, _, inner_hints = differentiate(inner, body.structure, body.specs, body.transform)
    placeholders: dict[int, Node] = {}
    for node in _order(outputs, {}):
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
