"""Loops that stay loops: `scan`, `fori_loop`, `while_loop`, `cond`, `switch`, `checkpoint`.

Inside a traced function each of these traces the user's body function once, on placeholder
inputs, into a `LoopBody` (its own small graph) and leaves one structural node in the outer
graph (`scan`, `while` or `cond`) with one `loop_out` node per result. The body is
differentiated once, by the rules of `loop_rules.py` (the VJP of a loop is again a loop), and
printed once, as a function that a generated `for` loop calls (`loop_code.py`), so compile
time and source size do not grow with the trip count. Called on concrete numpy values, outside
any trace, they simply run in Python, as JAX's do.

A body input is, by position: the step counter (scan and fori_loop), the carries, one step of
each scanned array, then the traced values the body closes over (passed whole, "consts"). A
scan body's outputs are the new carries, the per-step results, and the carries it received
(stacked by the loop: what reverse mode saves).
"""
from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..ir import primitives as prim
from ..errors import ArgumentError, TracingError
from ..ir.graph import Builder, Graph, Node
from ..pytree import TreeDef, tree_flatten, tree_unflatten
from .tracer import ArgSpec, Tracer, user_site

COUNTER_DTYPE = "int64"


@dataclass(frozen=True, eq=False)
class LoopBody:
    """A traced body: its graph and how its inputs and outputs split into roles.

    `counts` = (counter inputs 0 or 1, carries, scanned steps, consts); `name` is the user's
    function (for generated names), `where` its definition (`model.py:5`, for comments).
    """

    graph: Graph
    counts: tuple[int, int, int, int]
    name: str
    where: str
    digest: str = field(default="")

    @staticmethod
    def make(graph: Graph, counts: Sequence[int], name: str, where: str) -> "LoopBody":
        text = "\n".join([graph.canonical_text(), repr(tuple(counts)), name, where])
        return LoopBody(graph, tuple(counts), name, where,
                        hashlib.sha256(text.encode()).hexdigest())

    def __hash__(self) -> int:
        return hash(self.digest)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LoopBody) and other.digest == self.digest

    def __repr__(self) -> str:
        return f"<body {self.name} {self.digest}>"


# -- pytrees, with None as the empty tree (JAX's convention for xs and per-step results) ------
_NONE = TreeDef("none")


def _flatten(value: Any) -> tuple[list[Any], TreeDef]:
    if value is None:
        return [], _NONE
    return tree_flatten(value)


def _unflatten(tree: TreeDef, leaves: Sequence[Any]) -> Any:
    return None if tree == _NONE else tree_unflatten(tree, list(leaves))


# -- the trace in progress ------------------------------------------------------------------
def active_builder() -> Builder | None:
    """The builder of the innermost trace running on this thread (None: run eagerly)."""
    from .tracer import _ACTIVE

    builders = getattr(_ACTIVE, "builders", ())
    return builders[-1] if builders else None


def _node(builder: Builder, value: Any) -> Node:
    if isinstance(value, Tracer):
        return value.node
    if not isinstance(value, (int, float, bool, np.ndarray, np.generic)):
        raise TracingError(f"a loop carry or operand is a {type(value).__name__}; loops carry "
                           "arrays (or pytrees of arrays)")
    return prim.constant(builder, np.asarray(value))


def _shape(value: Any) -> tuple[int, ...]:
    return value.shape if isinstance(value, Tracer) else tuple(np.shape(value))


def function_name(fn: Callable, default: str = "body") -> str:
    """The user's name for a body (a lambda gets `default`): generated names start from it."""
    name = getattr(fn, "__name__", default)
    return default if name == "<lambda>" else name


def definition_site(fn: Callable) -> str:
    code = getattr(fn, "__code__", None)
    if code is None:
        return function_name(fn)
    return f"{Path(code.co_filename).name}:{code.co_firstlineno}"


def _param_names(fn: Callable, count: int, default: Sequence[str]) -> list[str]:
    try:
        names = [p.name for p in inspect.signature(fn).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    return (names + list(default[len(names):]))[:count] if len(names) >= count else list(default)


def _leaf_names(base: str, tree: TreeDef, count: int) -> list[str]:
    return [base] if count == 1 and tree.kind == "leaf" else [f"{base}_{k}" for k in range(count)]


@dataclass
class TracedBody:
    graph: Graph  # inputs: the placeholders, then one per closed-over value
    outputs_tree: Any  # what the body function returned, as the caller's `split` made it
    consts: list[Node]  # the closed-over values of the enclosing trace


def trace_body(fn: Callable[..., Any], specs: Sequence[ArgSpec],
               split: Callable[[Any], tuple[list[Any], Any]]) -> TracedBody:
    """Trace `fn(*placeholders)`; `split(result)` gives its output leaves and structure."""
    from ..ir.calls import foreign_nodes, next_serial, substitute
    from .tracer import trace_function

    holder: dict[str, Any] = {}

    def flat(*args: Any) -> tuple:
        leaves, structure = split(fn(*args))
        holder["tree"] = structure
        return tuple(leaves)

    inner = Builder()
    first = next_serial()
    graph, _ = trace_function(flat, specs, inner)
    consts = foreign_nodes(graph.outputs, first)
    if consts:
        taken = {s.name for s in specs}
        closures = {node: prim.input_node(inner, _closure_name(node, k, taken), len(specs) + k,
                                          node.shape, node.dtype)
                    for k, node in enumerate(consts)}
        memo: dict[Node, Node] = {}
        outputs = substitute(inner, list(graph.outputs), closures, memo)
        hints = {memo.get(n, n): name for n, name in graph.name_hints.items()}
        graph = Graph(graph.inputs + tuple(closures.values()), tuple(outputs), hints)
    return TracedBody(graph, holder["tree"], consts)


def expand_body(graph: Graph) -> Graph:
    """calls.expand_calls for a body, whose inputs need not all be read (the counter)."""
    from ..autodiff.expand import expand_calls

    count = len(graph.outputs)
    whole = expand_calls(Graph(graph.inputs, graph.outputs + graph.inputs, graph.name_hints))
    return Graph(whole.inputs, whole.outputs[:count], whole.name_hints)


def _closure_name(node: Node, k: int, taken: set[str]) -> str:
    """A closed-over parameter of the enclosing function keeps its name (`w`)."""
    name = str(node.param("name")) if node.op == "input" else ""
    if not name or name in taken:
        name = f"closure_{k}"
    taken.add(name)
    return name


def with_consts(graph: Graph, own: Sequence[Node], every: Sequence[Node], first: int) -> Graph:
    """`graph` with const placeholders for all of `every` (from position `first`), its own
    consts (`own`, placeholders from `first`) moved to their places among them."""
    from ..ir.calls import substitute

    builder = Builder()
    kept = list(graph.inputs[:first])
    own_names = {id(node): str(old.param("name")) for old, node in zip(graph.inputs[first:], own)}
    taken = {str(n.param("name")) for n in kept}
    placeholders = [prim.input_node(builder, own_names.get(id(n)) or _closure_name(n, k, taken),
                                    first + k, n.shape, n.dtype) for k, n in enumerate(every)]
    index = {id(n): k for k, n in enumerate(every)}
    mapping = {old: placeholders[index[id(node)]]
               for old, node in zip(graph.inputs[first:], own)}
    memo: dict[Node, Node] = {}
    outputs = substitute(builder, list(graph.outputs), mapping, memo)
    hints = {memo.get(n, n): name for n, name in graph.name_hints.items()}
    return Graph(tuple(kept) + tuple(placeholders), tuple(outputs), hints)


def _union(*groups: Sequence[Node]) -> list[Node]:
    seen: dict[int, Node] = {}
    for group in groups:
        for node in group:
            seen.setdefault(id(node), node)
    return sorted(seen.values(), key=lambda n: n.serial)


def _check_carry(what: str, fn: Callable, tree: TreeDef, got_tree: Any,
                 expected: Sequence[Node], got: Sequence[Node]) -> None:
    where = f" ({function_name(fn)} at {definition_site(fn)})"
    if got_tree != tree:
        raise TracingError(f"{what}: the body returned a carry of structure {got_tree}, but the "
                           f"loop started with {tree}{where}; the carry must keep its structure")
    for k, (a, b) in enumerate(zip(expected, got)):
        if (a.shape, a.dtype) != (b.shape, b.dtype):
            raise TracingError(
                f"{what}: carry leaf {k} starts as {a.dtype}{list(a.shape)} but the body "
                f"returns {b.dtype}{list(b.shape)}{where}; a carry keeps its shape and dtype "
                "(cast it, e.g. with .astype, or start it with the dtype the body makes)")


def name_results(value: Any) -> Any:
    """Name a loop's results after the user's targets (`h, ys = sg.scan(...)` names the final
    carry `h` and the stacked results `ys`), as a plain assignment names its value."""
    import ast

    builder, site = active_builder(), user_site()
    if builder is None or site is None:
        return value
    try:
        tree = ast.parse(site.text)
    except SyntaxError:
        return value
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assign) \
            or len(tree.body[0].targets) != 1:
        return value
    names = builder.__dict__.setdefault("result_names", {})

    def match(target: ast.expr, item: Any) -> None:
        if isinstance(target, ast.Name) and isinstance(item, Tracer):
            names[item.node] = target.id
            loop = item.node.inputs[0] if item.node.op == "loop_out" else None
            if loop is not None and loop not in names:
                body = loop.param("body")
                names[loop] = f"{body.name if body is not None else 'branch'}_results"
        elif isinstance(target, (ast.Tuple, ast.List)) and isinstance(item, (tuple, list)) \
                and len(target.elts) == len(item):
            for t, i in zip(target.elts, item):
                match(t, i)

    match(tree.body[0].targets[0], value)
    return value


def loop_outputs(builder: Builder, node: Node, avals: Sequence[tuple[tuple, str]]) -> list:
    """The `loop_out` tracers of a loop node, one per (shape, dtype)."""
    return [Tracer(builder.node("loop_out", [node], {"index": k}, shape, dtype, node.site),
                   builder) for k, (shape, dtype) in enumerate(avals)]


# -- scan and fori_loop ---------------------------------------------------------------------
def scan(f: Callable, init: Any, xs: Any = None, length: int | None = None,
         reverse: bool = False, *, checkpoint_every: int | None = None) -> tuple[Any, Any]:
    """`carry, ys = scan(f, init, xs)`: `carry, y = f(carry, x)` for each x along the first
    axis of `xs` (a pytree of arrays, or None with `length`), the ys stacked (JAX's signature).

    Traced, it stays one loop in the generated code; reverse mode saves the carry of every
    step, or with `checkpoint_every=k` the carry of every k-th step and recomputes the rest
    (memory ~ n/k + k carries instead of n).

    Example::

        import numpy as np
        import symgrad as sg

        def loss(w, xs):
            def cell(h, x):
                h = np.tanh(w * h + x)
                return h, h
            h, hs = sg.scan(cell, 0.0, xs)
            return np.sum(hs)

        g = sg.grad(loss, wrt="w")(0.5, np.linspace(0, 1, 100))
    """
    return name_results(_scan(lambda t, c, x: f(c, x), init, xs, length, reverse,
                              checkpoint_every, function_name(f), definition_site(f),
                              _param_names(f, 2, ("carry", "x"))))


def fori_loop(lower: int, upper: int, body_fun: Callable, init_val: Any, *,
              checkpoint_every: int | None = None) -> Any:
    """`val = body_fun(i, val)` for i in range(lower, upper) (JAX's signature). The body may
    index arrays with `i`. Static (Python int) bounds give a `for` loop that reverse mode
    differentiates; traced bounds give a `while_loop` (forward and forward mode only)."""
    if isinstance(lower, Tracer) or isinstance(upper, Tracer):
        from .control import while_loop

        def cond_fun(state: Any) -> Any:
            return state[0] < upper

        def step(state: Any) -> Any:
            return state[0] + 1, body_fun(state[0], state[1])

        return while_loop(cond_fun, step, (lower, init_val))[1]
    lower, upper = int(lower), int(upper)
    names = _param_names(body_fun, 2, ("i", "val"))

    def step_at(t: Any, carry: Any, x: Any) -> Any:
        return body_fun(t + lower if lower else t, carry), None

    carry, _ = _scan(step_at, init_val, None, max(upper - lower, 0), False, checkpoint_every,
                     function_name(body_fun), definition_site(body_fun),
                     [names[1], "x"], counter=names[0])
    return name_results(carry)


def _scan(step: Callable, init: Any, xs: Any, length: int | None, reverse: bool,
          checkpoint_every: int | None, name: str, where: str, names: Sequence[str],
          counter: str = "step") -> tuple[Any, Any]:
    x_leaves, x_tree = _flatten(xs)
    shapes = [_shape(x) for x in x_leaves]
    lengths = {s[0] for s in shapes if s}
    if any(not s for s in shapes) or len(lengths) > 1 or (
            length is not None and lengths and lengths != {length}):
        raise ArgumentError(f"scan over arrays of shapes {shapes}"
                            f"{'' if length is None else f' with length={length}'}: every "
                            "scanned array needs the same first axis (the number of steps)")
    if length is None and not lengths:
        raise ArgumentError("scan with xs=None needs length= (the number of steps)")
    n = length if length is not None else lengths.pop()
    k = checkpoint_every
    if k is not None and 1 < k < n:
        if n % k:
            raise ArgumentError(f"scan of {n} steps with checkpoint_every={k}: the number of "
                                "steps must be a multiple of checkpoint_every")
        return _segmented(step, init, xs, x_tree, n, k, reverse, name, where, names, counter)
    builder = active_builder()
    if builder is None:
        return _eager_scan(step, init, x_leaves, x_tree, n, reverse)
    site = builder.site or user_site()
    c_leaves, c_tree = _flatten(init)
    c_nodes = [_node(builder, c) for c in c_leaves]
    x_nodes = [_node(builder, x) for x in x_leaves]
    specs = ([ArgSpec(counter, (), COUNTER_DTYPE)]
             + [ArgSpec(s, c.shape, c.dtype) for s, c in zip(
                 _leaf_names(names[0], c_tree, len(c_nodes)), c_nodes)]
             + [ArgSpec(s, x.shape[1:], x.dtype) for s, x in zip(
                 _leaf_names(names[1], x_tree, len(x_nodes)), x_nodes)])
    nc, nx = len(c_nodes), len(x_nodes)

    def body(t: Any, *leaves: Any) -> Any:
        result = step(t, _unflatten(c_tree, leaves[:nc]), _unflatten(x_tree, leaves[nc:]))
        if not isinstance(result, tuple) or len(result) != 2:
            raise TracingError(f"scan: the body {name} ({where}) must return a pair "
                               "(new carry, per-step result)")
        return result

    def split(result: Any) -> tuple[list, Any]:
        new_c, c_out_tree = _flatten(result[0])
        ys, y_tree = _flatten(result[1])
        return new_c + ys, (c_out_tree, y_tree, len(new_c))

    traced = trace_body(body, specs, split)
    c_out_tree, y_tree, n_new = traced.outputs_tree
    graph = traced.graph
    _check_carry("scan", step, c_tree, c_out_tree, c_nodes, graph.outputs[:n_new])
    carries_in = graph.inputs[1:1 + nc]
    graph = Graph(graph.inputs, graph.outputs + carries_in, graph.name_hints)
    body_ = LoopBody.make(graph, (1, nc, nx, len(traced.consts)), name, where)
    node = builder.node("scan", c_nodes + x_nodes + traced.consts,
                        {"body": body_, "length": n, "reverse": bool(reverse)}, (), "tuple",
                        site)
    outs = graph.outputs
    avals = [(o.shape, o.dtype) for o in outs[:nc]] + [((n,) + o.shape, o.dtype)
                                                       for o in outs[nc:]]
    ny = len(outs) - 2 * nc  # the saved carries are read only by the pullback (loop_rules)
    results = loop_outputs(builder, node, avals[:nc + ny])
    return _unflatten(c_tree, results[:nc]), _unflatten(y_tree, results[nc:nc + ny])


def _segmented(step: Callable, init: Any, xs: Any, x_tree: TreeDef, n: int, k: int,
               reverse: bool, name: str, where: str, names: Sequence[str],
               counter: str) -> tuple[Any, Any]:
    """A scan of n steps as n/k segments of k: the outer scan saves one carry a segment,
    and differentiating a segment recomputes its k carries (checkpointing)."""
    segments = n // k
    x_leaves, _ = _flatten(xs)
    seg_xs = _unflatten(x_tree, [np.reshape(x, (segments, k) + _shape(x)[1:])
                                 for x in x_leaves])

    def segment(s: Any, carry: Any, x_seg: Any) -> Any:
        return _scan(lambda t, c, x: step(s * k + t, c, x), carry, x_seg,
                     None if x_tree != _NONE else k, reverse, None, name, where, names, counter)

    carry, ys = _scan(segment, init, seg_xs, None if x_tree != _NONE else segments, reverse,
                      None, f"{name}_segment", where, names, "segment")
    y_leaves, y_tree = _flatten(ys)
    return carry, _unflatten(y_tree, [np.reshape(y, (n,) + _shape(y)[2:])
                                      for y in y_leaves])


def _eager_scan(step: Callable, init: Any, x_leaves: list, x_tree: TreeDef, n: int,
                reverse: bool) -> tuple[Any, Any]:
    carry, ys = init, [None] * n
    y_tree = _NONE
    for t in (range(n - 1, -1, -1) if reverse else range(n)):
        carry, y = step(np.int64(t), carry, _unflatten(x_tree, [x[t] for x in x_leaves]))
        ys[t], y_tree = _flatten(y)
    if n == 0:  # one call on zeros gives the results' structure, shapes and dtypes
        _, y = step(np.int64(0), init, _unflatten(x_tree, [np.zeros(np.shape(x)[1:], x.dtype)
                                                          for x in x_leaves]))
        leaves, y_tree = _flatten(y)
        return carry, _unflatten(y_tree, [np.zeros((0,) + np.shape(v), np.asarray(v).dtype)
                                          for v in leaves])
    return carry, _unflatten(y_tree, [np.stack([np.asarray(y[j]) for y in ys])
                                      for j in range(len(ys[0]))])
