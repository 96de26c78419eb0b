"""Reverse mode through loops and branches: the VJP of a loop is a loop, of a branch a branch.

A loop node has several results (`loop_out` nodes read them), so its rule receives the adjoint
of every result at once (autodiff.py collects them) and returns the adjoint contribution of
each input. The body is differentiated once, as a graph of its own:

* scan: the pullback is a scan in the opposite direction over the saved carries (a scan
  stacks the carry each step receives), carrying the carries' adjoints and the accumulated
  adjoints of the values the body closes over; its per-step results are the adjoints of the
  scanned arrays. Each step recomputes its own intermediates from the saved carry.
* cond/switch: the pullback is a cond on the same index over the branches' pullbacks.

Both are again loop nodes, so they are differentiated by the same rules (Hessians) and
transposed by forward mode.
"""
from __future__ import annotations

from typing import Sequence

from ..errors import GradientError
from ..ir import index as prim_index
from ..ir import primitives as prim
from ..ir.graph import Builder, Graph, Node
from ..trace.loops import LoopBody, expand_body, loop_outputs

MULTI_OUTPUT = ("scan", "cond", "while", "while_vjp")


def reverse_through_while(site: object) -> GradientError:
    """Why a while_loop has no reverse mode (its lowering and its batching raise it)."""
    return GradientError(
        f"reverse-mode differentiation through a while_loop (at {site}) is not possible: its "
        "number of steps is known only when it runs, so there is no fixed loop to run "
        "backwards. Use sg.fori_loop or sg.scan with a fixed number of steps, or forward "
        "mode (sg.jvp, sg.jacfwd).")


def _zeros(builder: Builder, shape: tuple[int, ...], dtype: str) -> Node:
    return prim.broadcast_to(builder, prim.constant(builder, 0, dtype), shape)


def _pullback(graph: Graph, new_position: dict[int, int], seeded: Sequence[tuple[int, Node]],
              wrt: Sequence[int], builder: Builder, hints: dict[Node, str]
              ) -> tuple[dict[int, Node], list[Node]]:
    """The body's forward on placeholders at `new_position` (old position -> new) and the
    adjoints of the inputs at `wrt` (old positions) for seeds (output index, seed node)."""
    from .reverse import backward
    from ..ir.calls import substitute

    graph = expand_body(graph)
    placeholders = {n.param("position"): prim.input_node(
        builder, n.param("name"), new_position[n.param("position")], n.shape, n.dtype)
        for n in graph.inputs}
    mapping = {n: placeholders[n.param("position")] for n in graph.inputs}
    memo: dict[Node, Node] = {}
    outputs = substitute(builder, list(graph.outputs), mapping, memo)
    seeds = [(outputs[i], seed) for i, seed in seeded if outputs[i].is_float]
    wrt_nodes = [placeholders[p] for p in wrt]
    adjoints = backward(builder, [o for o, _ in seeds], [s for _, s in seeds], wrt_nodes)
    grads = [adjoints.of.get(w) or _zeros(builder, w.shape, w.dtype) for w in wrt_nodes]
    hints.update({memo[n]: h for n, h in graph.name_hints.items() if n in memo})
    return placeholders, grads


def _graph(builder: Builder, inputs: Sequence[Node], outputs: Sequence[Node],
           hints: dict[Node, str]) -> Graph:
    return Graph(tuple(sorted(inputs, key=lambda n: n.param("position"))), tuple(outputs),
                 {n: h for n, h in hints.items()})


def loop_vjp(builder: Builder, node: Node, cotangents: dict[int, Node],
             active: Sequence[int]) -> dict[int, Node]:
    """Adjoint contributions (input index -> node) of a loop node, given its results'."""
    if node.op == "scan":
        return _scan_vjp(builder, node, cotangents, active)
    if node.op == "cond":
        return _cond_vjp(builder, node, cotangents, active)
    if node.op == "while":
        return _while_vjp(builder, node, cotangents, active)
    return _while_jvp(builder, node, cotangents)


def _while_vjp(builder: Builder, node: Node, cotangents: dict[int, Node],
               active: Sequence[int]) -> dict[int, Node]:
    """A `while_vjp` node: linear in the cotangents, it stands for the pullback. Forward mode
    transposes it into a JVP while loop (`_while_jvp`); reverse mode cannot run it, and its
    lowering says so, naming the line (loop_code.py)."""
    seeded = sorted(k for k in cotangents if node.inputs[k].is_float)
    wrt = [k for k in active if node.inputs[k].is_float]
    if not seeded or not wrt:
        return {}
    stand_in = builder.node("while_vjp", list(node.inputs) + [cotangents[k] for k in seeded],
                            {"cond": node.param("cond"), "body": node.param("body"),
                             "seeded": tuple(seeded), "wrt": tuple(wrt)}, (), "tuple",
                            node.site)
    results = loop_outputs(builder, stand_in, [(node.inputs[k].shape, node.inputs[k].dtype)
                                               for k in wrt])
    return {k: r.node for k, r in zip(wrt, results)}


def _while_jvp(builder: Builder, node: Node, cotangents: dict[int, Node]) -> dict[int, Node]:
    """The transpose of a `while_vjp`: the while loop carrying tangents beside the carries
    (Jacobian @ tangent of its final carries), each step's tangent by forward mode."""
    from .transforms import _forward_mode
    from ..ir.calls import substitute

    cond: LoopBody = node.param("cond")
    body: LoopBody = node.param("body")
    seeded, wrt = node.param("seeded"), node.param("wrt")
    _, nc, _, nk = body.counts
    primal = node.inputs[:nc + nk]
    tangent_of = {k: cotangents[j] for j, k in enumerate(wrt) if j in cotangents}
    fc = [j for j in range(nc) if primal[j].is_float]
    fk = [m for m in range(nk) if primal[nc + m].is_float]
    # Inputs by position: carries, their tangents, consts, their tangents.
    p_const = nc + len(fc)
    p_tk = p_const + nk
    position = {**{j: j for j in range(nc)}, **{nc + m: p_const + m for m in range(nk)}}

    def rebuilt(graph: Graph, b: Builder) -> tuple[dict[int, Node], list[Node], list[Node]]:
        graph = expand_body(graph)
        ph = {n.param("position"): prim.input_node(b, n.param("name"), position[
            n.param("position")], n.shape, n.dtype) for n in graph.inputs}
        t_c = [prim.input_node(b, f"{ph[j].param('name')}_dot", nc + q, ph[j].shape,
                               ph[j].dtype) for q, j in enumerate(fc)]
        t_k = [prim.input_node(b, f"{ph[nc + m].param('name')}_dot", p_tk + q,
                               ph[nc + m].shape, ph[nc + m].dtype) for q, m in enumerate(fk)]
        outs = substitute(b, list(graph.outputs), {n: ph[n.param("position")]
                                                   for n in graph.inputs})
        return ph, t_c + t_k, outs

    b = Builder()
    ph, tangents, outs = rebuilt(body.graph, b)
    wrt_nodes = [ph[j] for j in fc] + [ph[nc + m] for m in fk]
    new_t = _forward_mode(b, [outs[j] for j in fc], wrt_nodes, tangents)
    inputs = list(ph.values()) + tangents
    step = LoopBody.make(_graph(b, inputs, outs + new_t, {}), (0, nc + len(fc), 0,
                                                                nk + len(fk)),
                         f"{body.name}_jvp", body.where)
    b = Builder()
    ph, tangents, outs = rebuilt(cond.graph, b)
    test = LoopBody.make(_graph(b, list(ph.values()) + tangents, outs, {}),
                         (0, nc + len(fc), 0, nk + len(fk)), cond.name, cond.where)
    zero = [_zeros(builder, primal[j].shape, primal[j].dtype) for j in range(nc + nk)]
    init = list(primal[:nc]) + [tangent_of.get(j, zero[j]) for j in fc] \
        + list(primal[nc:]) + [tangent_of.get(nc + m, zero[nc + m]) for m in fk]
    loop = builder.node("while", init, {"cond": test, "body": step}, (), "tuple", node.site)
    results = loop_outputs(builder, loop, [(n.shape, n.dtype) for n in init[:nc + len(fc)]])
    first_ct = nc + nk
    return {first_ct + q: results[nc + fc.index(k)].node for q, k in enumerate(seeded)}


def _scan_vjp(builder: Builder, node: Node, cotangents: dict[int, Node],
              active: Sequence[int]) -> dict[int, Node]:
    body: LoopBody = node.param("body")
    n = node.param("length")
    _, nc, nx, nk = body.counts
    graph = body.graph
    outs = graph.outputs
    ny = len(outs) - nc
    inputs = node.inputs
    float_carries = [j for j in range(nc) if inputs[j].is_float]
    act = set(active)
    float_xs = [i for i in range(nx) if nc + i in act]
    float_consts = [m for m in range(nk) if nc + nx + m in act]
    seeded_ys = [k for k in range(ny) if nc + k in cotangents and outs[nc + k].is_float]
    if not float_carries and not seeded_ys:
        return {}
    # The pullback body's inputs, by position: counter; adjoints of the float carries and the
    # accumulated adjoints of the closed-over values (its carries); per step: the results'
    # adjoints, the saved carries and the scanned steps; the closed-over values. A value the
    # body reads only at the counter (`w[i]`) is not accumulated (a full-size add per step)
    # but its per-step adjoints are stacked and scattered once after the loop.
    accumulated, stacked = list(float_consts), []
    for attempt in range(2):
        b = Builder()
        p_carry = 1
        p_acc = p_carry + len(float_carries)
        p_ct = p_acc + len(accumulated)
        p_saved = p_ct + len(seeded_ys)
        p_x = p_saved + nc
        p_const = p_x + nx
        new_position = {0: 0, **{1 + j: p_saved + j for j in range(nc)},
                        **{1 + nc + i: p_x + i for i in range(nx)},
                        **{1 + nc + nx + m: p_const + m for m in range(nk)}}
        carry_bars = [prim.input_node(b, f"{_name(graph, 1 + j)}_bar", p_carry + k,
                                      outs[j].shape, outs[j].dtype)
                      for k, j in enumerate(float_carries)]
        accs = [prim.input_node(b, f"{_name(graph, 1 + nc + nx + m)}_bar", p_acc + k,
                                graph.inputs[1 + nc + nx + m].shape,
                                graph.inputs[1 + nc + nx + m].dtype)
                for k, m in enumerate(accumulated)]
        cts = [prim.input_node(b, f"y{k}_bar" if ny > 1 else "y_bar", p_ct + q,
                               outs[nc + k].shape, outs[nc + k].dtype)
               for q, k in enumerate(seeded_ys)]
        seeds = list(zip(float_carries, carry_bars)) + [(nc + k, c) for k, c in
                                                       zip(seeded_ys, cts)]
        wrt = ([1 + j for j in float_carries] + [1 + nc + i for i in float_xs]
               + [1 + nc + nx + m for m in accumulated + stacked])
        hints: dict[Node, str] = {}
        placeholders, grads = _pullback(graph, new_position, seeds, wrt, b, hints)
        g_carry = grads[:len(float_carries)]
        g_x = grads[len(float_carries):len(float_carries) + len(float_xs)]
        g_acc = grads[len(float_carries) + len(float_xs):][:len(accumulated)]
        g_stacked = grads[len(float_carries) + len(float_xs) + len(accumulated):]
        if attempt == 0:
            found = [m for m, g in zip(accumulated, g_acc) if _at_counter(g, placeholders[0])]
            if not found:
                break
            accumulated = [m for m in accumulated if m not in found]
            stacked = found
    new_accs = [prim.elementwise(b, "add", a, g) for a, g in zip(accs, g_acc)]
    carries_in = carry_bars + accs
    all_inputs = list(placeholders.values()) + carries_in + cts
    step_values = [g.inputs[0] for g in g_stacked]
    step_indices = [a for g in g_stacked for a in g.inputs[1:]]
    outputs = g_carry + new_accs + g_x + step_values + step_indices + carries_in
    hints.update({g: f"{_name(graph, 1 + j)}_bar" for j, g in zip(float_carries, g_carry)
                  if g not in hints})
    vjp_body = LoopBody.make(_graph(b, all_inputs, outputs, hints),
                             (1, len(carries_in), len(cts) + nc + nx, nk),
                             f"{body.name}_vjp", body.where)
    # The pullback loop, over the saved carries (the forward scan's last nc results).
    saved = [_out(builder, node, ny + j, (n,) + graph.inputs[1 + j].shape,
                  graph.inputs[1 + j].dtype) for j in range(nc)]
    init = ([cotangents.get(j) or _zeros(builder, outs[j].shape, outs[j].dtype)
             for j in float_carries]
            + [_zeros(builder, a.shape, a.dtype) for a in accs])
    per_step = [cotangents[nc + k] for k in seeded_ys] + saved + list(inputs[nc:nc + nx])
    consts = list(inputs[nc + nx:])
    pull = builder.node("scan", init + per_step + consts,
                        {"body": vjp_body, "length": n, "reverse": not node.param("reverse")},
                        (), "tuple", node.site)
    avals = ([(c.shape, c.dtype) for c in init]
             + [((n,) + g.shape, g.dtype) for g in g_x + step_values + step_indices]
             + [((n,) + c.shape, c.dtype) for c in carries_in])
    results = [t.node for t in loop_outputs(builder, pull, avals)]
    contributions = {j: results[k] for k, j in enumerate(float_carries) if j in act}
    for k, m in enumerate(accumulated):
        contributions[nc + nx + m] = results[len(float_carries) + k]
    for k, i in enumerate(float_xs):
        contributions[nc + i] = results[len(init) + k]
    first_value = len(init) + len(float_xs)
    first_index = first_value + len(stacked)
    for k, (m, g) in enumerate(zip(stacked, g_stacked)):
        count = len(g.inputs) - 1
        contributions[nc + nx + m] = prim_index.scatter_add(
            builder, results[first_value + k], g.param("index"),
            results[first_index:first_index + count], g.shape)
        first_index += count
    return contributions


def _at_counter(g: Node, counter: Node) -> bool:
    """Whether an adjoint is `values` scattered at a position that the step counter alone
    decides, on the leading axes (`w[i]`, `w[i, :]`, `w[2 * i + 1]`): stacked over the steps,
    the same index scatters them all at once."""
    from ..ir.graph import topological_order

    if g.op != "scatter_add" or g.param("index")[0][0] != "a" \
            or any(a.shape != () for a in g.inputs[1:]):
        return False
    return all(n is counter for n in topological_order(list(g.inputs[1:]))
               if n.op == "input")


def _cond_vjp(builder: Builder, node: Node, cotangents: dict[int, Node],
              active: Sequence[int]) -> dict[int, Node]:
    branches: tuple[LoopBody, ...] = node.param("branches")
    operands = node.inputs[1:]
    wrt = [k for k in active if k >= 1 and node.inputs[k].is_float]
    seeded = sorted(k for k in cotangents if branches[0].graph.outputs[k].is_float)
    if not wrt or not seeded:
        return {}
    pulled = []
    for body in branches:
        graph = body.graph
        b = Builder()
        count = len(graph.inputs)
        cts = [prim.input_node(b, f"out{k}_bar", count + q, graph.outputs[k].shape,
                               graph.outputs[k].dtype) for q, k in enumerate(seeded)]
        hints: dict[Node, str] = {}
        placeholders, grads = _pullback(graph, {p: p for p in range(count)},
                                        list(zip(seeded, cts)), [k - 1 for k in wrt], b, hints)
        pulled.append(LoopBody.make(_graph(b, list(placeholders.values()) + cts, grads, hints),
                                    (0, count + len(cts), 0, 0), f"{body.name}_vjp",
                                    body.where))
    pull = builder.node("cond", [node.inputs[0], *operands, *(cotangents[k] for k in seeded)],
                        {"branches": tuple(pulled)}, (), "tuple", node.site)
    results = loop_outputs(builder, pull, [(node.inputs[k].shape, node.inputs[k].dtype)
                                           for k in wrt])
    return {k: r.node for k, r in zip(wrt, results)}


def _out(builder: Builder, node: Node, index: int, shape: tuple[int, ...], dtype: str) -> Node:
    return builder.node("loop_out", [node], {"index": index}, shape, dtype, node.site)


def _name(graph: Graph, position: int) -> str:
    for n in graph.inputs:
        if n.param("position") == position:
            return str(n.param("name"))
    return "v"
