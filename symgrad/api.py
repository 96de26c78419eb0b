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
from typing import TYPE_CHECKING, Any, Callable, Sequence, Union

import numpy as np

from .cache import DiskCache
from .compiler import (Compiled, Transform, compile_function, generate_source, signature_text,
                       tangent_names)
from .errors import ArgumentError
from .graph import Graph
from .specs import Spec, looks_like_spec, parse_spec
from .trace import ArgSpec, Tracer

if TYPE_CHECKING:
    from .picture import PictureGraph

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

    def _repr_html_(self) -> str:
        from .display import compiled_html

        return compiled_html(self)

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
        static values). Returns a `Lowered`; in a notebook it displays as the source, the
        math and the graph's picture.

        Example::

            import numpy as np
            import symgrad as sg

            low = sg.grad(lambda x: np.sum(np.exp(x)), wrt="x").lower("f64[3]")
            assert "np.exp(x)" in low.source and "x_bar" in low.math()
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
                       _details=compiled.details or None, _make_details=details,
                       differentiated=tuple(self.params[p] for p in self.transform.wrt))

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

    `.source` (the generated module), `.path` (its file in the cache), `.graph` (the traced
    graph: `print(low.graph)` one line a node, `low.graph.to_svg()` / `.to_png()` /
    `.to_dot()` a picture), `.signature`, `.function` (the generated function) come from the
    compilation itself (a warm cache answers them without SymPy); the derivative's math,
    rewrites, op counts and backward graph are derived again on first use when the entry came
    from the disk cache. In a notebook it displays as the highlighted source, the math typeset
    and the graph's picture.
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
    differentiated: tuple[str, ...] = ()  # the parameters in wrt

    def __post_init__(self) -> None:
        from .picture import picture_graph  # the graph also draws itself (.to_dot(), .to_svg())

        self.graph = picture_graph(self.graph, self.differentiated, title="forward")

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
    def derivative_graph(self) -> "PictureGraph":
        """The traced forward graph extended by the backward pass (`str()`: its text;
        `.to_dot()`, `.to_svg()`, `.to_png()`: its picture, the backward pass drawn apart)."""
        from .picture import picture_graph

        outputs = Graph(self.graph.inputs, tuple(self.details["outputs"]))
        return picture_graph(outputs, self.differentiated, forward=self.graph,
                             title="forward and backward")

    def _repr_html_(self) -> str:
        from .display import lowered_html

        return lowered_html(self)

    def _repr_latex_(self) -> str:
        from .display import lowered_latex

        return lowered_latex(self)

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
parameter).

Arguments: `fn` (a numpy function returning one scalar), `wrt` (a parameter name or position,
or a tuple of them), `backend` ("numpy"). Returns a compiled function taking `fn`'s arguments;
it returns one array shaped like the parameter for a single `wrt`, a tuple of such arrays for
a tuple.

Example::

    import numpy as np
    import symgrad as sg

    def f(x, w):
        return np.sum(np.tanh(x @ w))

    x, w = np.ones((2, 3)), np.full((3, 4), 0.1)
    gw = sg.grad(f, wrt="w")(x, w)                       # shape (3, 4), like w
    assert np.allclose(gw, x.T @ (1 - np.tanh(x @ w) ** 2))
"""
value_and_grad = _transform("value_and_grad")
value_and_grad.__doc__ = """Like `grad`, returning `(value, gradient)` from one computation.

Arguments as `grad`. Returns a compiled function returning the scalar value and the gradient
(one array for a single `wrt`, a tuple for a tuple).

Example::

    import numpy as np
    import symgrad as sg

    def loss(x, w, b):
        return np.mean((x @ w + b) ** 2)

    x, w, b = np.ones((4, 3)), np.full(3, 0.5), np.zeros(())
    value, (gw, gb) = sg.value_and_grad(loss, wrt=("w", "b"))(x, w, b)
    assert np.isclose(value, 2.25) and np.allclose(gw, 3.0) and np.isclose(gb, 3.0)
"""
vjp = _transform("vjp")
vjp.__doc__ = """Vector-Jacobian product (PyTorch's `out.backward(v)`, `jax.vjp`).

Arguments as `grad`; `fn` returns one array of any shape. The compiled function takes `fn`'s
arguments and then a `cotangent` shaped like the output, and returns `(value, vjp)`: the
output and `cotangent @ d output / d wrt`, shaped like the parameter (a tuple for a tuple).

Example::

    import numpy as np
    import symgrad as sg

    def squared_shifted(inp):
        return ((inp + 1) ** 2).T

    inp, v = np.eye(4, 5), np.ones((5, 4))
    out, inp_bar = sg.vjp(squared_shifted, wrt="inp")(inp, v)
    assert out.shape == (5, 4) and np.array_equal(inp_bar, 2 * (inp + 1))
"""


def jit(fn: Callable | None = None, *, backend: str = "numpy") -> Any:
    """Compile the function's forward computation only (PyTorch's `no_grad` evaluation).

    Arguments: `fn`, `backend`. Returns a compiled function with `fn`'s arguments and results.

    Example::

        import numpy as np
        import symgrad as sg

        forward = sg.jit(lambda x, w: np.maximum(x @ w, 0))
        assert np.array_equal(forward(np.ones((2, 3)), np.ones((3, 2))), np.full((2, 2), 3.0))
    """
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
    """The full Jacobian d output / d wrt.

    Arguments as `grad`; `fn` returns one array. Returns a compiled function returning an
    array of shape `output.shape + wrt.shape` (a tuple of them for several `wrt`).

    Example::

        import numpy as np
        import symgrad as sg

        x = np.array([1.0, 2.0, 3.0])
        J = sg.jacobian(lambda x: np.sin(x) * 2, wrt="x")(x)
        assert J.shape == (3, 3) and np.allclose(J, np.diag(2 * np.cos(x)))
    """
    if fn is None:
        return lambda f: _Jacobian(f, wrt, backend, hessian=False)
    return _Jacobian(fn, wrt, backend, hessian=False)


def hessian(fn: Callable | None = None, wrt: Wrt | None = None, *,
            backend: str = "numpy") -> Any:
    """Second derivatives of a scalar function, by differentiating the gradient graph again
    (reverse over reverse).

    Arguments as `grad`. Returns a compiled function returning an array of shape
    `wrt.shape + wrt.shape` (for several `wrt`, a tuple of tuples of blocks).

    Example::

        import numpy as np
        import symgrad as sg

        x = np.array([0.5, -1.0])
        H = sg.hessian(lambda x: np.sum(x ** 3), wrt="x")(x)
        assert np.allclose(H, np.diag(6 * x))
    """
    if fn is None:
        return lambda f: _Jacobian(f, wrt, backend, hessian=True)
    return _Jacobian(fn, wrt, backend, hessian=True)


def stop_gradient(x: Any) -> Any:
    """The value of `x`, through which no gradient flows (PyTorch's `detach`,
    `jax.lax.stop_gradient`). Use it inside a traced function; returns an array like `x`.

    Example::

        import numpy as np
        import symgrad as sg

        def f(z):
            return np.sum(z * sg.stop_gradient(z))       # d/dz = z, not 2 z

        z = np.array([1.0, -2.0])
        assert np.array_equal(sg.grad(f)(z), z)
    """
    if isinstance(x, Tracer):
        from .numpy_frontend import stop_gradient as traced_stop_gradient

        return traced_stop_gradient(x)
    return x
