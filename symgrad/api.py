"""The public transforms: jit, grad, value_and_grad, vjp, jvp, hvp, jacfwd, jacrev,
jacobian, hessian, stop_gradient -- JAX's signatures, each composable with any other.

`grad`, `value_and_grad`, `jit`, `hvp` and the Jacobians are usable as `sg.grad(f, wrt="w")`,
as a bare decorator `@sg.grad`, and as a decorator with options `@sg.grad(wrt=("w", "b"))`;
`vjp` and `jvp` take the primal values, as JAX's do. A compiled function keeps one generated
function per call signature (shapes, dtypes, static values, pytree structures) in memory and
on disk. Called inside a traced function, a transform becomes part of the outer graph
(`calls.py`): `sg.grad(sg.grad(f))` is one graph, differentiated twice and compiled once.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .compiled import CompiledFunction, Wrt, compiled_for, resolve_wrt
from .errors import ArgumentError
from .graph import Graph
from .jacobians import hessian, jacfwd, jacobian, jacrev
from .pytree import tree_flatten
from .trace import Tracer

__all__ = ["CompiledFunction", "Lowered", "grad", "value_and_grad", "jit", "vjp", "jvp", "hvp",
           "jacfwd", "jacrev", "jacobian", "hessian", "stop_gradient"]


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



def _decorator(make: Callable[..., Any], name: str) -> Callable:
    """`sg.name(f, ...)`, `@sg.name` and `@sg.name(wrt=...)` alike."""
    def transform(fn: Callable | None = None, wrt: Wrt | None = None, *, argnums: Any = None,
                  has_aux: bool = False, backend: str = "numpy") -> Any:
        if fn is not None and not callable(fn):
            raise ArgumentError(f"symgrad.{name}: pass the function first, or use "
                                f"@symgrad.{name}(wrt=...) as a decorator")
        chosen = resolve_wrt(wrt, argnums, None)
        if fn is None:
            return lambda f: make(f, chosen, has_aux, backend)
        return make(fn, chosen, has_aux, backend)

    transform.__name__ = transform.__qualname__ = name
    return transform


grad = _decorator(lambda f, w, aux, b: CompiledFunction(f, "grad", w, b, has_aux=aux), "grad")
grad.__doc__ = """The gradient of a scalar function with respect to `wrt` (names or positions;
`argnums=` is JAX's spelling; default: the first parameter). A single name or position gives
one result, a tuple gives a tuple; a pytree argument gives a gradient of the same structure.
`has_aux=True`: the function returns `(value, aux)` and the result is `(gradient, aux)`."""
value_and_grad = _decorator(
    lambda f, w, aux, b: CompiledFunction(f, "value_and_grad", w, b, has_aux=aux),
    "value_and_grad")
value_and_grad.__doc__ = """Like `grad`, returning `(value, gradient)` from one computation;
with `has_aux=True`, `((value, aux), gradient)`."""


def jit(fn: Callable | None = None, *, backend: str = "numpy") -> Any:
    """Compile the function's forward computation only (PyTorch's `no_grad` evaluation)."""
    if fn is None:
        return lambda f: CompiledFunction(f, "jit", None, backend)
    return CompiledFunction(fn, "jit", None, backend)


def vjp(fn: Callable, *primals: Any, wrt: Wrt | None = None, argnums: Any = None,
        has_aux: bool = False, backend: str = "numpy") -> Any:
    """`out, pullback = sg.vjp(f, *primals)`: the value, and a function of a cotangent shaped
    like the value (a pytree of them for a pytree output) returning cotangent @ Jacobian for
    each `wrt` argument (default: every positional array argument, as a tuple). With
    `has_aux=True`: `out, pullback, aux`. `pullback` can be called many times."""
    if not callable(fn):
        raise ArgumentError(f"symgrad.vjp: the first argument must be a function, got {fn!r}")
    if not primals:
        raise ArgumentError("symgrad.vjp takes the primal values, as jax.vjp does: "
                            "out, pullback = sg.vjp(f, *primals); grads = pullback(cotangent)")
    chosen = resolve_wrt(wrt, argnums, None)
    inner = compiled_for(fn, "vjp", chosen, backend, has_aux)
    traced = any(isinstance(x, Tracer) for x in tree_flatten(primals)[0])
    if traced:  # inside another transform: the value and the pullback are calls in its graph
        value = compiled_for(fn, "jit", None, backend)(*primals)
        aux = None
        if has_aux:
            value, aux = _pair(fn, value)
        pullback: Any = Pullback(inner, primals, value)
    else:
        value, aux, run = inner.split(primals, {})
        pullback = Pullback(inner, primals, value, run)
    return (value, pullback, aux) if has_aux else (value, pullback)


def _pair(fn: Callable, value: Any) -> tuple:
    if not (isinstance(value, tuple) and len(value) == 2):
        raise ArgumentError(f"{getattr(fn, '__name__', 'the function')}: has_aux=True "
                            "needs the function to return a pair (output, aux)")
    return value


class Pullback:
    """cotangent -> cotangent @ d out / d wrt, at fixed primals. The forward pass ran once,
    in `sg.vjp`; each call runs the backward part only, on the residuals it saved."""

    def __init__(self, compiled: CompiledFunction, primals: tuple, value: Any,
                 run: Callable | None = None):
        self.compiled, self.primals, self.run = compiled, primals, run
        self.tree = tree_flatten(value)[1]

    def __call__(self, cotangent: Any) -> Any:
        tree = tree_flatten(cotangent)[1]
        if tree != self.tree:
            raise ArgumentError(f"vjp: the cotangent's structure {tree} differs from the "
                                f"output's {self.tree}")
        if self.run is not None:
            return self.run(cotangent)
        return self.compiled(*self.primals, cotangent)[1]

    def lower(self) -> tuple[Lowered, Lowered]:
        """The generated forward part (value and residuals) and pullback, as `Lowered`s."""
        if self.run is None:
            raise ArgumentError("lower() is for a pullback made outside traced code")
        parts = self.run.lower()
        return tuple(Lowered(source=c.source, path=c.path, graph=c.graph,
                             signature=c.function.__name__, function=c.function, key=c.key,
                             from_cache=c.from_cache) for c in parts)

    def __repr__(self) -> str:
        return f"<pullback of {self.compiled!r}>"


def jvp(fn: Callable, primals: Any, tangents: Any, *, has_aux: bool = False,
        backend: str = "numpy") -> Any:
    """`out, tangent_out = sg.jvp(f, primals, tangents)`: the value and Jacobian @ tangents,
    in forward mode. `primals` and `tangents` are tuples of the same length and structure; an
    integer or boolean primal takes `None`. With `has_aux=True`: `out, tangent_out, aux`."""
    if not callable(fn):
        raise ArgumentError(f"symgrad.jvp: the first argument must be a function, got {fn!r}")
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise ArgumentError("jvp takes primals and tangents as tuples: "
                            "sg.jvp(f, (x, y), (tx, ty))")
    if len(primals) != len(tangents):
        raise ArgumentError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    positions = tuple(i for i, t in enumerate(tangents) if t is not None)
    for i in positions:
        if tree_flatten(primals[i])[1] != tree_flatten(tangents[i])[1]:
            raise ArgumentError(f"jvp: the tangent of argument {i} has structure "
                                f"{tree_flatten(tangents[i])[1]}, its primal "
                                f"{tree_flatten(primals[i])[1]}")
    if not positions:
        value = compiled_for(fn, "jit", None, backend)(*primals)
        return value, _zeros_like_tree(value[0] if has_aux else value), *(
            (value[1],) if has_aux else ())
    wrt = positions[0] if len(positions) == 1 else positions
    inner = compiled_for(fn, "jvp", wrt, backend, has_aux)
    return inner(*primals, *[tangents[i] for i in positions])


def _zeros_like_tree(value: Any) -> Any:
    leaves, tree = tree_flatten(value)
    return tree.unflatten([np.zeros_like(x) for x in leaves])


def hvp(fn: Callable | None = None, wrt: Wrt | None = None, *, argnums: Any = None,
        backend: str = "numpy") -> Any:
    """`sg.hvp(f, wrt=...)(*args, v)`: the Hessian of scalar `f` times `v`, shaped like the
    `wrt` argument (a tuple `v` and a tuple result for several), without forming the Hessian
    (one reverse pass over the gradient's graph)."""
    chosen = resolve_wrt(wrt, argnums, None)

    def make(f: Callable) -> Callable:
        inner = CompiledFunction(f, "hvp", chosen, backend)

        def product(*args: Any) -> Any:
            if not args:
                raise ArgumentError("hvp: call as hvp(f)(*args, v)")
            *primals, v = args
            if inner.single:
                return inner(*primals, v)
            if not isinstance(v, (tuple, list)) or len(v) != len(inner.extra_params):
                raise ArgumentError(f"hvp: v must be a tuple of {len(inner.extra_params)} "
                                    "arrays, one per wrt argument")
            return inner(*primals, *v)

        product.__name__ = f"{getattr(f, '__name__', 'f')}_hvp"
        product.lower = lambda *a: inner.lower(*a[:-1], *(a[-1] if not inner.single else a[-1:]))
        return product

    return make if fn is None else make(fn)


def stop_gradient(x: Any) -> Any:
    """The value of `x`, through which no gradient flows (PyTorch's `detach`)."""
    if isinstance(x, Tracer):
        from .numpy_frontend import stop_gradient as traced_stop_gradient

        return traced_stop_gradient(x)
    return x


