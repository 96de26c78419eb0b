"""Batching rules for loops and branches: `sg.vmap` of a function with a scan, a while_loop,
a cond or a switch, with JAX's semantics.

A loop's body is batched once, as a graph of its own (`batching.batch_graph` on the body), so
the generated code keeps its one `for` loop, with the batch axis added to what varies:

* scan, fori_loop, checkpoint: the body is batched over the batched carries, scanned arrays
  and closed-over values. A carry that starts the same for every example but that the body
  makes vary (it mixes in a batched value) is promoted: batched from the start, the same
  value repeated for each example. A batched scanned array (batch, steps, ...) is scanned
  along its steps (moved first), and batched per-step results come back as (batch, steps, ...).
* while_loop: the same promotion. When the predicate depends on the example, the loop runs
  while any example's predicate holds; each step computes every example's predicate and the
  examples already done keep their carries (a select), so each ends as it would alone.
* cond, switch: with an index that is the same for every example it stays a branch, of
  batched branches. With a batched index there is no one branch to take: every branch runs
  on every example and a select picks each example's results (as in JAX). Both (all)
  branches are then evaluated; a NaN in the branch an example does not take is not selected,
  and its gradient does not reach that example (the select is a Piecewise, autodiff.py).

A rule returns the new loop node (None when the loop became a select) and each of the loop's
results as (node, batched), read by the `loop_out` nodes (see `batching.batch_graph`).
"""
from __future__ import annotations

from typing import Callable, Sequence

from ..ir import primitives as prim
from ..ir.graph import Builder, Graph, Node
from ..ir.reduce import reduce
from ..trace.loops import LoopBody, expand_body
from .batching import lifted, materialised, placeholders as _placeholders
from .loop_rules import reverse_through_while

Results = list[tuple[Node, bool]]
BatchGraph = Callable[..., tuple[list[tuple[Node, bool]], dict[Node, Node]]]


def _hints(graph: Graph, made: dict[Node, Node]) -> dict[Node, str]:
    hints: dict[Node, str] = {}
    for old, name in graph.name_hints.items():
        if old in made and old.op != "input":
            hints.setdefault(made[old], name)
    return hints


def _inputs(bound: dict[int, tuple[Node, bool]]) -> tuple[Node, ...]:
    return tuple(bound[p][0] for p in sorted(bound))


def _batched_body(graph: Graph, flags: Sequence[bool], size: int, batch: BatchGraph,
                  promote: Sequence[int] = ()) -> tuple[Graph, list[bool]]:
    """`graph` over inputs batched where `flags` (by position) say; the outputs at `promote`
    batched even where they are the same for every example. Returns it, and which outputs
    are batched."""
    b = Builder()
    bound = _placeholders(b, graph, flags, size)
    outputs, made = batch(b, graph, bound, size)
    outputs = [(materialised(b, node, size), True) if k in promote and not batched
               else (node, batched) for k, (node, batched) in enumerate(outputs)]
    return (Graph(_inputs(bound), tuple(n for n, _ in outputs), _hints(graph, made)),
            [f for _, f in outputs])


def _out(b: Builder, loop: Node, index: int, shape: tuple[int, ...], dtype: str) -> Node:
    return b.node("loop_out", [loop], {"index": index}, shape, dtype, loop.site)


def _steps_first(b: Builder, x: Node) -> Node:
    """(batch, steps, ...) <-> (steps, batch, ...)."""
    return prim.transpose(b, x, [1, 0] + list(range(2, x.ndim)))


def _promoted(b: Builder, xs: Sequence[Node], flags: Sequence[bool], wanted: Sequence[bool],
              size: int) -> list[Node]:
    return [materialised(b, x, size) if w and not f else x
            for x, f, w in zip(xs, flags, wanted)]


# ---------------------------------------------------------------------------------------------
# scan (fori_loop and checkpoint are scans)
# ---------------------------------------------------------------------------------------------
def batch_scan(b: Builder, node: Node, xs: list, flags: list, size: int, batch: BatchGraph
               ) -> tuple[Node | None, Results]:
    body: LoopBody = node.param("body")
    _, nc, nx, _ = body.counts
    n = node.param("length")
    graph = expand_body(body.graph)
    carried = list(flags[:nc])
    while True:  # promote the carries the body makes vary, until none is left
        new, batched = _batched_body(graph, [False] + carried + list(flags[nc:]), size, batch,
                                     [j for j in range(nc) if carried[j]])
        grown = [j for j in range(nc) if batched[j] and not carried[j]]
        if not grown:
            break
        for j in grown:
            carried[j] = True
    scanned = [_steps_first(b, x) if f else x for x, f in zip(xs[nc:nc + nx],
                                                             flags[nc:nc + nx])]
    inputs = _promoted(b, xs[:nc], flags[:nc], carried, size) + scanned + list(xs[nc + nx:])
    loop = b.node("scan", inputs, {"body": LoopBody.make(new, body.counts, body.name,
                                                          body.where),
                                   "length": n, "reverse": node.param("reverse")},
                  (), "tuple", node.site)
    results = []
    for k, (out, f) in enumerate(zip(new.outputs, batched)):
        if k < nc:
            results.append((_out(b, loop, k, out.shape, out.dtype), f))
        else:
            stacked = _out(b, loop, k, (n,) + out.shape, out.dtype)
            results.append((_steps_first(b, stacked) if f else stacked, f))
    return loop, results


# ---------------------------------------------------------------------------------------------
# while_loop
# ---------------------------------------------------------------------------------------------
def batch_while(b: Builder, node: Node, xs: list, flags: list, size: int, batch: BatchGraph
                ) -> tuple[Node | None, Results]:
    cond: LoopBody = node.param("cond")
    body: LoopBody = node.param("body")
    nc = body.counts[1]
    test_graph, step_graph = expand_body(cond.graph), expand_body(body.graph)
    carried, consts = list(flags[:nc]), list(flags[nc:])
    while True:
        step, batched = _batched_body(step_graph, carried + consts, size, batch,
                                      [j for j in range(nc) if carried[j]])
        test, per_example = _batched_body(test_graph, carried + consts, size, batch)
        # A predicate that varies freezes some examples' carries: all of them vary.
        grown = [j for j in range(nc) if not carried[j] and (batched[j] or per_example[0])]
        if not grown:
            break
        for j in grown:
            carried[j] = True
    if per_example[0]:
        test = _any_running(test)
        step = _frozen_when_done(test_graph, step_graph, carried + consts, size, batch)
    inputs = _promoted(b, xs[:nc], flags[:nc], carried, size) + list(xs[nc:])
    loop = b.node("while", inputs,
                  {"cond": LoopBody.make(test, cond.counts, cond.name, cond.where),
                   "body": LoopBody.make(step, body.counts, body.name, body.where)},
                  (), "tuple", node.site)
    return loop, [(_out(b, loop, k, out.shape, out.dtype), carried[k])
                  for k, out in enumerate(step.outputs)]


def _any_running(test: Graph) -> Graph:
    """The batched test (one predicate an example) as one: whether any example still runs."""
    b = Builder()
    running = test.outputs[0]
    anyone = reduce(b, "max", running, (0,))
    return Graph(test.inputs, (anyone,), {**test.name_hints, running: "running"})


def _frozen_when_done(test: Graph, step: Graph, flags: list, size: int, batch: BatchGraph
                      ) -> Graph:
    """One step of the batched loop: each example's predicate on the carries it received,
    the body, and the new carries only where the predicate holds (the others keep theirs)."""
    b = Builder()
    bound = _placeholders(b, step, flags, size)
    (running, _), = batch(b, test, bound, size)[0]
    outputs, made = batch(b, step, bound, size)
    hints = _hints(step, made)
    hints[running] = "running"
    carries = []
    for j, (out, batched) in enumerate(outputs):
        old = bound[j][0]
        out = out if batched else materialised(b, out, size)
        carries.append(prim.elementwise(b, "where", lifted(b, running, old.ndim - 1), out, old))
    return Graph(_inputs(bound), tuple(carries), hints)


def batch_while_vjp(b: Builder, node: Node, xs: list, flags: list, size: int,
                    batch: BatchGraph) -> tuple[Node | None, Results]:
    raise reverse_through_while(node.site)


# ---------------------------------------------------------------------------------------------
# cond and switch
# ---------------------------------------------------------------------------------------------
def batch_cond(b: Builder, node: Node, xs: list, flags: list, size: int, batch: BatchGraph
               ) -> tuple[Node | None, Results]:
    branches: tuple[LoopBody, ...] = node.param("branches")
    graphs = [expand_body(branch.graph) for branch in branches]
    if flags[0]:
        return None, _selected(b, graphs, xs, flags, size, batch)
    operands = list(flags[1:])
    found = [_batched_body(g, operands, size, batch)[1] for g in graphs]
    varies = [any(f[k] for f in found) for k in range(len(graphs[0].outputs))]
    bodies = tuple(LoopBody.make(_batched_body(g, operands, size, batch,
                                               [k for k, v in enumerate(varies) if v])[0],
                                 branch.counts, branch.name, branch.where)
                   for g, branch in zip(graphs, branches))
    loop = b.node("cond", xs, {"branches": bodies}, (), "tuple", node.site)
    return loop, [(_out(b, loop, k, out.shape, out.dtype), v)
                  for k, (out, v) in enumerate(zip(bodies[0].graph.outputs, varies))]


def _selected(b: Builder, graphs: list[Graph], xs: list, flags: list, size: int,
              batch: BatchGraph) -> Results:
    """Every branch on every example, and each example's results picked by its index: the
    last branch's, replaced by branch k's where the index is k."""
    index = xs[0]
    bound = {p: (x, f) for p, (x, f) in enumerate(zip(xs[1:], flags[1:]))}
    values = [batch(b, g, bound, size)[0] for g in graphs]
    results = []
    for k, out in enumerate(graphs[0].outputs):
        chosen = values[-1][k][0]
        for branch in range(len(graphs) - 2, -1, -1):
            picked = lifted(b, prim.elementwise(b, "equal", index, branch), out.ndim)
            chosen = prim.elementwise(b, "where", picked, values[branch][k][0], chosen)
        results.append((chosen, True))
    return results


LOOP_RULES = {"scan": batch_scan, "while": batch_while, "cond": batch_cond,
              "while_vjp": batch_while_vjp}


def bodies(node: Node) -> list[LoopBody]:
    """The body graphs a loop node holds in its params."""
    if node.op == "cond":
        return list(node.param("branches"))
    return [node.param(p) for p in ("cond", "body") if node.param(p) is not None]
