"""The public transforms: jit, grad, value_and_grad, vjp, jacobian, hessian, stop_gradient.

Each is usable as `sg.grad(f, wrt="w")`, as a bare decorator `@sg.grad`, and as a decorator with
options `@sg.grad(wrt=("w", "b"))`. A compiled function keeps one generated function per call
signature (shapes, dtypes, static values) in memory and on disk.
"""
from __future__ import annotations

import functools
import inspect
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, Union

import numpy as np

from .cache import DiskCache
from .compiler import (Compiled, Transform, compile_function, generate_source, signature_text,
                       tangent_names)
from .errors import ArgumentError
from .graph import Graph
from .specs import Spec, looks_like_spec, parse_spec
from .trace import ArgSpec, Tracer

Wrt = Union[int, str, Sequence[Union[int, str]]]

MAX_SIGNATURES = 64  # per compiled function; the oldest signature is dropped first
_ndarray = np.ndarray


def _defaults(fn: Callable) -> dict[str, Any]:
    """Default values of the function's parameters (used like passed arguments)."""
    return {p.name: p.default for p in inspect.signature(fn).parameters.values()
            if p.default is not inspect.Parameter.empty}


def _parameters(fn: Callable) -> list[str]:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        raise ArgumentError(f"cannot read the parameters of {fn!r}") from None
    names = []
    for p in signature.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ArgumentError(f"{getattr(fn, '__name__', fn)}: *args and **kwargs parameters "
                                "are not supported; name each array parameter")
        names.append(p.name)
    return names


def _resolve_wrt(fn: Callable, params: list[str], wrt: Wrt) -> tuple[tuple[int, ...], bool]:
    single = isinstance(wrt, (int, str))
    items = [wrt] if single else list(wrt)
    if not items:
        raise ArgumentError("wrt names no parameter")
    positions = []
    for item in items:
        if isinstance(item, str):
            if item not in params:
                raise ArgumentError(f"wrt={item!r} names no parameter of "
                                    f"{getattr(fn, '__name__', 'the function')}"
                                    f"({', '.join(params)})")
            positions.append(params.index(item))
        elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if not -len(params) <= item < len(params):
                raise ArgumentError(f"wrt={item} is out of range for "
                                    f"{len(params)} parameters ({', '.join(params)})")
            positions.append(int(item) % len(params))
        else:
            raise ArgumentError(f"wrt entries are parameter names or positions, not {item!r}")
    if len(set(positions)) != len(positions):
        raise ArgumentError(f"wrt={wrt!r} names a parameter twice")
    return tuple(positions), single


class CompiledFunction:
    """A user function under a transform, compiled once per call signature."""

    def __init__(self, fn: Callable, kind: str, wrt: Wrt | None = None, backend: str = "numpy",
                 order: int = 1):
        if not callable(fn):
            raise ArgumentError(f"expected a function, got {fn!r}")
        if backend != "numpy":
            raise ArgumentError(f"backend={backend!r} is not available (backends: 'numpy')")
        self.fn = fn
        self.params = _parameters(fn)
        self.defaults = _defaults(fn)
        if kind == "jit":
            self.transform = Transform("jit")
        else:
            positions, single = _resolve_wrt(fn, self.params, 0 if wrt is None else wrt)
            self.transform = Transform(kind, positions, single, order)
        self.backend = backend
        self.extra_params = ["cotangent"] if kind == "vjp" else (
            tangent_names(self.params, self.transform) if order == 2 else [])
        self._arity = len(self.params) + len(self.extra_params)
        # Signature -> compiled function, bounded (oldest first out). `_fast` holds the same
        # entries for calls whose arguments are all plain ndarrays, keyed by (shape, dtype)
        # alone: the common call costs one list comprehension and one dict lookup.
        self._signatures: OrderedDict[tuple, Compiled] = OrderedDict()
        self._fast: dict[tuple, Callable] = {}
        self._lock = threading.Lock()
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<symgrad {self.transform.kind} of {getattr(self.fn, '__name__', self.fn)}>"

    # -- the per-call path -------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs:
            function = self._fast.get(tuple([(a.shape, a.dtype) for a in args
                                             if type(a) is _ndarray]))
            if function is not None and len(args) == self._arity:
                return function(*args)
        if kwargs or len(args) != self._arity:
            args = self._bind(args, kwargs)
        key, call_args = self._signature(args)
        compiled = self._signatures.get(key)
        if compiled is None:
            compiled = self._compile(key, call_args)
        elif key not in self._fast and all(type(a) is _ndarray for a in call_args):
            self._fast[key] = compiled.function  # compiled by .lower() from specs
        return compiled.function(*call_args)

    def _bind(self, args: tuple, kwargs: dict) -> tuple:
        names = self.params + self.extra_params
        if len(args) > len(names):
            raise ArgumentError(f"{self!r} takes {len(names)} arguments ({', '.join(names)}), "
                                f"got {len(args)}")
        bound = dict(zip(names, args))
        for name, value in kwargs.items():
            if name not in names:
                raise ArgumentError(f"{self!r} has no parameter {name!r}")
            if name in bound:
                raise ArgumentError(f"{self!r} got two values for {name!r}")
            bound[name] = value
        for name, default in self.defaults.items():
            bound.setdefault(name, default)
        missing = [n for n in names if n not in bound]
        if missing:
            raise ArgumentError(f"{self!r} is missing arguments: {', '.join(missing)}")
        return tuple(bound[n] for n in names)

    def _signature(self, args: tuple, specs_allowed: bool = False) -> tuple[tuple, tuple]:
        key = []
        converted = None
        for position, value in enumerate(args):
            if type(value) is np.ndarray:
                key.append((value.shape, value.dtype))
                continue
            if isinstance(value, str) and specs_allowed and looks_like_spec(value):
                value = parse_spec(value)
            if isinstance(value, Spec):
                if not specs_allowed:
                    raise ArgumentError(f"argument {self._name(position)!r} is a spec "
                                        f"({value}): specs describe arguments for .lower() "
                                        "and explain_miss(); calls need arrays")
                if converted is None:
                    converted = list(args)
                converted[position] = value
                key.append((value.shape, np.dtype(value.dtype)))
                continue
            array = self._as_argument(position, value)
            if array is None:
                # repr, not the value: -0.0 == 0.0 and nan != nan, yet each is its own program
                key.append(("static", type(value).__name__, repr(value)))
                continue
            if converted is None:
                converted = list(args)
            converted[position] = array
            key.append((array.shape, array.dtype))
        return tuple(key), args if converted is None else tuple(converted)

    def _as_argument(self, position: int, value: Any) -> np.ndarray | None:
        """Arrays for traced arguments; None for static ones (Python numbers not in wrt)."""
        if isinstance(value, Tracer):
            raise ArgumentError("symgrad transforms cannot be nested inside a traced function")
        if isinstance(value, (bool, int, float)) and position not in self.transform.wrt \
                and position < len(self.params):
            return None
        if isinstance(value, (str, type(None))):
            return None
        if isinstance(value, np.ma.MaskedArray):
            raise ArgumentError(f"argument {self._name(position)!r} is a masked array: symgrad "
                                "would compute with the masked values; pass "
                                "x.filled(value) or x.compressed()")
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise ArgumentError(f"argument {self._name(position)!r}: arrays of dtype "
                                f"{array.dtype} are not supported")
        return array

    def _name(self, position: int) -> str:
        return (self.params + self.extra_params)[position]

    def _specs(self, call_args: tuple) -> list[ArgSpec]:
        specs = []
        for position, value in enumerate(call_args[:len(self.params)]):
            name = self.params[position]
            if isinstance(value, (np.ndarray, Spec)):
                specs.append(ArgSpec(name, tuple(value.shape), np.dtype(value.dtype).name))
            else:
                specs.append(ArgSpec(name, None, None, value))
        return specs

    def _compile(self, key: tuple, call_args: tuple) -> Compiled:
        """Compile (or load) once per signature, however many threads ask at the same time."""
        with self._lock:
            compiled = self._signatures.get(key)
            if compiled is not None:
                return compiled
            compiled = compile_function(self.fn, self._specs(call_args), self.transform,
                                        DiskCache.shared(), self.backend)
            self._signatures[key] = compiled
            if all(type(a) is np.ndarray for a in call_args):
                self._fast[key] = compiled.function
            while len(self._signatures) > MAX_SIGNATURES:
                old_key, _ = self._signatures.popitem(last=False)
                self._fast.pop(old_key, None)
            if len(self._fast) > len(self._signatures):  # a call raced an eviction
                self._fast = {k: f for k, f in self._fast.items() if k in self._signatures}
            return compiled

    # -- inspection --------------------------------------------------------------------------
    def lower(self, *args: Any, **kwargs: Any) -> "Lowered":
        """Compile for these arguments and show every stage: source, path, graphs, math.

        Arguments may be arrays, or specs with no data: `sg.spec("f64[5,3]")` or the string
        `"f64[5,3]"` (a string shaped like `name[...]` is read as a spec; other strings are
        static values).
        """
        call_args, key = self._prepare(args, kwargs)
        compiled = self._compile(key, call_args)
        specs = self._specs(call_args)

        def details() -> dict:
            from .trace import trace_function

            graph, structure = trace_function(self.fn, specs)
            return generate_source(self.fn, graph, structure, specs, self.transform,
                                   compiled.function.__name__, compiled.key)[1]

        return Lowered(source=compiled.source, path=compiled.path, graph=compiled.graph,
                       signature=signature_text(specs), function=compiled.function,
                       key=compiled.key, from_cache=compiled.from_cache,
                       _details=compiled.details or None, _make_details=details)

    def explain_miss(self, *args: Any, **kwargs: Any) -> str:
        """Why a call with these arguments (arrays or specs) would miss the disk cache: which
        key component differs from the nearest entry of this function, or that it hits."""
        from .explain import explain_miss

        call_args, key = self._prepare(args, kwargs)
        return explain_miss(self.fn, self._specs(call_args), self.transform, self.backend,
                            DiskCache.shared(), in_memory=key in self._signatures)

    def specs_for(self, *args: Any) -> list[ArgSpec]:
        """What tracing receives for these arguments (arrays, specs or static values)."""
        return self._specs(self._signature(tuple(args), specs_allowed=True)[1])

    def _prepare(self, args: tuple, kwargs: dict) -> tuple[tuple, tuple]:
        if kwargs or len(args) != self._arity:
            args = self._bind(args, kwargs)
        key, call_args = self._signature(args, specs_allowed=True)
        return call_args, key


@dataclass
class Lowered:
    """Everything a compilation produced, for reading.

    `.source`, `.path`, `.graph`, `.function` come from the compilation itself (a warm cache
    answers them without SymPy); the derivative's math, rewrites, op counts and backward graph
    are derived again on first use when the entry came from the disk cache.
    """

    source: str
    path: Path | None
    graph: Graph
    signature: str
    function: Callable | None = None  # the generated function itself
    key: str = ""
    from_cache: bool = False
    _details: dict | None = None
    _make_details: Callable[[], dict] | None = None

    @property
    def details(self) -> dict:
        if self._details is None and self._make_details is not None:
            self._details = self._make_details()
        return self._details or {}

    @property
    def rewrites(self) -> list[str]:
        """The stability rewrites (and kinks resolved by cases) that fired."""
        return self.details["program"].rewrites

    @property
    def op_counts(self) -> dict[str, int]:
        """SymPy operation counts of all expressions before and after CSE."""
        return self.details["program"].op_counts

    @property
    def derivative_graph(self) -> str:
        """The traced forward graph extended by the backward pass, as text."""
        outputs = self.details["outputs"]
        return Graph(self.graph.inputs, tuple(outputs)).pretty()

    def math(self, latex: bool = False) -> str:
        """Each statement of the generated code, as math (SymPy pretty print or LaTeX)."""
        return self.details["program"].as_math(latex=latex)

    def latex(self) -> str:
        """Each statement as LaTeX."""
        return self.math(latex=True)

    def pretty(self) -> str:
        """Each statement as SymPy's pretty-printed math (unicode)."""
        return self.math()

    def __str__(self) -> str:
        return self.source


def _transform(kind: str) -> Callable:
    def transform(fn: Callable | None = None, wrt: Wrt | None = None, *,
                  backend: str = "numpy") -> Any:
        if fn is None:
            return lambda f: CompiledFunction(f, kind, wrt, backend)
        if isinstance(fn, (str, int, tuple, list)) and wrt is None:
            raise ArgumentError(f"symgrad.{kind}: pass the function first, or use "
                                f"@symgrad.{kind}(wrt=...) as a decorator")
        return CompiledFunction(fn, kind, wrt, backend)

    transform.__name__ = kind
    return transform


grad = _transform("grad")
grad.__doc__ = """The gradient of a scalar function with respect to `wrt` (default: the first
parameter). A single name or position gives one array; a tuple gives a tuple."""
value_and_grad = _transform("value_and_grad")
value_and_grad.__doc__ = """Like `grad`, returning `(value, gradient)` from one computation."""
vjp = _transform("vjp")
vjp.__doc__ = """Vector-Jacobian product: the compiled function takes the arguments and then a
`cotangent` shaped like the output, and returns `(value, cotangent @ d output / d wrt)`."""


def jit(fn: Callable | None = None, *, backend: str = "numpy") -> Any:
    """Compile the function's forward computation only (PyTorch's `no_grad` evaluation)."""
    if fn is None:
        return lambda f: CompiledFunction(f, "jit", None, backend)
    return CompiledFunction(fn, "jit", None, backend)


class _Jacobian:
    """Full Jacobian from one compiled VJP, applied to each basis cotangent."""

    def __init__(self, fn: Callable, wrt: Wrt | None, backend: str, hessian: bool):
        kind, order = ("grad", 2) if hessian else ("vjp", 1)
        self.inner = CompiledFunction(fn, kind, wrt, backend, order=order)
        self.hessian = hessian
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any) -> Any:
        inner = self.inner
        n = len(inner.params)
        positions = inner.transform.wrt
        args = tuple(np.asarray(a) if i in positions else a for i, a in enumerate(args[:n]))
        if self.hessian:
            shapes = [(args[p].shape, args[p].dtype) for p in positions]
            blocks = [[None] * len(positions) for _ in positions]
            for j, (shape, dtype) in enumerate(shapes):
                columns = []
                for k in range(int(np.prod(shape))):
                    tangents = [np.zeros(s, d) for s, d in shapes]
                    tangents[j].reshape(-1)[k] = 1
                    result = inner(*args, *tangents)
                    columns.append(result if not inner.transform.single else (result,))
                for i, (shape_i, _) in enumerate(shapes):
                    stacked = np.stack([np.asarray(c[i]) for c in columns], axis=-1)
                    blocks[i][j] = stacked.reshape(shape_i + shape)
            if inner.transform.single:
                return blocks[0][0]
            return tuple(tuple(row) for row in blocks)
        value = CompiledFunction(inner.fn, "jit", None, inner.backend)(*args)
        value = np.asarray(value)
        rows = []
        for k in range(value.size):
            cotangent = np.zeros(value.shape, value.dtype)
            cotangent.reshape(-1)[k] = 1
            _, grads = inner(*args, cotangent)
            rows.append(grads if not inner.transform.single else (grads,))
        result = tuple(
            np.stack([np.asarray(r[i]) for r in rows]).reshape(value.shape + args[p].shape)
            for i, p in enumerate(positions))
        return result[0] if inner.transform.single else result


def jacobian(fn: Callable | None = None, wrt: Wrt | None = None, *,
             backend: str = "numpy") -> Any:
    """d output / d wrt, of shape output.shape + wrt.shape (a tuple for several wrt)."""
    if fn is None:
        return lambda f: _Jacobian(f, wrt, backend, hessian=False)
    return _Jacobian(fn, wrt, backend, hessian=False)


def hessian(fn: Callable | None = None, wrt: Wrt | None = None, *,
            backend: str = "numpy") -> Any:
    """Second derivatives of a scalar function: shape wrt.shape + wrt.shape (blocks for several
    wrt), by differentiating the generated gradient graph again (reverse over reverse)."""
    if fn is None:
        return lambda f: _Jacobian(f, wrt, backend, hessian=True)
    return _Jacobian(fn, wrt, backend, hessian=True)


def stop_gradient(x: Any) -> Any:
    """The value of `x`, through which no gradient flows (PyTorch's `detach`)."""
    if isinstance(x, Tracer):
        from .numpy_frontend import stop_gradient as traced_stop_gradient

        return traced_stop_gradient(x)
    return x
