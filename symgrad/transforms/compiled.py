"""A user function under one transform, compiled once per call signature.

Arguments are pytrees: each is flattened into leaves (arrays are traced, Python values not
differentiated are static), the generated function takes the leaves, and results come back in
the arguments' and outputs' structures. Called on traced values (inside another transform),
a `CompiledFunction` records a call instead of running (`calls.py`), so that transforms compose.
"""
from __future__ import annotations

import functools
import sys
import threading
from collections import OrderedDict
from typing import Any, Callable, Sequence

import numpy as np

from ..trace.arguments import (ALL, Arguments, Prepared, Wrt, _as_tuple, _at_specs, _spec_key,
                               at_user_line, check_extras, resolve_wrt)
from ..cache.store import DiskCache
from ..autodiff.transforms import Transform
from ..backends.common import Compiled, signature_text
from ..compiler import compile_function
from ..errors import ArgumentError, TracingError
from ..pytree import TreeDef, tree_flatten
from ..trace.tracer import Tracer

__all__ = ["CompiledFunction", "Wrt", "at_user_line", "check_extras", "compiled_for",
           "resolve_wrt", "ALL"]

MAX_SIGNATURES = 64  # per compiled function; the oldest signature is dropped first
_ndarray = np.ndarray
_compiling = threading.local()


class CompiledFunction(Arguments):
    """A user function under a transform, compiled once per call signature."""

    def __init__(self, fn: Callable, kind: str, wrt: Wrt | None = None, backend: str = "numpy",
                 *, argnums: Any = None, has_aux: bool = False, static_argnums: Any = (),
                 static_argnames: Any = (), fast_math: bool = False):
        if not callable(fn):
            raise ArgumentError(f"expected a function, got {fn!r}")
        from ..backends import check_backend

        check_backend(backend)
        self.fn, self.kind, self.backend, self.has_aux = fn, kind, backend, bool(has_aux)
        if not isinstance(fast_math, bool):
            raise ArgumentError(f"fast_math must be True or False, got {fast_math!r}")
        self.fast_math = fast_math
        self._read_signature(fn)
        self.static_argnums = _as_tuple(static_argnums, "static_argnums", int)
        self.static_argnames = set(_as_tuple(static_argnames, "static_argnames", str))
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
                                   self.single, fast_math=fast_math)
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
    def with_static(self, args: Sequence[Any]) -> "CompiledFunction":
        """This transform with every Python number among positional `args` static: what the
        command line and `export` mean by a value given for an argument (`--arg n=3`)."""
        names = {self.params[i] for i, a in enumerate(args[:len(self.params)])
                 if isinstance(a, (bool, int, float)) and not isinstance(a, np.generic)}
        if names <= self.static_argnames:
            return self
        wrt = None if self._wrt == ALL else (self._wrt[0] if self.single else self._wrt)
        return CompiledFunction(self.fn, self.kind, wrt, self.backend, has_aux=self.has_aux,
                                static_argnums=self.static_argnums,
                                static_argnames=self.static_argnames | names,
                                fast_math=self.fast_math)


    def __repr__(self) -> str:
        return f"<symgrad {self.kind} of {self._fn_name()}>"

    def _repr_html_(self) -> str:
        from ..tools.display import compiled_html

        return compiled_html(self)

    # -- the per-call path -------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs:
            entry = self._fast.get(tuple([(a.shape, a.dtype) for a in args
                                          if type(a) is _ndarray]))
            if entry is not None and len(args) == entry[0]:
                result = entry[1](*args)
                return result if entry[2] is None else entry[2](result)
        if "dask.array" in sys.modules:  # Dask arrays are split over chunks, never gathered
            from ..distributed.dask import call_with_dask, has_dask

            if has_dask(args, kwargs):
                return call_with_dask(self, args, kwargs)
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
                or any(s.weak for s in prepared.specs) \
                or not all(type(a) is _ndarray for a in leaves) \
                or not all(t.is_leaf for _, t in prepared.slots):
            return
        fast = tuple(_spec_key(s) for s in prepared.specs + prepared.extra_specs)
        self._fast_keys[prepared.key] = fast
        self._fast[fast] = (len(leaves), compiled.function, compiled.details["finish"])

    def _trace(self, prepared: Prepared, builder: Any = None) -> tuple:
        """Trace the function on the leaves: (graph, structure, transform of this signature)."""
        from ..trace.tracer import trace_function

        layout: dict[str, Any] = {}

        def flat(*leaves: Any) -> Any:
            values = [[] for _ in prepared.slots]
            for slot, leaf in zip(prepared.slot_of_leaf, leaves):
                values[slot].append(leaf)
            built = [tree.unflatten(v) for (_, tree), v in zip(prepared.slots, values)]
            count = len(prepared.slots) - len(prepared.keyword)
            result = self.fn(*built[:count], **dict(zip(prepared.keyword, built[count:])))
            out, aux = split_aux(result, self.has_aux, self._fn_name())
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

        flat.__wrapped__ = self.fn  # the user's function, for what reads its module
        graph, structure = trace_function(flat, prepared.specs, builder)
        transform = self._signature_transform(prepared, layout)
        self._layouts[prepared.key] = layout
        return graph, structure, transform

    @functools.cached_property
    def _layouts(self) -> dict:
        return {}

    def _signature_transform(self, prepared: Prepared, layout: dict) -> Transform:
        if self.kind == "jit":
            return Transform("jit", out=layout.get("out"), fast_math=self.fast_math)
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
                         layout.get("out"), layout.get("aux"), fast_math=self.fast_math)

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

    # -- a VJP in two parts, and calls inside traced code (compose.py) ---------------------
    def split(self, args: tuple, kwargs: dict) -> tuple[Any, Any, Callable]:
        """Run the forward part once: (value, aux or None, pullback); the pullback runs only
        the backward part, on the saved residuals (sg.vjp)."""
        from .compose import split_call

        return split_call(self, args, kwargs)

    @functools.cached_property
    def _split_parts(self) -> dict:
        return {}


    def _call_traced(self, prepared: Prepared) -> Any:
        """Record this transform as a call in the graph being traced (see calls.py)."""
        from .compose import call_traced

        return call_traced(self, prepared)


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
        from ..api import Lowered

        if "dask.array" in sys.modules:
            from ..distributed.dask import has_dask, lower_with_dask

            if has_dask(args, kwargs):
                return lower_with_dask(self, args, kwargs)
        prepared = self._prepare(args, kwargs, specs_allowed=True)
        compiled = self._signatures.get(prepared.key) or self._compile(prepared)

        def details() -> dict:
            from ..backends.numpy.backend import generate_source

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
        from ..tools.explain import explain_miss

        prepared = self._prepare(args, kwargs, specs_allowed=True)
        return explain_miss(self.fn, prepared.specs, self.transform, self.backend,
                            DiskCache.shared(), in_memory=prepared.key in self._signatures,
                            trace=lambda at: self._trace(_at_specs(prepared, at)))









def _finish(kind: str, transform: Transform, out_tree: TreeDef | None,
            aux_tree: TreeDef | None, trees: list[TreeDef], result: Any) -> Any:
    def value(v: Any) -> Any:
        return v if out_tree is None else out_tree.from_nested(v)

    def aux(a: Any) -> Any:
        return aux_tree.from_nested(a)

    def grads(g: Any) -> Any:
        if g is None:  # sg.vjp's forward part: the gradients come later, from the pullback
            return None
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




def _plain(tree: TreeDef) -> bool:
    """Tuples, lists and leaves: what generated code returns as it is."""
    return tree.is_leaf or (tree.kind in ("tuple", "list")
                            and all(_plain(c) for c in tree.children))


def _describe(value: Any) -> str:
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    if isinstance(value, Tracer):
        return f"one array ({value.dtype}{list(value.shape)})"
    return f"a {type(value).__name__}"


def split_aux(result: Any, has_aux: bool, name: str) -> tuple[Any, Any]:
    """(output, aux) of a function's result: with `has_aux`, the pair it must return (else one
    clear error naming the function and the user's line); without, (result, None)."""
    if not has_aux:
        return result, None
    if not (isinstance(result, tuple) and len(result) == 2):
        raise ArgumentError(f"{name}: has_aux=True needs the function to return a pair "
                            f"(output, aux); it returned {_describe(result)}{at_user_line()}")
    return result


_MEMO: OrderedDict[tuple, CompiledFunction] = OrderedDict()
_MEMO_LOCK = threading.Lock()


def compiled_for(fn: Callable, kind: str, wrt: Any, backend: str, has_aux: bool = False,
                 fast_math: bool = False) -> CompiledFunction:
    """One CompiledFunction per (function, transform), so that repeated `sg.vjp(f, x)` calls
    reuse its compiled signatures instead of tracing again."""
    try:
        key = (fn, kind, repr(wrt), backend, has_aux, fast_math)
        hash(key)
    except TypeError:
        return CompiledFunction(fn, kind, wrt, backend, has_aux=has_aux, fast_math=fast_math)
    with _MEMO_LOCK:
        found = _MEMO.get(key)
        if found is None:
            found = _MEMO[key] = CompiledFunction(fn, kind, wrt, backend, has_aux=has_aux,
                                                  fast_math=fast_math)
            while len(_MEMO) > 256:
                _MEMO.popitem(last=False)
        return found
