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
from .trace import ArgSpec, Tracer

Wrt = Union[int, str, Sequence[Union[int, str]]]

MAX_SIGNATURES = 64


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
        if kind == "jit":
            self.transform = Transform("jit")
        else:
            positions, single = _resolve_wrt(fn, self.params, 0 if wrt is None else wrt)
            self.transform = Transform(kind, positions, single, order)
        self.backend = backend
        self.extra_params = ["cotangent"] if kind == "vjp" else (
            tangent_names(self.params, self.transform) if order == 2 else [])
        self._signatures: OrderedDict[tuple, Compiled] = OrderedDict()
        self._lock = threading.Lock()
        self._disk: DiskCache | None = None
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<symgrad {self.transform.kind} of {getattr(self.fn, '__name__', self.fn)}>"

    # -- the per-call path -------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs or len(args) != len(self.params) + len(self.extra_params):
            args = self._bind(args, kwargs)
        key, call_args = self._signature(args)
        compiled = self._signatures.get(key)
        if compiled is None:
            compiled = self._compile(key, call_args)
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
        missing = [n for n in names if n not in bound]
        if missing:
            raise ArgumentError(f"{self!r} is missing arguments: {', '.join(missing)}")
        return tuple(bound[n] for n in names)

    def _signature(self, args: tuple) -> tuple[tuple, tuple]:
        key = []
        converted = None
        for position, value in enumerate(args):
            if type(value) is np.ndarray:
                key.append((value.shape, value.dtype.char))
                continue
            array = self._as_argument(position, value)
            if array is None:
                key.append(("static", type(value).__name__, value))
                continue
            if converted is None:
                converted = list(args)
            converted[position] = array
            key.append((array.shape, array.dtype.char))
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
            if isinstance(value, np.ndarray):
                specs.append(ArgSpec(name, value.shape, value.dtype.name))
            else:
                specs.append(ArgSpec(name, None, None, value))
        return specs

    def _compile(self, key: tuple, call_args: tuple) -> Compiled:
        with self._lock:
            compiled = self._signatures.get(key)
            if compiled is not None:
                return compiled
            if self._disk is None:
                self._disk = DiskCache()
            compiled = compile_function(self.fn, self._specs(call_args), self.transform,
                                        self._disk, self.backend)
            self._signatures[key] = compiled
            while len(self._signatures) > MAX_SIGNATURES:
                self._signatures.popitem(last=False)
            return compiled

    # -- inspection --------------------------------------------------------------------------
    def lower(self, *args: Any, **kwargs: Any) -> "Lowered":
        """Compile for these arguments and show every stage: source, path, graphs, math."""
        if kwargs or len(args) != len(self.params) + len(self.extra_params):
            args = self._bind(args, kwargs)
        key, call_args = self._signature(args)
        compiled = self._compile(key, call_args)
        specs = self._specs(call_args)
        graph, details = compiled.graph, compiled.details
        if not details:  # served from the disk cache: run the stages again to show them
            from .trace import trace_function

            graph, structure = trace_function(self.fn, specs)
            _, details = generate_source(self.fn, graph, structure, specs, self.transform,
                                         compiled.function.__name__, compiled.key)
        return Lowered(source=compiled.source, path=compiled.path, graph=graph,
                       signature=signature_text(specs), details=details)


@dataclass
class Lowered:
    """Everything a compilation produced, for reading."""

    source: str
    path: Path | None
    graph: Graph
    signature: str
    details: dict

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
        return self.math(latex=True)

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
