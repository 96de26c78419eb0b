"""A user function under one transform, compiled once per call signature.

Arguments are pytrees: each is flattened into leaves (arrays are traced, Python values not
differentiated are static), the generated function takes the leaves, and results come back in
the arguments' and outputs' structures. Called on traced values (inside another transform),
a `CompiledFunction` records a call instead of running (`calls.py`), so that transforms compose.
"""
from __future__ import annotations

import functools
import inspect
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Sequence, Union

import numpy as np

from .cache import DiskCache
from .compiler import (Compiled, Transform, compile_function, extra_parameters,
                       output_layout, signature_text)
from .errors import ArgumentError, TracingError
from .pytree import LEAF, TreeDef, path_text, tree_flatten
from .specs import Spec, looks_like_spec, parse_spec
from .trace import ArgSpec, Tracer, user_site

Wrt = Union[int, str, Sequence[Union[int, str]]]
ALL = "all"  # wrt default of vjp and jvp: every positional array argument

MAX_SIGNATURES = 64  # per compiled function; the oldest signature is dropped first
_ndarray = np.ndarray
_compiling = threading.local()


def resolve_wrt(wrt: Wrt | None, argnums: Any, default: Any) -> Any:
    if wrt is not None and argnums is not None:
        raise ArgumentError("give wrt= or argnums=, not both (argnums is JAX's spelling of "
                            "wrt with positions)")
    chosen = wrt if wrt is not None else argnums
    return default if chosen is None else chosen


@dataclass
class Prepared:
    """One call's arguments, flattened: slots (name, tree), leaves, specs, signature key."""

    slots: list[tuple[str, TreeDef]]
    keyword: list[str]  # the slots passed by keyword (keyword-only parameters)
    leaves: list[Any]
    specs: list[ArgSpec]
    slot_of_leaf: list[int]
    extra_leaves: list[Any]
    extra_specs: list[ArgSpec]
    key: tuple


class CompiledFunction:
    """A user function under a transform, compiled once per call signature."""

    def __init__(self, fn: Callable, kind: str, wrt: Wrt | None = None, backend: str = "numpy",
                 *, argnums: Any = None, has_aux: bool = False):
        if not callable(fn):
            raise ArgumentError(f"expected a function, got {fn!r}")
        from .backends import check_backend

        check_backend(backend)
        self.fn, self.kind, self.backend, self.has_aux = fn, kind, backend, bool(has_aux)
        self._read_signature(fn)
        default = ALL if kind in ("vjp", "jvp") else 0
        wrt = resolve_wrt(wrt, argnums, default)
        if kind == "jit":
            self.single, self._wrt = True, ()
        elif wrt == ALL:
            self.single, self._wrt = False, ALL
        else:
            self.single = isinstance(wrt, (int, np.integer, str))
            self._wrt = tuple(self._check_wrt(item) for item in ([wrt] if self.single else wrt))
            if not self._wrt:
                raise ArgumentError("wrt names no parameter")
            if len(set(self._wrt)) != len(self._wrt):
                raise ArgumentError(f"wrt={wrt!r} names a parameter twice")
        positions = self._wrt if self._wrt != ALL else tuple(range(len(self.params)))
        self.transform = Transform(kind, tuple(p for p in positions if isinstance(p, int)),
                                   self.single)
        self.extra_params = self._extra_names()
        self._signatures: OrderedDict[tuple, Compiled] = OrderedDict()
        # Calls whose arguments are all plain ndarrays, keyed by (shape, dtype) alone.
        self._fast: dict[tuple, tuple] = {}
        self._fast_keys: dict[tuple, tuple] = {}  # signature key -> its `_fast` key
        self._lock = threading.Lock()
        # Not update_wrapper's default: it would copy an inner CompiledFunction's __dict__
        # (its fn, transform, caches) onto this one, and sg.grad(sg.grad(f)) would be f'.
        functools.update_wrapper(self, fn, updated=())

    # -- parameters --------------------------------------------------------------------------
    def _read_signature(self, fn: Callable) -> None:
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):
            raise ArgumentError(f"cannot read the parameters of {fn!r}") from None
        self.params, self.kwonly, self.varargs, self.defaults = [], [], None, {}
        for p in signature.parameters.values():
            if p.kind is p.VAR_KEYWORD:
                raise ArgumentError(f"{self._fn_name()}: **{p.name} parameters are not "
                                    "supported; name each keyword parameter")
            if p.kind is p.VAR_POSITIONAL:
                self.varargs = p.name
                continue
            (self.kwonly if p.kind is p.KEYWORD_ONLY else self.params).append(p.name)
            if p.default is not inspect.Parameter.empty:
                self.defaults[p.name] = p.default

    def _fn_name(self) -> str:
        return getattr(self.fn, "__name__", "the function")

    def _check_wrt(self, item: Any) -> int | str:
        if isinstance(item, str):
            if item in self.params:
                return self.params.index(item)
            if item in self.kwonly:
                return item
            raise ArgumentError(f"wrt={item!r} names no parameter of {self._fn_name()}"
                                f"({', '.join(self.params + self.kwonly)})")
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if self.varargs is None and not -len(self.params) <= item < len(self.params):
                raise ArgumentError(f"wrt={item} is out of range for {len(self.params)} "
                                    f"parameters ({', '.join(self.params)})")
            if item < 0 and self.varargs is None:
                item = item % len(self.params)
            return int(item)
        raise ArgumentError(f"wrt entries are parameter names or positions, not {item!r}")

    def _extra_names(self) -> list[str]:
        if self.kind == "vjp":
            return ["cotangent"]
        if self.kind in ("jvp", "hvp"):
            if self._wrt == ALL:
                raise ArgumentError(f"{self.kind} needs wrt")
            if len(self._wrt) == 1:
                return ["tangent"]
            return [f"tangent_{self.params[p] if isinstance(p, int) else p}" for p in self._wrt]
        return []

    def __repr__(self) -> str:
        return f"<symgrad {self.kind} of {self._fn_name()}>"

    def _repr_html_(self) -> str:
        from .display import compiled_html

        return compiled_html(self)

    # -- the per-call path -------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs:
            entry = self._fast.get(tuple([(a.shape, a.dtype) for a in args
                                          if type(a) is _ndarray]))
            if entry is not None and len(args) == entry[0]:
                result = entry[1](*args)
                return result if entry[2] is None else entry[2](result)
        prepared = self._prepare(args, kwargs)
        if any(isinstance(x, Tracer) for x in prepared.leaves + prepared.extra_leaves):
            return self._call_traced(prepared)
        compiled = self._signatures.get(prepared.key)
        if compiled is None:
            compiled = self._compile(prepared)
        else:
            self._remember_fast(prepared, compiled)
        result = compiled.function(*prepared.leaves, *prepared.extra_leaves)
        finish = compiled.details.get("finish")
        return result if finish is None else finish(result)

    def _prepare(self, args: tuple, kwargs: dict, specs_allowed: bool = False) -> Prepared:
        positional, keyword, extras = self._bind(args, kwargs)
        slots, leaves, specs, slot_of_leaf, key = [], [], [], [], []
        wrt_slots = self._wrt_slots(len(positional), [n for n, _ in keyword])
        for index, (name, value) in enumerate(positional + keyword):
            values, tree = tree_flatten(value, _is_spec)
            slots.append((name, tree))
            key.append(tree)
            for path, leaf in zip(tree.paths(), values):
                leaf_name = name if tree.is_leaf else _leaf_name(name, path)
                where = f"{name}{path_text(path)}"
                leaf, spec = self._leaf(leaf, leaf_name, where, index in wrt_slots,
                                        specs_allowed)
                leaves.append(leaf)
                specs.append(spec)
                slot_of_leaf.append(index)
                key.append(_spec_key(spec))
        taken = {s.name for s in specs}
        if len(taken) != len(specs):
            raise ArgumentError("two arguments flatten to the same name: "
                                f"{', '.join(sorted(s.name for s in specs))}")
        extra_leaves, extra_specs = [], []
        for name, value in extras:
            values, tree = tree_flatten(value, _is_spec)
            key.append(tree)
            for path, leaf in zip(tree.paths(), values):
                leaf_name = name if tree.is_leaf else _leaf_name(name, path)
                leaf, spec = self._leaf(leaf, leaf_name, f"{name}{path_text(path)}", True,
                                        specs_allowed)
                if spec.name in taken:
                    spec = ArgSpec(spec.name + "_", spec.shape, spec.dtype)
                extra_leaves.append(leaf)
                extra_specs.append(spec)
                key.append(_spec_key(spec))
        key.append(tuple(n for n, _ in keyword))
        return Prepared(slots, [n for n, _ in keyword], leaves, specs, slot_of_leaf,
                        extra_leaves, extra_specs, tuple(key))

    def _bind(self, args: tuple, kwargs: dict) -> tuple[list, list, list]:
        """(name, value) of each positional slot, keyword-only slot and transform extra."""
        args, extras = list(args), {}
        for name in self.extra_params:
            if name in kwargs:
                extras[name] = kwargs.pop(name)
        missing_extras = [n for n in self.extra_params if n not in extras]
        if missing_extras:
            if len(args) < len(missing_extras):
                raise ArgumentError(f"{self!r} is missing arguments: {', '.join(missing_extras)}")
            for name, value in zip(missing_extras, args[len(args) - len(missing_extras):]):
                extras[name] = value
            del args[len(args) - len(missing_extras):]
        names = list(self.params)
        if len(args) > len(names) and self.varargs is None:
            every = names + self.extra_params
            raise ArgumentError(f"{self!r} takes {len(every)} arguments ({', '.join(every)}), "
                                f"got {len(args) + len(self.extra_params)}")
        bound = dict(zip(names, args))
        rest = args[len(names):]
        keyword = {}
        for name, value in kwargs.items():
            if name in self.kwonly:
                keyword[name] = value
            elif name in names:
                if name in bound:
                    raise ArgumentError(f"{self!r} got two values for {name!r}")
                bound[name] = value
            else:
                raise ArgumentError(f"{self!r} has no parameter {name!r}")
        for name, default in self.defaults.items():
            if name not in self.kwonly:  # keyword-only defaults are left to Python
                bound.setdefault(name, default)
        missing = [n for n in names if n not in bound] + [
            n for n in self.kwonly if n not in keyword and n not in self.defaults]
        if missing:
            raise ArgumentError(f"{self!r} is missing arguments: {', '.join(missing)}")
        positional = [(n, bound[n]) for n in names]
        positional += [(f"{self.varargs}_{i}", v) for i, v in enumerate(rest)]
        return (positional, [(n, keyword[n]) for n in self.kwonly if n in keyword],
                [(n, extras[n]) for n in self.extra_params])

    def _wrt_slots(self, positional: int, keywords: Sequence[str]) -> list[int]:
        """Slot indices of the differentiated arguments (keyword-only ones after positional)."""
        if self._wrt == ALL:
            return list(range(positional))
        slots = []
        for item in self._wrt:
            if isinstance(item, str):
                if item not in list(keywords):
                    raise ArgumentError(f"wrt={item!r}: the keyword-only argument {item!r} "
                                        "was not passed")
                slots.append(positional + list(keywords).index(item))
            else:
                if not -positional <= item < positional:
                    raise ArgumentError(f"wrt={item} is out of range for {positional} "
                                        "positional arguments")
                slots.append(item % positional)
        return slots

    def _leaf(self, value: Any, name: str, where: str, differentiated: bool,
              specs_allowed: bool) -> tuple[Any, ArgSpec]:
        """A leaf as passed to the generated function, and what tracing receives for it."""
        if isinstance(value, Tracer):
            return value, ArgSpec(name, tuple(value.shape), value.dtype.name)
        if type(value) is np.ndarray:
            return value, ArgSpec(name, value.shape, value.dtype.name)
        if isinstance(value, str) and specs_allowed and looks_like_spec(value):
            value = parse_spec(value)
        if isinstance(value, Spec):
            if not specs_allowed:
                raise ArgumentError(f"argument {where!r} is a spec ({value}): specs describe "
                                    "arguments for .lower() and explain_miss(); calls need "
                                    "arrays")
            return value, ArgSpec(name, tuple(value.shape), np.dtype(value.dtype).name)
        if isinstance(value, (bool, int, float)) and not differentiated:
            return value, ArgSpec(name, None, None, value)
        if isinstance(value, (str, type(None))):
            return value, ArgSpec(name, None, None, value)
        if isinstance(value, np.ma.MaskedArray):
            raise ArgumentError(f"argument {where!r} is a masked array: symgrad would drop its "
                                "mask; pass np.ma.filled(x, fill) or the data and the mask")
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise ArgumentError(f"argument {where!r}: arrays of dtype {array.dtype} are not "
                                "supported")
        return array, ArgSpec(name, array.shape, array.dtype.name)

    # -- compiling ---------------------------------------------------------------------------
    def _compile(self, prepared: Prepared) -> Compiled:
        """Compile (or load) once per signature, however many threads ask at the same time."""
        active = getattr(_compiling, "functions", set())
        if id(self) in active:
            raise TracingError(f"{self!r} calls its own compiled form while it is being traced "
                               "(recursion through a symgrad transform); call the plain "
                               "function inside instead")
        with self._lock:
            compiled = self._signatures.get(prepared.key)
            if compiled is not None:
                return compiled
            _compiling.functions = active | {id(self)}
            try:
                compiled = compile_function(self.fn, prepared.specs, self.transform,
                                            DiskCache.shared(), self.backend,
                                            trace=lambda: self._trace(prepared),
                                            extra_specs=prepared.extra_specs)
            finally:
                _compiling.functions = active
            compiled.details["finish"] = self._finisher(prepared, compiled.transform)
            self._signatures[prepared.key] = compiled
            self._remember_fast(prepared, compiled)
            while len(self._signatures) > MAX_SIGNATURES:
                old, _ = self._signatures.popitem(last=False)
                self._fast.pop(self._fast_keys.pop(old, None), None)
            return compiled

    def _remember_fast(self, prepared: Prepared, compiled: Compiled) -> None:
        """Serve later calls with these plain-ndarray arguments from one dict lookup."""
        leaves = prepared.leaves + prepared.extra_leaves
        if prepared.key in self._fast_keys or prepared.keyword \
                or not all(type(a) is _ndarray for a in leaves) \
                or not all(t.is_leaf for _, t in prepared.slots):
            return
        fast = tuple(_spec_key(s) for s in prepared.specs + prepared.extra_specs)
        self._fast_keys[prepared.key] = fast
        self._fast[fast] = (len(leaves), compiled.function, compiled.details["finish"])

    def _trace(self, prepared: Prepared, builder: Any = None) -> tuple:
        """Trace the function on the leaves: (graph, structure, transform of this signature)."""
        from .trace import trace_function

        layout: dict[str, Any] = {}

        def flat(*leaves: Any) -> Any:
            values = [[] for _ in prepared.slots]
            for slot, leaf in zip(prepared.slot_of_leaf, leaves):
                values[slot].append(leaf)
            built = [tree.unflatten(v) for (_, tree), v in zip(prepared.slots, values)]
            count = len(prepared.slots) - len(prepared.keyword)
            result = self.fn(*built[:count], **dict(zip(prepared.keyword, built[count:])))
            if self.has_aux:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise ArgumentError(f"{self._fn_name()}: has_aux=True needs the function "
                                        "to return a pair (output, aux); it returned "
                                        f"{_describe(result)}")
                out, aux = result
            else:
                out, aux = result, None
            out_leaves, out_tree = tree_flatten(out)
            if aux is None and _plain(out_tree):
                return out
            layout["out"] = out_tree.nested_tuples(range(len(out_leaves)))
            aux_leaves = []
            if self.has_aux:
                aux_leaves, aux_tree = tree_flatten(aux)
                layout["aux"] = aux_tree.nested_tuples(
                    range(len(out_leaves), len(out_leaves) + len(aux_leaves)))
                layout["aux_tree"] = aux_tree
            layout["out_tree"] = out_tree
            return tuple(out_leaves) + tuple(aux_leaves)

        graph, structure = trace_function(flat, prepared.specs, builder)
        transform = self._signature_transform(prepared, layout)
        self._layouts[prepared.key] = layout
        return graph, structure, transform

    @functools.cached_property
    def _layouts(self) -> dict:
        return {}

    def _signature_transform(self, prepared: Prepared, layout: dict) -> Transform:
        if self.kind == "jit":
            return Transform("jit", out=layout.get("out"))
        wrt, groups, trees = [], [], False
        for slot in self._wrt_slots(len(prepared.slots) - len(prepared.keyword), prepared.keyword):
            leaves = [i for i, s in enumerate(prepared.slot_of_leaf) if s == slot]
            tree = prepared.slots[slot][1]
            if not tree.is_leaf:
                trees = True
            if self._wrt == ALL:  # every positional array argument
                leaves = [i for i in leaves if prepared.specs[i].shape is not None]
                if tree.is_leaf and not leaves:
                    continue
            wrt.extend(leaves)
            groups.append(None if tree.is_leaf else len(leaves))
        if not wrt:
            raise ArgumentError(f"{self!r}: no argument to differentiate (wrt names only "
                                "static values)")
        single = self.single and len(groups) == 1
        return Transform(self.kind, tuple(wrt), single,
                         tuple(groups) if trees or self._wrt == ALL else None,
                         layout.get("out"), layout.get("aux"))

    def _finisher(self, prepared: Prepared, transform: Transform) -> Callable | None:
        """Results in the user's structures; None when generated code already returns them."""
        layout = self._layouts.get(prepared.key, {})
        out_tree, aux_tree = layout.get("out_tree"), layout.get("aux_tree")
        wrt_slots = self._wrt_slots(len(prepared.slots) - len(prepared.keyword), prepared.keyword)
        if self._wrt == ALL and transform.groups is not None:
            wrt_slots = [s for s in wrt_slots
                         if any(prepared.slot_of_leaf[i] == s for i in transform.wrt)]
        trees = [prepared.slots[s][1] for s in wrt_slots]
        if out_tree is None and aux_tree is None and all(t.is_leaf for t in trees):
            return None
        return functools.partial(_finish, self.kind, transform, out_tree, aux_tree, trees)

    # -- a VJP in two parts (sg.vjp's forward and pullback) ----------------------------------
    def split(self, args: tuple, kwargs: dict) -> tuple[Any, Any, Callable]:
        """Run the forward part once: (value, aux or None, pullback). The pullback runs only
        the backward part on the saved residuals (a vjp CompiledFunction only)."""
        import dataclasses

        prepared = self._prepare(tuple(args) + (None,), dict(kwargs))
        parts = self._split_parts.get(prepared.key)
        if parts is None:
            with self._lock:
                graph, structure, transform = self._trace(prepared)
                expected = extra_parameters(graph, structure, prepared.specs, transform)
                compiled = [compile_function(
                    self.fn, prepared.specs, dataclasses.replace(transform, split=part),
                    DiskCache.shared(), self.backend,
                    trace=lambda part=part: (graph, structure,
                                             dataclasses.replace(transform, split=part)))
                    for part in ("forward", "backward")]
                parts = (compiled[0], compiled[1], expected,
                         self._finisher(prepared, transform), transform.aux is not None)
                self._split_parts[prepared.key] = parts
        forward, backward, expected, finish, has_aux = parts
        result = forward.function(*prepared.leaves)
        value, residuals = result[0], result[1]
        aux = result[2] if has_aux else None
        done = finish((value, None, aux) if has_aux else (value, None)) if finish else None
        shown_value = done[0] if done else value
        shown_aux = done[2] if done and has_aux else aux

        def pullback(cotangent: Any) -> Any:
            leaves, specs = [], []
            values, _ = tree_flatten(cotangent, _is_spec)
            for k, leaf in enumerate(values):
                leaf, spec = self._leaf(leaf, f"cotangent_{k}", "cotangent", True, False)
                leaves.append(leaf)
                specs.append(spec)
            check_extras(self, expected, specs)
            grads = backward.function(*residuals, *leaves)
            if finish is None:
                return grads
            return finish((value, grads, aux) if has_aux else (value, grads))[1]

        pullback.lower = lambda: (forward, backward)
        return shown_value, shown_aux, pullback

    @functools.cached_property
    def _split_parts(self) -> dict:
        return {}

    # -- inside a traced function ------------------------------------------------------------
    def _call_traced(self, prepared: Prepared) -> Any:
        """Record this transform as a call in the graph being traced (see calls.py)."""
        from . import primitives as prim
        from .calls import CALL, CallBody, foreign_nodes, next_serial, substitute
        from .compiler import _check_transform, output_avals
        from .graph import Builder, Graph

        outer = next(x.builder for x in prepared.leaves + prepared.extra_leaves
                     if isinstance(x, Tracer))
        site = outer.site or user_site()
        inner = Builder()
        first = next_serial()
        graph, structure, transform = self._trace(prepared, inner)
        specs = list(prepared.specs)
        foreign = foreign_nodes(graph.outputs, first)
        if foreign:
            closures = {node: _placeholder(inner, len(specs) + k, node)
                        for k, node in enumerate(foreign)}
            specs += [ArgSpec(c.param("name"), c.shape, c.dtype) for c in closures.values()]
            outputs = substitute(inner, list(graph.outputs), closures)
            graph = Graph(graph.inputs + tuple(closures.values()), tuple(outputs),
                          name_hints=graph.name_hints)
        _check_transform(graph, structure, specs, transform)
        expected = extra_parameters(graph, structure, specs, transform)
        check_extras(self, expected, prepared.extra_specs)
        positions, inputs = [], []
        for position, (leaf, spec) in enumerate(zip(prepared.leaves, prepared.specs)):
            if spec.shape is None:
                continue
            positions.append(position)
            inputs.append(leaf.node if isinstance(leaf, Tracer)
                          else prim.constant(outer, np.asarray(leaf)))
        positions += range(len(prepared.specs), len(specs))
        inputs += foreign
        for k, leaf in enumerate(prepared.extra_leaves):
            positions.append(len(specs) + k)
            inputs.append(leaf.node if isinstance(leaf, Tracer)
                          else prim.constant(outer, np.asarray(leaf)))
        body = CallBody.make(graph, structure, specs, transform, positions)
        avals = output_avals(graph, structure, specs, transform)
        results = [Tracer(outer.node(CALL, inputs, {"body": body, "index": i}, shape, dtype,
                                     site), outer)
                   for i, (shape, dtype) in enumerate(avals)]
        _, nested = output_layout(transform, structure)
        result = _fill(nested, results)
        finish = self._finisher(prepared, transform)
        return result if finish is None else finish(result)

    # -- inspection --------------------------------------------------------------------------
    def lower(self, *args: Any, **kwargs: Any) -> Any:
        """Compile for these arguments and show every stage: source, path, graphs, math.

        Arguments may be arrays, or specs with no data: `sg.spec("f64[5,3]")` or the string
        `"f64[5,3]"` (a string shaped like `name[...]` is read as a spec; other strings are
        static values). Returns a `Lowered`; in a notebook it displays as the source, the
        math and the graph's picture.

        Example::

            import numpy as np
            import symgrad as sg

            low = sg.grad(lambda x: np.sum(np.exp(x)), wrt="x").lower("f64[3]")
            assert "np.exp(x)" in low.source and "x_bar" in low.math()
        """
        from .api import Lowered

        prepared = self._prepare(args, kwargs, specs_allowed=True)
        compiled = self._signatures.get(prepared.key) or self._compile(prepared)

        def details() -> dict:
            from .compiler import generate_source

            graph, structure, transform = self._trace(prepared)
            return generate_source(self.fn, graph, structure, prepared.specs, transform,
                                   compiled.function.__name__, compiled.key)[1]

        return Lowered(source=compiled.source, path=compiled.path, graph=compiled.graph,
                       signature=signature_text(prepared.specs), function=compiled.function,
                       key=compiled.key, from_cache=compiled.from_cache,
                       _details=compiled.details if "program" in compiled.details else None,
                       _make_details=details,
                       differentiated=tuple(prepared.specs[p].name
                                            for p in (compiled.transform or self.transform).wrt))

    def explain_miss(self, *args: Any, **kwargs: Any) -> str:
        """Why a call with these arguments (arrays or specs) would miss the disk cache: which
        key component differs from the nearest entry of this function, or that it hits."""
        from .explain import explain_miss

        prepared = self._prepare(args, kwargs, specs_allowed=True)
        return explain_miss(self.fn, prepared.specs, self.transform, self.backend,
                            DiskCache.shared(), in_memory=prepared.key in self._signatures,
                            trace=lambda at: self._trace(_at_specs(prepared, at)))

    def specs_for(self, *args: Any) -> list[ArgSpec]:
        """What tracing receives for these arguments (arrays, specs or static values)."""
        if self.kind == "vjp" and len(args) == len(self.params):
            args = args + (None,)
        return self._prepare(tuple(args), {}, specs_allowed=True).specs


def _at_specs(prepared: Prepared, specs: Sequence[ArgSpec]) -> Prepared:
    """The same call traced at other specs (another signature, for explaining a miss)."""
    import dataclasses

    if len(specs) != len(prepared.specs):
        raise ArgumentError("the other signature has a different number of arguments")
    return dataclasses.replace(prepared, specs=list(specs))


def check_extras(function: Any, expected: Sequence[ArgSpec], given: Sequence[ArgSpec]) -> None:
    """A cotangent or tangent must match what it pairs with: one clear error otherwise."""
    site = user_site()
    where = f" (at {site})" if site else ""
    if len(expected) != len(given):
        raise ArgumentError(f"{function!r}: expected {len(expected)} "
                            f"{'cotangent' if function.kind == 'vjp' else 'tangent'} "
                            f"array(s) ({', '.join(e.name for e in expected)}), got "
                            f"{len(given)}{where}")
    for e, g in zip(expected, given):
        if g.shape is None or tuple(g.shape) != tuple(e.shape) or g.dtype != e.dtype:
            got = "a static value" if g.shape is None else f"{g.dtype}{list(g.shape)}"
            raise ArgumentError(f"{function!r}: {e.name} must be {e.dtype}{list(e.shape)} like "
                                f"the value it pairs with, got {got}{where}")


def _placeholder(builder: Any, position: int, node: Any) -> Any:
    from . import primitives as prim

    return prim.input_node(builder, f"closure_{position}", position, node.shape, node.dtype)


def _fill(nested: Any, values: list) -> Any:
    if isinstance(nested, int):
        return values[nested]
    return type(nested)(_fill(item, values) for item in nested)


def _finish(kind: str, transform: Transform, out_tree: TreeDef | None,
            aux_tree: TreeDef | None, trees: list[TreeDef], result: Any) -> Any:
    def value(v: Any) -> Any:
        return v if out_tree is None else out_tree.from_nested(v)

    def aux(a: Any) -> Any:
        return aux_tree.from_nested(a)

    def grads(g: Any) -> Any:
        items = [g] if transform.single else list(g)
        items = [item if tree.is_leaf else tree.unflatten(item)
                 for item, tree in zip(items, trees)]
        return items[0] if transform.single else tuple(items)

    has_aux = transform.aux is not None
    if kind == "jit":
        return value(result)
    if kind == "hvp":
        return grads(result)
    if kind == "grad":
        return (grads(result[0]), aux(result[1])) if has_aux else grads(result)
    if kind == "value_and_grad":
        if has_aux:
            (v, a), g = result
            return (value(v), aux(a)), grads(g)
        return value(result[0]), grads(result[1])
    second = grads if kind == "vjp" else value
    if has_aux:
        return value(result[0]), second(result[1]), aux(result[2])
    return value(result[0]), second(result[1])


def _is_spec(value: Any) -> bool:
    return isinstance(value, Spec)


def _plain(tree: TreeDef) -> bool:
    """Tuples, lists and leaves: what generated code returns as it is."""
    return tree.is_leaf or (tree.kind in ("tuple", "list")
                            and all(_plain(c) for c in tree.children))


def _describe(value: Any) -> str:
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    return f"a {type(value).__name__}"


_NOT_NAME = re.compile(r"\W+", re.ASCII)


def _leaf_name(name: str, path: tuple) -> str:
    """`params_w_0` for params['w'][0]: an identifier made of the path's keys."""
    parts = [name] + [_NOT_NAME.sub("_", str(k)).strip("_") or "key" for k in path]
    return "_".join(parts)[:80]


def _spec_key(spec: ArgSpec) -> tuple:
    if spec.shape is None:
        # repr, not the value: -0.0 == 0.0 and nan != nan, yet each is its own program
        return ("static", type(spec.static_value).__name__, repr(spec.static_value))
    return (tuple(spec.shape), np.dtype(spec.dtype))


_MEMO: OrderedDict[tuple, CompiledFunction] = OrderedDict()
_MEMO_LOCK = threading.Lock()


def compiled_for(fn: Callable, kind: str, wrt: Any, backend: str, has_aux: bool = False
              ) -> CompiledFunction:
    """One CompiledFunction per (function, transform), so that repeated `sg.vjp(f, x)` calls
    reuse its compiled signatures instead of tracing again."""
    try:
        key = (fn, kind, repr(wrt), backend, has_aux)
        hash(key)
    except TypeError:
        return CompiledFunction(fn, kind, wrt, backend, has_aux=has_aux)
    with _MEMO_LOCK:
        found = _MEMO.get(key)
        if found is None:
            found = _MEMO[key] = CompiledFunction(fn, kind, wrt, backend, has_aux=has_aux)
            while len(_MEMO) > 256:
                _MEMO.popitem(last=False)
        return found
