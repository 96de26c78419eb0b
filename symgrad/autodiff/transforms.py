"""What each transform computes from a traced graph: its `Transform` record, the layout of
its results, the parameters it adds (cotangents, tangents), and `differentiate`, which builds
the transformed graph (reverse mode; forward mode as the reverse pass transposed).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..ir import primitives as prim
from ..ir.graph import Builder, Graph, LoopName, Node
from ..specs import ArgSpec


KINDS = ("jit", "grad", "value_and_grad", "vjp", "jvp", "hvp")


@dataclass(frozen=True)
class Transform:
    """What to compute from the traced function, with respect to the inputs at `wrt`.

    kind: 'jit' (the value), 'grad', 'value_and_grad', 'vjp' (value and cotangent @ Jacobian,
    the cotangents are extra parameters), 'jvp' (value and Jacobian @ tangent, the tangents
    are extra parameters) or 'hvp' (Hessian @ tangent of a scalar function).
    `wrt` lists input positions (leaves). `groups` says how the leaves form the differentiated
    arguments (None: each is a bare array; else per argument None or its number of leaves);
    `single`: one argument, so one result rather than a tuple. `out` and `aux` are the
    traced outputs' layout (nested tuples of output indices) when the function returned a
    pytree or, with `has_aux`, an auxiliary value; None: the traced structure, no aux.
    """

    kind: str
    wrt: tuple[int, ...] = ()
    single: bool = True
    groups: tuple[int | None, ...] | None = None
    out: Any = None
    aux: Any = None
    split: str | None = None  # vjp only: 'forward' or 'backward' part (residuals.py)
    # speed over exactness (`fast_math=True` of every transform): unsafe algebraic folds
    # (x - x is 0, 0*x is 0, x/x is 1) and the fused backends' fast-math compiler flags
    fast_math: bool = False

    @property
    def order(self) -> int:
        return 2 if self.kind == "hvp" else 1

    def __repr__(self) -> str:
        # Part of the cache key: the form of the first release while nothing new is set.
        kind = "grad" if self.kind == "hvp" else self.kind
        text = (f"Transform(kind={kind!r}, wrt={self.wrt!r}, single={self.single!r}, "
                f"order={self.order!r}")
        for name in ("groups", "out", "aux", "split"):
            if getattr(self, name) is not None:
                text += f", {name}={getattr(self, name)!r}"
        return text + (", fast_math=True)" if self.fast_math else ")")

    def describe(self, params: Sequence[str]) -> str:
        if self.kind == "jit":
            return "jit (value only)"
        names = ", ".join(params[i] for i in self.wrt)
        kind = "grad of the gradient" if self.kind == "hvp" else self.kind
        return f"{kind}, wrt=({names})"


def primary_outputs(transform: Transform, structure: Any) -> Any:
    """The differentiated output's layout (nested tuples of output indices)."""
    return structure if transform.out is None else transform.out


def _leaves(nested: Any) -> list[int]:
    if isinstance(nested, int):
        return [nested]
    return [i for item in nested for i in _leaves(item)]


def _regroup(nested: Any, slot: Callable[[int], int]) -> Any:
    """`nested` (tuples and lists of output indices) with each index replaced by `slot(i)`."""
    if isinstance(nested, int):
        return slot(nested)
    return type(nested)(_regroup(item, slot) for item in nested)


def output_layout(transform: Transform, structure: Any) -> tuple[list[tuple[str, int]], Any]:
    """What the transformed function returns: a flat list of (role, index) -- role 'value',
    'aux' (output index), 'grad', 'hv' (wrt index) or 'tangent' (output index) -- and the
    nesting of that list as generated code returns it."""
    slots: list[tuple[str, int]] = []

    def slot(role: str) -> Callable[[int], int]:
        def add(index: int) -> int:
            slots.append((role, index))
            return len(slots) - 1
        return add

    def per_argument(role: str) -> Any:
        add, items, j = slot(role), [], 0
        for group in transform.groups or (None,) * len(transform.wrt):
            if group is None:
                items.append(add(j))
                j += 1
            else:
                items.append(tuple(add(j + t) for t in range(group)))
                j += group
        return items[0] if transform.single else tuple(items)

    primary = primary_outputs(transform, structure)
    kind, aux = transform.kind, transform.aux
    if kind == "jit":
        return slots, _regroup(primary, slot("value"))
    if kind == "grad":
        grads = per_argument("grad")
        return slots, grads if aux is None else (grads, _regroup(aux, slot("aux")))
    if kind == "hvp":
        return slots, per_argument("hv")
    value = _regroup(primary, slot("value"))
    if kind == "value_and_grad":
        if aux is not None:
            value = (value, _regroup(aux, slot("aux")))
        return slots, (value, per_argument("grad"))
    second = per_argument("grad") if kind == "vjp" else _regroup(primary, slot("tangent"))
    if aux is None:
        return slots, (value, second)
    return slots, (value, second, _regroup(aux, slot("aux")))


def output_avals(graph: Graph, structure: Any, specs: Sequence[ArgSpec],
                 transform: Transform) -> list[tuple[tuple[int, ...], str]]:
    """Shape and dtype of each flat result of `output_layout`, known before differentiating."""
    avals = []
    for role, index in output_layout(transform, structure)[0]:
        if role in ("grad", "hv"):
            spec = specs[transform.wrt[index]]
            avals.append((tuple(spec.shape), spec.dtype))
        else:
            node = graph.outputs[index]
            avals.append((node.shape, node.dtype))
    return avals


def extra_parameters(graph: Graph, structure: Any, specs: Sequence[ArgSpec],
                     transform: Transform) -> list[ArgSpec]:
    """The parameters a transform adds after the function's own: a vjp's cotangents (one per
    output), a jvp's or hvp's tangents (one per differentiated input)."""
    names = [s.name for s in specs]
    if transform.kind == "vjp":
        outputs = _leaves(primary_outputs(transform, structure))
        cotangents = cotangent_names(len(outputs))
        return [ArgSpec(name, graph.outputs[i].shape, graph.outputs[i].dtype)
                for name, i in zip(cotangents, outputs)]
    if transform.kind in ("jvp", "hvp"):
        return [ArgSpec(name, specs[p].shape, specs[p].dtype)
                for name, p in zip(tangent_names(names, transform), transform.wrt)]
    return []


def cotangent_names(count: int) -> list[str]:
    return ["cotangent"] if count == 1 else [f"cotangent_{i}" for i in range(count)]


def differentiate(graph: Graph, structure: Any, specs: Sequence[ArgSpec],
                  transform: Transform) -> tuple[list[Node], Any, list[str], dict[Node, str]]:
    """The output nodes of the transform, their structure, the parameter names, and names."""
    from .reverse import backward

    params = [s.name for s in specs]
    hints = dict(graph.name_hints)
    for out in graph.outputs:
        hints.setdefault(out, "value" if len(graph.outputs) == 1 else "out")
    slots, nested = output_layout(transform, structure)
    if transform.kind == "jit":
        return [graph.outputs[i] for _, i in slots], nested, params, hints
    builder = Builder()
    inputs = {n.param("position"): n for n in graph.inputs}
    wrt_nodes = [inputs[p] for p in transform.wrt]
    primary = [graph.outputs[i] for i in _leaves(primary_outputs(transform, structure))]
    extras = [prim.input_node(builder, spec.name, len(params) + i, spec.shape, spec.dtype)
              for i, spec in enumerate(extra_parameters(graph, structure, specs, transform))]
    params = params + [e.param("name") for e in extras]
    results: dict[str, list[Node]] = {}
    if transform.kind == "jvp":
        results["tangent"] = _forward_mode(builder, primary, wrt_nodes, extras)
    else:
        seeds = extras if transform.kind == "vjp" else [prim.constant(builder, 1, primary[0].dtype)]
        adjoints = backward(builder, primary, seeds, wrt_nodes)
        results["grad"] = _gradients(builder, adjoints.of, wrt_nodes)
        _name_adjoints(adjoints.of, hints, params)
        if transform.kind == "hvp":
            second = backward(builder, results["grad"], extras, wrt_nodes)
            results["hv"] = _gradients(builder, second.of, wrt_nodes)
    if "tangent" in results:
        tangents = dict(zip(_leaves(primary_outputs(transform, structure)), results["tangent"]))
    outputs = []
    for role, index in slots:
        if role in ("value", "aux"):
            outputs.append(graph.outputs[index])
        elif role == "tangent":
            outputs.append(tangents[index])
        else:
            outputs.append(results[role][index])
    return outputs, nested, params, hints


def _forward_mode(builder: Builder, outputs: list[Node], wrt: list[Node],
                  tangents: list[Node]) -> list[Node]:
    """Jacobian @ tangent by transposing the reverse pass: the VJP is linear in its cotangent
    u, so the VJP of `u -> vjp(u)` with cotangent t is J t, exactly, with every structural
    op's forward rule obtained from its one reverse rule (no second rule to disagree)."""
    from .reverse import backward
    from ..ir.calls import substitute

    us = [prim.input_node(builder, f"_u{i}", -1 - i, o.shape, o.dtype) if o.is_float else None
          for i, o in enumerate(outputs)]
    floats = [(o, u) for o, u in zip(outputs, us) if u is not None]
    adjoints = backward(builder, [o for o, _ in floats], [u for _, u in floats], wrt)
    grads = _gradients(builder, adjoints.of, wrt)
    second = backward(builder, grads, tangents, [u for _, u in floats])
    results = []
    for out, u in zip(outputs, us):
        t = second.of.get(u) if u is not None else None
        if t is None:
            t = prim.broadcast_to(builder, prim.constant(builder, 0, out.dtype), out.shape)
        results.append(t)
    # A linear function of u does not read u; where a form still names it, u = 0 is exact.
    zeros = {u: prim.broadcast_to(builder, prim.constant(builder, 0, u.dtype), u.shape)
             for u in us if u is not None}
    return substitute(builder, results, zeros)


def tangent_names(params: Sequence[str], transform: Transform) -> list[str]:
    """The extra parameters of a Hessian-vector product or JVP: one per wrt input."""
    if len(transform.wrt) == 1:
        return ["tangent"]
    return [f"tangent_{params[p]}" for p in transform.wrt]


def _gradients(builder: Builder, adjoint: dict[Node, Node], wrt: list[Node]) -> list[Node]:
    """Each wrt input's adjoint; a disconnected input gets explicit zeros."""
    grads = []
    for node in wrt:
        g = adjoint.get(node)
        if g is None:
            g = prim.broadcast_to(builder, prim.constant(builder, 0, node.dtype), node.shape)
        grads.append(g)
    return grads


def _name_adjoints(adjoint: dict[Node, Node], hints: dict[Node, str], params: list[str]) -> None:
    """`z` gets `z_bar`; a gradient shared with an intermediate is named after its parameter
    (`b_bar`, not `z_bar`, in `z = x @ w + b`): the parameter is what the reader asked for."""
    for prefer_inputs in (True, False):
        for node, g in adjoint.items():
            if g in hints or (node.op == "input") != prefer_inputs:
                continue
            name = params[node.param("position")] if node.op == "input" else hints.get(node)
            if name:
                hints[g] = (LoopName if isinstance(name, LoopName) else str)(f"{name}_bar")
