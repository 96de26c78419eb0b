"""`sg.vmap`: a function of one example applied to a batch, as batched numpy.

`vmap(f, in_axes, out_axes)` traces `f` once on one example's shapes (the batch axis of each
argument removed) and records the result as a `call` in the graph being traced, as the other
transforms do (calls.py); its body is a `VmapBody`. When the graph is compiled (a cache miss
only), the body's own calls are expanded first (`vmap(grad(loss))` differentiates the
per-example loss), then `batching.batch_graph` rewrites the per-example graph with a leading
batch axis, op by op (a loop's body once, as a graph of its own: autodiff/loop_batching.py).
Nothing here imports SymPy, and the generated code has no loop over examples. Because a vmap
is a call like the others, it composes both ways: `grad(vmap(f))` differentiates the batched
graph, `vmap(hessian(f))` batches the Hessian's.

`in_axes` and `out_axes` have JAX's meaning: an int or None for every argument (output), or
a tuple with one entry per positional argument, each an int, None or a pytree prefix of it.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..ir import primitives as prim
from ..autodiff.batching import batch_graph, batched_outputs, materialised, unbatchable
from ..errors import ArgumentError, ShapeError
from ..ir.graph import Builder, Graph, Node
from ..pytree import TreeDef, path_text, tree_flatten
from ..specs import Spec
from ..trace.tracer import Tracer, user_site


@dataclass(frozen=True, eq=False)
class VmapBody:
    """The per-example graph of a vmap call and how its inputs and outputs are batched."""

    graph: Graph
    positions: tuple[int, ...]  # the graph input position each call input binds
    axes: tuple[int | None, ...]  # each call input's batch axis (None: the same for all)
    order: tuple[int, ...]  # the graph output behind each result of the call
    out_axes: tuple[int | None, ...]  # each result's batch axis
    size: int
    digest: str = field(default="")

    @staticmethod
    def make(graph: Graph, positions: list, axes: list, order: list, out_axes: list,
             size: int) -> "VmapBody":
        text = "\n".join([graph.canonical_text(), repr((positions, axes, order, out_axes,
                                                        size))])
        return VmapBody(graph, tuple(positions), tuple(axes), tuple(order), tuple(out_axes),
                        size, hashlib.sha256(text.encode()).hexdigest())

    def __hash__(self) -> int:
        return hash(self.digest)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VmapBody) and other.digest == self.digest

    def __repr__(self) -> str:
        return f"<vmap {self.digest}>"

    def expand(self, builder: Builder, inputs: tuple[Node, ...], hints: dict) -> list[Node]:
        """The batched graph built in `builder` over `inputs`: one node per result."""
        from ..autodiff.expand import expand_calls

        inner = expand_calls(self.graph)
        bound = {p: (node, False) if axis is None else (_to_front(builder, node, axis), True)
                 for p, node, axis in zip(self.positions, inputs, self.axes)}
        outputs, made = batch_graph(builder, inner, bound, self.size)
        for old, new in made.items():
            if old in inner.name_hints and old.op != "input":
                hints.setdefault(new, inner.name_hints[old])
        results = []
        for index, axis in zip(self.order, self.out_axes):
            node, batched = outputs[index]
            if axis is not None:
                node = node if batched else materialised(builder, node, self.size)
                node = _from_front(builder, node, axis)
            elif batched:  # _result_axes refuses this with batched_outputs: never reached
                raise AssertionError(f"vmap: result {index} varies but out_axes is None")
            results.append(node)
        return results


def _to_front(b: Builder, x: Node, axis: int) -> Node:
    return prim.transpose(b, x, [axis] + [d for d in range(x.ndim) if d != axis])


def _from_front(b: Builder, x: Node, axis: int) -> Node:
    rest = list(range(1, x.ndim))
    return prim.transpose(b, x, rest[:axis] + [0] + rest[axis:])


def _at() -> str:
    site = user_site()
    return f" (at {site})" if site else ""


def _is_axis(value: Any) -> bool:
    return value is None or (isinstance(value, (int, np.integer)) and not isinstance(value, bool))


def _prefix(axes: TreeDef, values: TreeDef, axis_leaves: list, where: str) -> list:
    """The axis of each leaf of `values`, from `axes` (a prefix of its structure)."""
    if axes.is_leaf:
        return [axis_leaves.pop(0)] * values.num_leaves
    if (axes.kind, axes.data, len(axes.children)) != (values.kind, values.data,
                                                      len(values.children)):
        raise ArgumentError(f"vmap: {where} has structure {axes}, which does not match "
                            f"the value's structure {values}")
    found = []
    for key, a, v in zip(axes.child_keys(), axes.children, values.children):
        found += _prefix(a, v, axis_leaves, f"{where}{path_text((key,))}")
    return found


def leaf_axes(spec: Any, value: Any, where: str) -> tuple[list, TreeDef, list]:
    """`value`'s leaves, structure and the axis of each, from an in_axes/out_axes entry."""
    leaves, tree = tree_flatten(value)
    if _is_axis(spec):
        return leaves, tree, [spec] * len(leaves)
    axis_leaves, axis_tree = tree_flatten(spec, _is_axis)
    if not all(_is_axis(a) for a in axis_leaves):
        raise ArgumentError(f"vmap: {where} must hold ints and None, got {spec!r}")
    return leaves, tree, _prefix(axis_tree, tree, list(axis_leaves), where)


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(x.shape)


def _positional_signature(fn: Callable) -> inspect.Signature:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return inspect.Signature([inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL)])
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
             inspect.Parameter.VAR_POSITIONAL)
    return signature.replace(parameters=[p for p in signature.parameters.values()
                                         if p.kind in kinds])


class Vmapped:
    """`fn` mapped over a batch axis of its arguments (see `symgrad.vmap`)."""

    def __init__(self, fn: Callable, in_axes: Any, out_axes: Any, backend: str,
                 fast_math: bool = False):
        from .compiled import CompiledFunction

        if not callable(fn):
            raise ArgumentError(f"symgrad.vmap: expected a function, got {fn!r}")
        if not (_is_axis(in_axes) or isinstance(in_axes, (tuple, list))):
            raise ArgumentError("vmap: in_axes must be an int, None, or a tuple with one entry "
                                f"per positional argument; got {in_axes!r}")
        self.fn, self.in_axes, self.out_axes, self.backend = fn, in_axes, out_axes, backend
        self.fast_math = fast_math
        functools.update_wrapper(self, fn, updated=())
        name = getattr(fn, "__name__", "function")
        self.__name__ = f"{name}_vmap"
        self.__qualname__ = f"{getattr(fn, '__qualname__', name)}_vmap"
        self.__signature__ = _positional_signature(fn)
        self._names = [p.name for p in self.__signature__.parameters.values()]
        self._jit = CompiledFunction(self, "jit", backend=backend, fast_math=fast_math)

    def __repr__(self) -> str:
        return f"<symgrad vmap of {getattr(self.fn, '__name__', self.fn)}>"

    def lower(self, *args: Any) -> Any:
        """The generated batched code for these arguments (arrays or specs), as `Lowered`."""
        return self._jit.lower(*args)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            raise ArgumentError(f"{self!r}: pass the arguments positionally (in_axes describes "
                                f"positional arguments); got keywords {', '.join(kwargs)}")
        flat, size = self._batched_leaves(args)
        if not any(isinstance(x, Tracer) for leaves, _, _ in flat for x in leaves):
            return self._jit(*args)
        return self._traced(args, flat, size)

    # -- arguments ---------------------------------------------------------------------------
    def _arg_name(self, k: int) -> str:
        return self._names[k] if k < len(self._names) and not self._varargs(k) else f"args[{k}]"

    def _varargs(self, k: int) -> bool:
        params = list(self.__signature__.parameters.values())
        return k >= len(params) or params[k].kind is inspect.Parameter.VAR_POSITIONAL

    def _entries(self, args: tuple) -> list:
        if _is_axis(self.in_axes):
            return [self.in_axes] * len(args)
        entries = list(self.in_axes)
        defaults = [p.default for p in self.__signature__.parameters.values()]
        # Parameters left to their defaults (filled in by the compiled form) are unbatched.
        while len(entries) < len(args) and len(entries) < len(defaults) \
                and args[len(entries)] is defaults[len(entries)]:
            entries.append(None)
        if len(entries) != len(args):
            raise ArgumentError(f"vmap: in_axes has {len(self.in_axes)} entries but "
                                f"{getattr(self.fn, '__name__', 'the function')} was called "
                                f"with {len(args)} positional arguments; give one entry per "
                                "argument (None for those that are the same for every "
                                f"example){_at()}")
        return entries

    def _batched_leaves(self, args: tuple) -> tuple[list, int]:
        """Per argument: its leaves, structure and leaf axes (checked); and the batch size."""
        flat, sizes = [], []
        for k, (arg, entry) in enumerate(zip(args, self._entries(args))):
            name = self._arg_name(k)
            leaves, tree, axes = leaf_axes(entry, arg, f"in_axes[{k}] (for {name})")
            checked = []
            for path, leaf, axis in zip(tree.paths(), leaves, axes):
                where = f"{name}{path_text(path)}"
                if axis is not None:
                    if not isinstance(leaf, (Tracer, np.ndarray, np.generic)):
                        raise ArgumentError(f"vmap: {where} is a {type(leaf).__name__}, which "
                                            f"has no axis {axis} to map over; give it in_axes "
                                            "None, or pass an array")
                    ndim = len(_shape(leaf))
                    if not -ndim <= axis < ndim:
                        raise ArgumentError(f"vmap: in_axes {axis} for {where} is out of range "
                                            f"for its shape {_shape(leaf)}")
                    axis = int(axis) % ndim
                    sizes.append((where, axis, _shape(leaf)[axis]))
                checked.append(axis)
            flat.append((leaves, tree, checked))
        if not sizes:
            raise ArgumentError("vmap needs at least one argument with a batch axis; in_axes "
                                f"{self.in_axes!r} maps none of them")
        if len({s for _, _, s in sizes}) > 1:
            shown = ", ".join(f"{w} (axis {a}) has {s}" for w, a, s in sizes)
            raise ArgumentError(f"vmap: the batch sizes differ: {shown}{_at()}")
        return flat, sizes[0][2]

    # -- inside a trace ----------------------------------------------------------------------
    def _traced(self, args: tuple, flat: list, size: int) -> Any:
        from ..ir.calls import CALL, close_over, next_serial
        from .compiled import compiled_for
        from .compose import _fill
        from ..autodiff.transforms import output_layout

        example, leaf_axis, originals = [], [], []
        for leaves, tree, axes in flat:
            shown = [x if a is None else Spec(_shape(x)[:a] + _shape(x)[a + 1:],
                                              np.dtype(x.dtype).name)
                     for x, a in zip(leaves, axes)]
            example.append(tree.unflatten(shown))
            leaf_axis += axes
            originals += leaves
        inner_fn = compiled_for(self.fn, "jit", None, self.backend, fast_math=self.fast_math)
        prepared = inner_fn._prepare(tuple(example), {}, specs_allowed=True)
        outer = next(x.builder for x in originals if isinstance(x, Tracer))
        site = outer.site or user_site()
        inner, first = Builder(), next_serial()
        graph, structure, transform = inner_fn._trace(prepared, inner)
        graph, specs, foreign = close_over(inner, graph, prepared.specs, first)
        missing = unbatchable(graph)
        if missing:
            node = missing[0]
            raise ShapeError(f"vmap of {node.op}", [i.shape for i in node.inputs],
                             f"{node.op} has no batching rule", str(node.site or site))
        positions, inputs, axes = [], [], []
        for position, (spec, leaf, axis) in enumerate(zip(prepared.specs, originals, leaf_axis)):
            if spec.shape is None:
                continue
            positions.append(position)
            axes.append(axis)
            inputs.append(leaf.node if isinstance(leaf, Tracer)
                          else prim.constant(outer, np.asarray(leaf)))
        positions += range(len(prepared.specs), len(specs))
        axes += [None] * len(foreign)
        inputs += foreign
        slots, nested = output_layout(transform, structure)
        order = [index for _, index in slots]
        out_axes = self._result_axes(graph, positions, axes, order, nested,
                                     inner_fn._finisher(prepared, transform), size)
        body = VmapBody.make(graph, positions, axes, order, out_axes, size)
        results = []
        for i, (index, axis) in enumerate(zip(order, out_axes)):
            shape = graph.outputs[index].shape
            if axis is not None:
                shape = shape[:axis] + (size,) + shape[axis:]
            results.append(Tracer(outer.node(CALL, inputs, {"body": body, "index": i}, shape,
                                             graph.outputs[index].dtype, site), outer))
        result = _fill(nested, results)
        finish = inner_fn._finisher(prepared, transform)
        return result if finish is None else finish(result)

    def _result_axes(self, graph: Graph, positions: list, axes: list, order: list,
                     nested: Any, finish: Callable | None, size: int) -> list:
        """The batch axis of each flat result: out_axes read against the output's structure,
        checked against which outputs depend on a batched argument."""
        from ..autodiff.expand import expand_calls
        from .compose import _fill

        numbered = _fill(nested, list(range(len(order))))
        tree_value = numbered if finish is None else finish(numbered)
        leaves, _, chosen = leaf_axes(self.out_axes, tree_value, "out_axes")
        by_result = dict(zip(leaves, chosen))
        mapped = {p for p, a in zip(positions, axes) if a is not None}
        varies: set[Node] = set()
        for node in graph.nodes():
            if node.op == "input" and node.param("position") in mapped \
                    or any(i in varies for i in node.inputs):
                varies.add(node)
        result = []
        batched: list[bool] | None = None  # the exact flags, where the quick look is unsure
        for i, index in enumerate(order):
            axis, ndim = by_result[i], graph.outputs[index].ndim
            if axis is None:
                if graph.outputs[index] in varies and batched is None:
                    # a loop's carry may read only unbatched values: ask the batching itself
                    count = 1 + max((n.param("position") for n in graph.inputs), default=-1)
                    flags = [p in mapped for p in range(count)]
                    batched = batched_outputs(expand_calls(graph), flags, size)
                if graph.outputs[index] in varies and batched[index]:
                    raise ArgumentError(f"vmap: out_axes is None for output {i}, but it varies "
                                        "across the batch; give it an axis")
            elif not -(ndim + 1) <= axis <= ndim:
                raise ArgumentError(f"vmap: out_axes {axis} is out of range for output {i} "
                                    f"(one example's shape {graph.outputs[index].shape})")
            result.append(None if axis is None else int(axis) % (ndim + 1))
        return result


def vmap(fn: Callable | None = None, in_axes: Any = 0, out_axes: Any = 0, *,
         backend: str = "numpy", fast_math: bool = False) -> Any:
    """Map a function of one example over a batch axis (`jax.vmap`, `torch.func.vmap`),
    generated as batched numpy: one program over the whole batch, no loop over examples.

    Arguments: `fn`; `in_axes` (an int or None for every positional argument, or a tuple
    with one entry per positional argument: an int, None for an argument shared by every
    example, or a pytree prefix of the argument); `out_axes` (an int, None, or a pytree
    prefix of the output: where the batch axis goes in each result); `backend`, `fast_math`
    (as `grad`). Returns a
    function of the batched arguments. Composes with every transform, both ways:
    `sg.vmap(sg.grad(loss), in_axes=(None, 0, 0))` gives per-example gradients and
    `sg.grad(sg.vmap(f))` differentiates the batched function.

    Example::

        import numpy as np
        import symgrad as sg

        def loss(w, x, y):
            return (x @ w - y) ** 2

        w, x, y = np.array([1.0, -1.0]), np.arange(6.0).reshape(3, 2), np.ones(3)
        per_example = sg.vmap(sg.grad(loss), in_axes=(None, 0, 0))(w, x, y)
        assert per_example.shape == (3, 2)
        assert np.allclose(per_example, 2 * (x @ w - y)[:, None] * x)
    """
    if fn is None:
        return lambda f: Vmapped(f, in_axes, out_axes, backend, fast_math)
    return Vmapped(fn, in_axes, out_axes, backend, fast_math)
