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
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .transforms.compiled import CompiledFunction, Wrt, at_user_line, compiled_for, resolve_wrt
from .errors import ArgumentError
from .ir.graph import Graph
from .transforms.jacobians import hessian, jacfwd, jacobian, jacrev
from .pytree import tree_flatten
from .trace.tracer import Tracer

if TYPE_CHECKING:
    from .tools.picture import PictureGraph

__all__ = ["CompiledFunction", "Lowered", "grad", "value_and_grad", "jit", "vjp", "jvp", "hvp",
           "jacfwd", "jacrev", "jacobian", "hessian", "stop_gradient"]


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
        from .tools.picture import picture_graph  # the graph also draws itself (.to_dot(), .to_svg())

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
        from .tools.picture import picture_graph

        outputs = Graph(self.graph.inputs, tuple(self.details["outputs"]))
        return picture_graph(outputs, self.differentiated, forward=self.graph,
                             title="forward and backward")

    def _repr_html_(self) -> str:
        from .tools.display import lowered_html

        return lowered_html(self)

    def _repr_latex_(self) -> str:
        from .tools.display import lowered_latex

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


def _decorator(make: Callable[..., Any], name: str) -> Callable:
    """`sg.name(f, ...)`, `@sg.name` and `@sg.name(wrt=...)` alike."""
    def transform(fn: Callable | None = None, wrt: Wrt | None = None, *, argnums: Any = None,
                  has_aux: bool = False, static_argnums: Any = (), static_argnames: Any = (),
                  backend: str = "numpy", fast_math: bool = False) -> Any:
        if fn is not None and not callable(fn):
            raise ArgumentError(f"symgrad.{name}: pass the function first, or use "
                                f"@symgrad.{name}(wrt=...) as a decorator")
        chosen = resolve_wrt(wrt, argnums, None)
        static = {"static_argnums": static_argnums, "static_argnames": static_argnames,
                  "fast_math": fast_math}
        if fn is None:
            return lambda f: make(f, chosen, has_aux, backend, **static)
        return make(fn, chosen, has_aux, backend, **static)

    transform.__name__ = transform.__qualname__ = name
    return transform


grad = _decorator(lambda f, w, aux, b, **static: CompiledFunction(
    f, "grad", w, b, has_aux=aux, **static), "grad")
grad.__doc__ = """The gradient of a scalar function (`jax.grad`, PyTorch's `.backward()`).

Arguments: `fn` (a numpy function returning one scalar); `wrt` (parameter names or positions;
default the first parameter) or `argnums=` (JAX's spelling); `has_aux` (the function returns
`(value, aux)`); `static_argnums` / `static_argnames` (arguments baked into the code, each
value its own compilation: shapes, loop counts; other Python ints and floats are traced as
weakly typed 0-d values, one compilation for every value, as in JAX; bools and strings are
always static); `backend` ("numpy", "c", "cuda" or "auto"); `fast_math` (False: speed over
exactness, unsafe algebraic folds such as x - x -> 0 and 0*x -> 0, wrong at NaN and inf, and
the C compiler's fast math; in the cache key and the generated file's header). Returns a
compiled function taking `fn`'s arguments; it returns one gradient shaped like the parameter
for a single `wrt`, a tuple for a tuple, a pytree (dict, list, namedtuple, dataclass) for a
pytree argument, and `(gradient, aux)` with `has_aux`. Composes with every transform:
`sg.grad(sg.grad(f))` is the second derivative.

Example::

    import numpy as np
    import symgrad as sg

    def f(x, w):
        return np.sum(np.tanh(x @ w))

    x, w = np.ones((2, 3)), np.full((3, 4), 0.1)
    gw = sg.grad(f, wrt="w")(x, w)                       # shape (3, 4), like w
    assert np.allclose(gw, x.T @ (1 - np.tanh(x @ w) ** 2))
    assert np.isclose(sg.grad(sg.grad(np.sin))(0.5), -np.sin(0.5))
"""
value_and_grad = _decorator(
    lambda f, w, aux, b, **static: CompiledFunction(f, "value_and_grad", w, b, has_aux=aux,
                                                    **static),
    "value_and_grad")
value_and_grad.__doc__ = """Like `grad`, returning `(value, gradient)` from one computation
(`jax.value_and_grad`).

Arguments as `grad`. Returns a compiled function returning the scalar value and the gradient
(one array for a single `wrt`, a tuple for a tuple); with `has_aux=True`,
`((value, aux), gradient)`.

Example::

    import numpy as np
    import symgrad as sg

    def loss(params, x):
        return np.mean((x @ params["w"] + params["b"]) ** 2)

    params = {"w": np.full(3, 0.5), "b": np.zeros(())}
    value, g = sg.value_and_grad(loss)(params, np.ones((4, 3)))
    assert np.isclose(value, 2.25) and np.allclose(g["w"], 3.0) and np.isclose(g["b"], 3.0)
"""


def jit(fn: Callable | None = None, *, static_argnums: Any = (), static_argnames: Any = (),
        backend: str = "numpy", fast_math: bool = False) -> Any:
    """Compile the function's forward computation only (PyTorch's `no_grad` evaluation,
    `jax.jit`).

    Arguments: `fn`, `static_argnums` / `static_argnames`, `backend`, `fast_math` (as `grad`). Returns a
    compiled function with `fn`'s arguments and results.

    Example::

        import numpy as np
        import symgrad as sg

        forward = sg.jit(lambda x, w: np.maximum(x @ w, 0))
        assert np.array_equal(forward(np.ones((2, 3)), np.ones((3, 2))), np.full((2, 2), 3.0))
    """
    static = {"static_argnums": static_argnums, "static_argnames": static_argnames,
              "fast_math": fast_math}
    if fn is None:
        return lambda f: CompiledFunction(f, "jit", None, backend, **static)
    return CompiledFunction(fn, "jit", None, backend, **static)


def vjp(fn: Callable, *primals: Any, wrt: Wrt | None = None, argnums: Any = None,
        has_aux: bool = False, backend: str = "numpy", fast_math: bool = False) -> Any:
    """Vector-Jacobian product (`jax.vjp`, PyTorch's `out.backward(v)`).

    Arguments: `fn`, its arguments (`*primals`), `wrt`/`argnums` (default: every positional
    array argument, as a tuple), `has_aux`, `backend`, `fast_math` (as `grad`). Returns
    `(out, pullback)` (with
    `has_aux`: `(out, pullback, aux)`): the value, and a function of a cotangent shaped like
    the value (a tuple or pytree of them for several outputs) returning cotangent @ Jacobian,
    one array for a single `wrt`, a tuple for a tuple. The forward pass runs once; each
    `pullback(cotangent)` runs only the generated backward part (`pullback.lower()` shows
    both parts).

    Example::

        import numpy as np
        import symgrad as sg

        def squared_shifted(inp):
            return ((inp + 1) ** 2).T

        inp, v = np.eye(4, 5), np.ones((5, 4))
        out, pullback = sg.vjp(squared_shifted, inp, wrt="inp")
        assert out.shape == (5, 4) and np.array_equal(pullback(v), 2 * (inp + 1))
    """
    if not callable(fn):
        raise ArgumentError(f"symgrad.vjp: the first argument must be a function, got {fn!r}")
    if not primals:
        raise ArgumentError("symgrad.vjp takes the primal values, as jax.vjp does: "
                            "out, pullback = sg.vjp(f, *primals); grads = pullback(cotangent)")
    chosen = resolve_wrt(wrt, argnums, None)
    inner = compiled_for(fn, "vjp", chosen, backend, has_aux, fast_math)
    traced = any(isinstance(x, Tracer) for x in tree_flatten(primals)[0])
    if traced:  # inside another transform: the value and the pullback are calls in its graph
        value = compiled_for(fn, "jit", None, backend, fast_math=fast_math)(*primals)
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
                            f"needs the function to return a pair (output, aux){at_user_line()}")
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
                                f"output's {self.tree}{at_user_line()}")
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
        backend: str = "numpy", fast_math: bool = False) -> Any:
    """Jacobian-vector product in forward mode (`jax.jvp`, `torch.func.jvp`).

    Arguments: `fn`, `primals` and `tangents` (tuples of the same length and structure, a
    tangent for every primal; an integer or boolean primal takes `None`), `has_aux`,
    `backend`, `fast_math` (as `grad`). Returns `(out, tangent_out)`, `tangent_out` shaped like `out` (with
    `has_aux`: `(out, tangent_out, aux)`).

    Example::

        import numpy as np
        import symgrad as sg

        x, t = np.array([0.0, 1.0]), np.array([1.0, 2.0])
        out, tangent = sg.jvp(np.sin, (x,), (t,))
        assert np.allclose(tangent, np.cos(x) * t)
    """
    if not callable(fn):
        raise ArgumentError(f"symgrad.jvp: the first argument must be a function, got {fn!r}")
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise ArgumentError("jvp takes primals and tangents as tuples: "
                            "sg.jvp(f, (x, y), (tx, ty))")
    if len(primals) != len(tangents):
        raise ArgumentError(f"jvp: {len(primals)} primals but {len(tangents)} tangents"
                            f"{at_user_line()}")
    positions = tuple(i for i, t in enumerate(tangents) if t is not None)
    for i in positions:
        if tree_flatten(primals[i])[1] != tree_flatten(tangents[i])[1]:
            raise ArgumentError(f"jvp: the tangent of argument {i} has structure "
                                f"{tree_flatten(tangents[i])[1]}, its primal "
                                f"{tree_flatten(primals[i])[1]}{at_user_line()}")
    if not positions:
        value = compiled_for(fn, "jit", None, backend, fast_math=fast_math)(*primals)
        return value, _zeros_like_tree(value[0] if has_aux else value), *(
            (value[1],) if has_aux else ())
    wrt = positions[0] if len(positions) == 1 else positions
    inner = compiled_for(fn, "jvp", wrt, backend, has_aux, fast_math)
    return inner(*primals, *[tangents[i] for i in positions])


def _zeros_like_tree(value: Any) -> Any:
    leaves, tree = tree_flatten(value)
    return tree.unflatten([np.zeros_like(x) for x in leaves])


def hvp(fn: Callable | None = None, wrt: Wrt | None = None, *, argnums: Any = None,
        backend: str = "numpy", fast_math: bool = False) -> Any:
    """Hessian-vector product without forming the Hessian (one reverse pass over the
    gradient's graph).

    Arguments: `fn` (returns one scalar), `wrt`/`argnums` (default the first parameter),
    `backend`, `fast_math` (as `grad`). Returns a function `(*args, v)` returning H @ v, shaped like the `wrt` argument
    (a tuple `v` and a tuple result for several).

    Example::

        import numpy as np
        import symgrad as sg

        x, v = np.array([0.5, -1.0]), np.array([1.0, 1.0])
        assert np.allclose(sg.hvp(lambda x: np.sum(x ** 3))(x, v), 6 * x * v)
    """
    chosen = resolve_wrt(wrt, argnums, None)

    def make(f: Callable) -> Callable:
        inner = CompiledFunction(f, "hvp", chosen, backend, fast_math=fast_math)

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
        from .trace.numpy_api import stop_gradient as traced_stop_gradient

        return traced_stop_gradient(x)
    if getattr(type(x), "_symgrad_complex", False):  # a traced complex value: both parts
        from .trace.complex import partwise
        from .trace.numpy_api import stop_gradient as traced_stop_gradient

        return partwise(traced_stop_gradient)(x)
    return x


