"""Splitting a traced loss over the rows of its chunked arguments (for `distributed.py`).

A loss decomposes over rows when it is an affine function of sums over rows of per-row terms:
`mean(loss_per_row(x @ w)) + lam * sum(w ** 2)` is `S / N + R(w)` with `S` a sum over rows.
`analyse` gives every node of the graph, traced at the full shapes, a state:

- `None`: independent of the chunked arguments (parameters, constants, a regulariser);
- an int `r`: a per-row value whose axis `r` runs over the chunked rows;
- `HEAD`: a value reduced over the rows (a row sum), or a linear function of such values.

An op that mixes rows (a max or a sort over them, a per-row value combined with a row sum as
batch normalisation does, a product of two row sums, a matrix product contracting the rows)
raises `NotDecomposableError` naming the op and the user's line. `Split` then builds:

- `partial(n)`: the loss restricted to a chunk of `n` rows, without its row-independent terms
  and without the constant factors applied last (a mean's `1 / N`): plain sums per chunk;
- `rest()`: the row-independent terms (`R`), or None;
- `factors`: the constant factors peeled off, applied once to the total of the partials.

So `loss = factors(sum of partial over chunks) + rest`, exactly: the head is linear in the
row sums. Constants in per-row terms keep their full-shape values (`x - len(x)` is `x - N` in
every chunk), since the partial is the full-shape graph rebuilt with `n` rows, not a new trace.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..ir import primitives as prim
from ..errors import NotDecomposableError
from ..ir.graph import Builder, Graph, Node
from ..ir.ops import OPS, Group

HEAD = "head"  # the state of a row sum, or of a linear function of row sums
NORM = "norm"  # a 2-norm over the rows: splits only as its square, a sum of squares

_SAME_AXIS = frozenset({"astype", "stop_gradient", "positive"})
# Ops along axes: per-row when their axes leave the rows alone, refused when they run across
# them. (Names the op table may not have yet, such as sort, cost nothing here.)
_ORDERED = frozenset({"max", "min", "prod", "norm", "softmax", "log_softmax", "cumsum",
                      "cumprod", "argmax", "argmin", "sort", "argsort"})
_KEEP_RANK = frozenset({"softmax", "log_softmax", "cumsum", "cumprod", "sort", "argsort"})
_LINEAR_UNARY = frozenset({"negative", "positive", "astype", "stop_gradient", "reshape",
                           "transpose", "broadcast_to", "getitem"})


def _where(node: Node) -> str:
    if node.site is None:
        return ""
    return f" at {node.site} ({node.site.text})"


def _refuse(node: Node, why: str) -> NotDecomposableError:
    return NotDecomposableError(
        f"{node.op}{_where(node)} {why}, so the loss does not split over the chunks of its "
        "Dask arguments. symgrad splits a loss that is a sum or mean over rows of per-row "
        "terms plus terms that do not read the chunked arguments; compute this one on numpy "
        "arrays (x.compute()) or restate it as such a sum.")


# ---------------------------------------------------------------------------------------------
# States: one rule per op family
# ---------------------------------------------------------------------------------------------
def _reduced_axes(node: Node, ndim: int) -> tuple[int, ...]:
    axes = node.param("axes")
    if axes is None:
        axis = node.param("axis")
        axes = tuple(range(ndim)) if axis is None else (axis,)
    return tuple(a % max(ndim, 1) for a in (axes if isinstance(axes, tuple) else (axes,)))


def _reduction(node: Node, state: Any) -> Any:
    source = node.inputs[0]
    if state is HEAD:
        if node.op == "sum":
            return HEAD
        raise _refuse(node, "is applied to a value already summed over the chunked rows "
                            "(a non-linear function of a sum)")
    axes = _reduced_axes(node, source.ndim)
    if state in axes:
        if node.op == "sum":
            return HEAD
        if node.op == "norm":
            return NORM
        raise _refuse(node, f"runs across the chunked rows (axis {state})")
    if node.op in _KEEP_RANK or node.param("keepdims"):
        return state
    return state - sum(1 for a in axes if a < state)


def is_norm_squared(node: Node, states: list[Any]) -> bool:
    """`np.linalg.norm(r) ** 2` over the rows: the sum of the squares of `r`."""
    if states[:1] != [NORM] or any(s is not None for s in states[1:]):
        return False
    exponent = node.inputs[1] if node.op == "power" else None
    return node.op == "square" or (exponent is not None and exponent.op == "const"
                                   and exponent.shape == () and exponent.param("value") == 2)


def _elementwise(node: Node, states: list[Any]) -> Any:
    if NORM in states:
        if is_norm_squared(node, states):
            return HEAD
        raise _refuse(node.inputs[states.index(NORM)],
                      "runs across the chunked rows; of a norm over rows only its square "
                      "splits (np.linalg.norm(r) ** 2, a sum of squares)")
    if HEAD in states:
        if any(isinstance(s, int) for s in states):
            raise _refuse(node, "combines a value summed over the chunked rows with per-row "
                                "values (as batch normalisation does)")
        heads = sum(1 for s in states if s is HEAD)
        linear = (node.op in ("add", "subtract", "negative", "positive")
                  or (node.op == "multiply" and heads == 1)
                  or (node.op == "divide" and states[0] is HEAD and states[1] is None))
        if not linear:
            raise _refuse(node, "is a non-linear function of a sum over the chunked rows")
        return HEAD
    axes = {s + node.ndim - i.ndim for i, s in zip(node.inputs, states) if isinstance(s, int)}
    if len(axes) != 1:
        raise _refuse(node, "lines up the chunked rows of two arguments along different axes")
    axis = axes.pop()
    for source, s in zip(node.inputs, states):
        k = axis - (node.ndim - source.ndim)
        if s is None and k >= 0 and source.shape[k] != 1:
            raise _refuse(node, f"combines per-row values with a {list(source.shape)} value "
                                "that is not chunked along the rows (pass it as a Dask array "
                                "chunked like the others)")
    return axis


def _reshaped_axis(node: Node, axis: int) -> int:
    before = node.inputs[0].shape
    prefix = _product(before[:axis])
    for k, extent in enumerate(node.shape):
        if _product(node.shape[:k]) == prefix and extent == before[axis]:
            return k
    raise _refuse(node, "merges or splits the chunked row axis")


def _indexed_axis(node: Node, axis: int) -> int:
    extent = node.inputs[0].shape[axis]
    dim = out = 0
    found = None
    for entry in node.param("index"):
        if entry[0] == "n":
            out += 1
            continue
        if dim == axis:
            if entry != ("s", 0, extent, 1):
                raise _refuse(node, "selects some of the chunked rows")
            found = out
        if entry[0] == "a":
            raise _refuse(node, "gathers along the chunked rows")
        out += entry[0] == "s"
        dim += 1
    return found


def _matmul(node: Node, states: list[Any]) -> Any:
    x, y = node.inputs
    sx, sy = states
    if HEAD in states:
        if (sx is HEAD and sy is None) or (sy is HEAD and sx is None):
            return HEAD
        raise _refuse(node, "multiplies per-row values or two row sums together")
    if isinstance(sx, int) and sy is None and x.ndim >= 2 and sx != x.ndim - 1:
        if sx == x.ndim - 2:
            return node.ndim - (1 if y.ndim == 1 else 2)
        return sx + node.ndim - x.ndim
    if isinstance(sy, int) and sx is None and y.ndim >= 2 and sy == y.ndim - 1:
        return node.ndim - 1
    raise _refuse(node, "contracts over the chunked rows (a sum of products across rows)")


def _is_arange(node: Node, rows: int) -> bool:
    """A constant `np.arange(rows)`: the row selector of `logp[np.arange(n), labels]`."""
    if node.op != "const" or node.shape != (rows,) or not hasattr(node.param("value"), "value"):
        return False
    return bool(np.array_equal(node.param("value").value, np.arange(rows)))


def _gather(node: Node, states: list[Any]) -> Any:
    """`x[np.arange(n), labels]` (a value per row picked by a per-row index) and `W[labels]`
    (rows of a parameter picked per row): the advanced indices line up with the rows."""
    source, arrays = node.inputs[0], node.inputs[1:]
    if states[0] is HEAD and all(s is None for s in states[1:]):
        return HEAD
    index = node.param("index")
    entries = [e for e in index if e[0] != "n"]
    advanced = [k for k, e in enumerate(index) if e[0] == "a"]
    if isinstance(states[0], int):
        entry = entries[states[0]]
        rows = source.shape[states[0]]
        if entry[0] != "a" or not _is_arange(arrays[entry[1]], rows):
            raise _refuse(node, "indexes the chunked rows with something other than "
                                "np.arange(n)")
        others = [a for j, a in enumerate(arrays) if j != entry[1]]
        other_states = [s for j, s in enumerate(states[1:]) if j != entry[1]]
    elif states[0] is None:
        others, other_states = list(arrays), states[1:]
    else:
        raise _refuse(node, "indexes with a row sum")
    for array, state in zip(others, other_states):
        if not ((state == 0 and array.ndim == 1) or (state is None and array.ndim == 0)):
            raise _refuse(node, "indexes with arrays that do not line up with the rows")
    if advanced != list(range(advanced[0], advanced[-1] + 1)):
        return 0  # numpy puts the advanced dimension first
    return sum(1 for e in index[:advanced[0]] if e[0] in "sn")


def _state(node: Node, states: list[Any]) -> Any:
    if all(s is None for s in states):
        return None
    group = OPS[node.op].group
    if NORM in states and group is not Group.ELEMENTWISE:
        raise _refuse(node.inputs[states.index(NORM)], "runs across the chunked rows; of a "
                      "norm over rows only its square splits (np.linalg.norm(r) ** 2)")
    if node.op == "matmul":
        return _matmul(node, states)
    if node.op == "gather":
        return _gather(node, states)
    if group is Group.ELEMENTWISE:
        return _elementwise(node, states)
    if node.op == "sum" or node.op in _ORDERED:
        return _reduction(node, states[0])
    if node.op == "concatenate" and all(s in (None, HEAD) for s in states):
        return HEAD
    if node.op in ("fft", "rfft", "irfft"):  # per row when no transformed axis is the rows'
        if len(set(states)) == 1 and isinstance(states[0], int) \
                and states[0] not in node.param("axes"):
            return states[0]
        raise _refuse(node, "transforms along the chunked rows")
    state = states[0] if len(states) == 1 else "other"
    if state is HEAD and node.op in _LINEAR_UNARY:
        return HEAD
    if isinstance(state, int):
        if node.op in _SAME_AXIS:
            return state
        if node.op == "transpose":
            return node.param("perm").index(state)
        if node.op == "broadcast_to":
            source = node.inputs[0]
            if source.shape[state] != node.shape[state + node.ndim - source.ndim]:
                raise _refuse(node, "stretches a single row")
            return state + node.ndim - source.ndim
        if node.op == "reshape":
            return _reshaped_axis(node, state)
        if node.op == "getitem":
            return _indexed_axis(node, state)
    raise _refuse(node, "is not supported over chunked rows")


def analyse(graph: Graph, chunked: Sequence[int]) -> dict[Node, Any]:
    """The state of every node (see the module docstring); raises where rows are mixed."""
    chunked = set(chunked)
    states: dict[Node, Any] = {}
    for node in graph.nodes():
        if node.op == "input":
            states[node] = 0 if node.param("position") in chunked else None
        else:
            states[node] = _state(node, [states[i] for i in node.inputs])
    for output in graph.outputs:
        if isinstance(states[output], int):
            raise _refuse(output, "returns per-row values")
        if states[output] is NORM:
            raise _refuse(output, "runs across the chunked rows; of a norm over rows only "
                                  "its square splits (np.linalg.norm(r) ** 2)")
    return states


# ---------------------------------------------------------------------------------------------
# The split: partial per chunk size, row-independent rest, constant factors
# ---------------------------------------------------------------------------------------------
@dataclass
class Split:
    graph: Graph
    chunked: tuple[int, ...]  # input positions of the chunked arguments
    states: dict[Node, Any]
    root: Node  # the output

    @staticmethod
    def of(graph: Graph, chunked: Sequence[int]) -> "Split":
        states = analyse(graph, chunked)
        (output,) = graph.outputs
        return Split(graph, tuple(chunked), states, output)

    @property
    def reads_rows(self) -> bool:
        return self.states[self.graph.outputs[0]] is HEAD

    def partial(self, rows: int) -> tuple[Graph, list[tuple[str, Any]]]:
        """The loss on a chunk of `rows` rows: its row sums only, and the constant factors
        (a mean's division by the total row count) that the combine step applies once."""
        builder = Builder()
        memo: dict[Node, Node] = {}
        inputs = []
        for node in self.graph.inputs:
            shape = node.shape
            if node.param("position") in self.chunked:
                shape = (rows,) + shape[1:]
            memo[node] = prim.input_node(builder, node.param("name"), node.param("position"),
                                         shape, node.dtype)
            inputs.append(memo[node])
        for node in _below(self.root, self.graph.inputs):
            state = self.states[node]
            inputs_now = [memo.get(i) for i in node.inputs]
            states = [self.states[i] for i in node.inputs]
            if state is HEAD and is_norm_squared(node, states):
                norm = node.inputs[0]
                square = prim.elementwise(builder, "square", memo[norm.inputs[0]])
                memo[node] = _fit(builder, prim.reduce_sum(builder, square, norm.param("axes"),
                                                           bool(norm.param("keepdims"))), node)
            elif state is HEAD:
                memo[node] = _linear(builder, node, inputs_now, states)
            else:
                first = self.states[node.inputs[0]] if node.inputs else None
                if node.op == "gather" and isinstance(first, int):
                    full = node.inputs[0].shape[first]
                    inputs_now = [prim.constant(builder, np.arange(rows, dtype=i.dtype))
                                  if k and _is_arange(i, full) else n
                                  for k, (i, n) in enumerate(zip(node.inputs, inputs_now))]
                memo[node] = _rows(builder, node, inputs_now, state, first, rows)
        root, factors = _peel(memo[self.root])
        hints = {memo[n]: h for n, h in self.graph.name_hints.items() if n in memo}
        return Graph(tuple(inputs), (root,), name_hints=hints), factors

    def rest(self) -> Graph | None:
        """The row-independent terms at the full shapes, or None when there are none."""
        output = self.graph.outputs[0]
        if self.states[output] is None:
            return self.graph
        builder = Builder()
        memo: dict[Node, Node | None] = {}
        for node in _below(output, self.graph.inputs):
            state = self.states[node]
            if state is None:
                memo[node] = node
            elif state is HEAD:
                memo[node] = _independent(builder, node, [memo.get(i) for i in node.inputs],
                                          [self.states[i] for i in node.inputs])
        if memo[output] is None:
            return None
        return Graph(self.graph.inputs, (memo[output],), name_hints=self.graph.name_hints)


def _peel(node: Node) -> tuple[Node, list[tuple[str, Any]]]:
    """The partial's output without the constant scalar factors applied last, and those
    factors, innermost first: `-(S / 1000)` is `S` and `[('divide', 1000), ('negative',
    None)]`."""
    factors = []
    while node.op in ("divide", "multiply", "negative"):
        if node.op == "negative":
            factors.append(("negative", None))
            node = node.inputs[0]
            continue
        a, b = node.inputs
        if _scalar_const(b) and a.dtype == node.dtype and a.shape == node.shape:
            factors.append((node.op, b.param("value")))
            node = a
        elif node.op == "multiply" and _scalar_const(a) and b.dtype == node.dtype \
                and b.shape == node.shape:
            factors.append(("multiply", a.param("value")))
            node = b
        else:
            break
    return node, factors[::-1]


def _scalar_const(node: Node) -> bool:
    return (node.op == "const" and node.shape == () and not node.param("strong")
            and isinstance(node.param("value"), (int, float))
            and not isinstance(node.param("value"), bool))


def _below(root: Node, inputs: Sequence[Node]) -> list[Node]:
    return [n for n in Graph(tuple(inputs), (root,)).nodes() if n.op != "input"]


def _rows(builder: Builder, node: Node, inputs: list[Node], state: Any, source_state: Any,
          rows: int) -> Node:
    """A per-row or row-independent node rebuilt with `rows` rows on its row axis."""
    params = dict(node.params)
    shape = node.shape
    if isinstance(state, int):
        shape = shape[:state] + (rows,) + shape[state + 1:]
        if node.op in ("reshape", "broadcast_to"):
            params["shape"] = shape
        if node.op == "getitem":
            params["index"] = _row_index(node.param("index"), source_state, rows)
    return builder.node(node.op, inputs, params, shape, node.dtype, node.site)


def _row_index(index: tuple, axis: int, rows: int) -> tuple:
    """A basic index with its full slice over the row axis (`axis`) shortened to `rows`."""
    out, dim = [], 0
    for entry in index:
        if entry[0] != "n":
            entry = ("s", 0, rows, 1) if dim == axis else entry
            dim += 1
        out.append(entry)
    return tuple(out)


def _fit(builder: Builder, value: Node, node: Node) -> Node:
    """`value` with the dtype and shape of `node` (after dropping a term it was added to)."""
    if value.dtype != node.dtype:
        value = prim.astype(builder, value, node.dtype)
    return prim.broadcast_to(builder, value, node.shape)


def _linear(builder: Builder, node: Node, inputs: list[Node | None], states: list[Any]) -> Node:
    """A head node of the partial: row-independent terms added to row sums are dropped."""
    if node.op == "sum" and isinstance(states[0], int):  # a row sum: the leaf of the head
        return builder.node("sum", inputs, dict(node.params), node.shape, node.dtype, node.site)
    if node.op in ("add", "subtract") and None in states:
        kept = inputs[0] if states[0] is HEAD else inputs[1]
        if node.op == "subtract" and states[1] is HEAD:
            kept = prim.elementwise(builder, "negative", kept)
        return _fit(builder, kept, node)
    if node.op == "concatenate":
        inputs = [i if s is HEAD else _zeros(builder, i) for i, s in zip(inputs, states)]
    return builder.node(node.op, inputs, dict(node.params), node.shape, node.dtype, node.site)


def _zeros(builder: Builder, like: Node) -> Node:
    return prim.broadcast_to(builder, prim.constant(builder, 0.0, like.dtype), like.shape)


def _independent(builder: Builder, node: Node, parts: list[Node | None],
                 states: list[Any]) -> Node | None:
    """The row-independent part of a head node (None: zero)."""
    if node.op == "sum" and isinstance(states[0], int):
        return None
    if node.op in ("add", "subtract"):
        a, b = parts
        if a is None and b is None:
            return None
        if b is None:
            return _fit(builder, a, node)
        if a is None:
            b = prim.elementwise(builder, "negative", b) if node.op == "subtract" else b
            return _fit(builder, b, node)
    elif node.op == "concatenate":
        if all(p is None for p in parts):
            return None
        parts = [p if p is not None else _zeros(builder, i)
                 for p, i in zip(parts, node.inputs)]
    elif node.op in ("multiply", "divide", "matmul"):
        head = 0 if states[0] is HEAD else 1
        if parts[head] is None:
            return None
    elif parts[0] is None:
        return None
    return builder.node(node.op, parts, dict(node.params), node.shape, node.dtype, node.site)


def _product(extents: Sequence[int]) -> int:
    total = 1
    for extent in extents:
        total *= extent
    return total
