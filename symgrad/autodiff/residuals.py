"""A VJP split in two at its residuals: the forward part, and the pullback that reads them.

`sg.vjp(f, *primals)` runs the forward part once (value, and the residuals: every value the
backward pass reads that does not depend on the cotangent); each `pullback(cotangent)` runs
only the backward part, which takes the residuals and the cotangent as parameters. Both parts
come from the same differentiated graph, so the residuals are the same values in the same
order in both.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..ir import primitives as prim
from ..ir.calls import substitute
from ..ir.graph import Builder, Node, topological_order


def _leaves(nested: Any) -> list[int]:
    if isinstance(nested, int):
        return [nested]
    return [i for item in nested for i in _leaves(item)]


def _elementwise(node: Node) -> bool:
    from ..ir.ops import OPS, Group

    record = OPS.get(node.op)
    return node.op == "ew" or (record is not None and record.group is Group.ELEMENTWISE)


def _renumber(nested: Any, index: dict[int, int]) -> Any:
    if isinstance(nested, int):
        return index[nested]
    return type(nested)(_renumber(item, index) for item in nested)


def split_vjp(outputs: Sequence[Node], structure: Any, params: Sequence[str],
              hints: dict[Node, str], primal_count: int, part: str
              ) -> tuple[list[Node], Any, list[str], dict[Node, str]]:
    """The 'forward' part (returns `(value, residuals)`, or `(value, residuals, aux)`) or the
    'backward' part (parameters: residuals then cotangents; returns the gradients)."""
    order = topological_order(outputs)
    cotangents = sorted((n for n in order if n.op == "input"
                         and n.param("position") >= primal_count),
                        key=lambda n: n.param("position"))
    depends = set(cotangents)
    for node in order:
        if node not in depends and any(i in depends for i in node.inputs):
            depends.add(node)
    value_part, grad_part = structure[0], structure[1]
    chosen: set[Node] = set()
    for node in order:
        if node in depends:
            chosen.update(i for i in node.inputs if i not in depends and i.op != "const")
    chosen.update(outputs[i] for i in _leaves(grad_part)
                  if outputs[i] not in depends and outputs[i].op != "const")
    # Elementwise values are recomputed from what they read rather than saved: a region cut
    # in two would lose the stability rewrites that see it whole (exp(-z) saved for a sigmoid
    # overflows where the sigmoid does not), and recomputing it is one fused pass.
    stack = [n for n in chosen if _elementwise(n)]
    while stack:
        node = stack.pop()
        chosen.discard(node)
        for i in node.inputs:
            if i.op != "const" and i not in chosen:
                chosen.add(i)
                if _elementwise(i):
                    stack.append(i)
    residuals = [n for n in order if n in chosen]
    if part == "forward":
        kept = _leaves(value_part) + (_leaves(structure[2]) if len(structure) > 2 else [])
        index = {old: new for new, old in enumerate(kept)}
        new_outputs = [outputs[i] for i in kept] + residuals
        tail = tuple(range(len(kept), len(new_outputs)))
        nested = (_renumber(value_part, index), tail)
        if len(structure) > 2:
            nested += (_renumber(structure[2], index),)
        return new_outputs, nested, list(params[:primal_count]), hints
    builder = Builder()
    names, taken = [], set()
    for k, node in enumerate(residuals):
        name = hints.get(node) or (node.param("name") if node.op == "input" else f"r{k}")
        while name in taken or name in params[primal_count:]:
            name += "_"
        taken.add(name)
        names.append(name)
    mapping = {node: prim.input_node(builder, name, k, node.shape, node.dtype)
               for k, (node, name) in enumerate(zip(residuals, names))}
    for node in cotangents:  # a cotangent no gradient reads is still a parameter
        k = node.param("position") - primal_count
        mapping[node] = prim.input_node(builder, str(node.param("name")), len(residuals) + k,
                                        node.shape, node.dtype)
    memo: dict[Node, Node] = {}
    grads = [outputs[i] for i in _leaves(grad_part)]
    new_outputs = substitute(builder, grads, mapping, memo)
    new_hints = {memo[n]: name for n, name in hints.items() if n in memo and n not in mapping}
    index = {old: new for new, old in enumerate(_leaves(grad_part))}
    return (new_outputs, _renumber(grad_part, index), names + list(params[primal_count:]),
            new_hints)
