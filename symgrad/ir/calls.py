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
    for node in nodes_in_order(roots, memo):
        memo[node] = builder.node(node.op, [memo[i] for i in node.inputs], dict(node.params),
                                  node.shape, node.dtype, node.site)
    return [memo[r] for r in roots]


def nodes_in_order(roots: Sequence[Node], done: dict[Node, Node]) -> Iterator[Node]:
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
    from ..specs import ArgSpec

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
