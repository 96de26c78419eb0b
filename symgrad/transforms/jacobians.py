"""Full Jacobians and Hessians, one compiled product applied to each basis vector.

`jacrev` applies one compiled VJP to each basis cotangent (a row a call), `jacfwd` one
compiled JVP to each basis tangent (a column a call), `jacobian` picks the cheaper side, and
`hessian` applies one compiled Hessian-vector product (reverse over reverse) to each basis
tangent. On traced values (inside another transform) the same loop records calls, and the
rows are stacked in the graph. Results take JAX's shapes: `out.shape + wrt.shape` per
(output leaf, wrt leaf), nested as the output's structure of the wrt arguments' structure.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from .compiled import (CompiledFunction, Wrt, at_user_line, compiled_for, resolve_wrt,
                       split_aux)
from ..errors import ArgumentError
from ..pytree import tree_flatten
from ..trace.tracer import Tracer


def _stack(pieces: list, shape: tuple[int, ...], axis_last: bool) -> Any:
    """Pieces (arrays or traced values) stacked into `shape`: rows first, or columns last."""
    stacked = np.stack(pieces, axis=-1 if axis_last else 0).reshape(shape)
    if shape == () and isinstance(stacked, np.ndarray):
        return stacked[()]  # a scalar's derivative is a numpy scalar, as sg.grad gives it
    return stacked


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def _dtype(x: Any) -> Any:
    return x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype


def _one_hot(shape: tuple[int, ...], dtype: Any, k: int) -> np.ndarray:
    basis = np.zeros(shape, dtype)
    basis.reshape(-1)[k] = 1
    return basis


class _Jacobian:
    """`jacrev`, `jacfwd`, `jacobian` (mode 'auto') or `hessian` of a function."""

    def __init__(self, fn: Callable, wrt: Wrt | None, has_aux: bool, backend: str, mode: str,
                 fast_math: bool = False):
        if not callable(fn):
            raise ArgumentError(f"expected a function, got {fn!r}")
        self.fn, self.wrt, self.has_aux, self.backend, self.mode = fn, wrt, has_aux, backend, mode
        self.forward = compiled_for(fn, "jit", None, backend, fast_math=fast_math)
        kinds = {"rev": ("vjp",), "fwd": ("jvp",), "auto": ("vjp", "jvp"), "hessian": ("hvp",)}
        wrt = 0 if wrt is None else wrt
        self.products = {k: compiled_for(fn, k, wrt, backend, has_aux, fast_math)
                         for k in kinds[mode]}
        functools.update_wrapper(self, fn, updated=())

    @property
    def inner(self) -> CompiledFunction:
        """The compiled product applied to each basis vector (its `.lower()` shows it)."""
        return next(iter(self.products.values()))

    def __repr__(self) -> str:
        kind = {"rev": "jacrev", "fwd": "jacfwd", "auto": "jacobian"}.get(self.mode, self.mode)
        return f"<symgrad {kind} of {getattr(self.fn, '__name__', self.fn)}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        value, aux = split_aux(self.forward(*args, **kwargs), self.has_aux,
                               getattr(self.fn, "__name__", "the function"))
        product = next(iter(self.products.values()))
        wrt_leaves, wrt_tree = self._wrt_leaves(product, args, kwargs)
        out_leaves, out_tree = tree_flatten(value)
        mode = self.mode
        if mode == "auto":
            ins = sum(int(np.prod(x.shape)) for x in wrt_leaves)
            outs = sum(int(np.prod(_shape(x))) for x in out_leaves)
            mode = "fwd" if ins < outs else "rev"
        if mode == "hessian":
            if len(out_leaves) != 1 or _shape(out_leaves[0]) != ():
                raise ArgumentError("hessian needs a function that returns one scalar; this "
                                    f"one returns shapes {[list(_shape(x)) for x in out_leaves]}"
                                    f"{at_user_line()}")
            blocks = self._columns(self.products["hvp"], args, kwargs, wrt_leaves, wrt_tree,
                                   [x for x in wrt_leaves])
            result = wrt_tree.unflatten([wrt_tree.unflatten(row) for row in blocks])
        elif mode == "fwd":
            blocks = self._columns(self.products["jvp"], args, kwargs, wrt_leaves, wrt_tree,
                                   out_leaves)
            result = out_tree.unflatten([wrt_tree.unflatten(row) for row in blocks])
        else:
            blocks = self._rows(self.products["vjp"], args, kwargs, wrt_leaves, out_leaves,
                                out_tree)
            result = out_tree.unflatten([wrt_tree.unflatten(row) for row in blocks])
        return (result, aux) if self.has_aux else result

    @staticmethod
    def _wrt_leaves(product: CompiledFunction, args: tuple, kwargs: dict) -> tuple[list, Any]:
        """The differentiated arguments' leaves (as arrays or traced values) and structure."""
        positional, keyword, _ = product._bind(args + (None,) * len(product.extra_params),
                                               dict(kwargs))
        slots = positional + keyword
        chosen = [slots[s][1] for s in product._wrt_slots(len(positional), [n for n, _ in keyword])]
        value = chosen[0] if product.single else tuple(chosen)
        leaves, tree = tree_flatten(value)
        leaves = [x if isinstance(x, Tracer) else np.asarray(x, dtype=float)
                  if isinstance(x, (int, float)) else np.asarray(x) for x in leaves]
        return leaves, tree

    @staticmethod
    def _rows(vjp: CompiledFunction, args: tuple, kwargs: dict, wrt_leaves: list,
              out_leaves: list, out_tree: Any) -> list[list]:
        """Block (i, j) of the Jacobian from one VJP per element of output leaf i."""
        blocks = []
        for i, out in enumerate(out_leaves):
            shape, dtype = _shape(out), _dtype(out)
            rows = []
            for k in range(int(np.prod(shape))):
                cotangents = [_one_hot(_shape(o), _dtype(o), k) if n == i
                              else np.zeros(_shape(o), _dtype(o))
                              for n, o in enumerate(out_leaves)]
                grads = vjp(*args, out_tree.unflatten(cotangents), **kwargs)[1]
                rows.append(tree_flatten(grads)[0])
            blocks.append([_stack([r[j] for r in rows], tuple(shape) + tuple(x.shape), False)
                           if rows else np.zeros(tuple(shape) + tuple(x.shape), dtype)
                           for j, x in enumerate(wrt_leaves)])
        return blocks

    @staticmethod
    def _columns(product: CompiledFunction, args: tuple, kwargs: dict, wrt_leaves: list,
                 wrt_tree: Any, out_leaves: list) -> list[list]:
        """Block (i, j) from one JVP (or HVP) per element of wrt leaf j: a column a call."""
        columns: list[list] = [[None] * len(wrt_leaves) for _ in out_leaves]
        for j, x in enumerate(wrt_leaves):
            pieces = []
            for k in range(int(np.prod(x.shape))):
                tangents = [_one_hot(y.shape, y.dtype, k) if n == j else np.zeros(y.shape, y.dtype)
                            for n, y in enumerate(wrt_leaves)]
                tangent = wrt_tree.unflatten(tangents)
                extra = (tangent,) if product.single else tuple(tangent)
                result = product(*args, *extra, **kwargs)
                if product.kind == "jvp":
                    result = result[1]
                pieces.append(tree_flatten(result)[0])
            for i, out in enumerate(out_leaves):
                shape = tuple(_shape(out)) + tuple(x.shape)
                columns[i][j] = (_stack([p[i] for p in pieces], shape, True) if pieces
                                 else np.zeros(shape, _dtype(out)))
        return columns


def _jacobian_transform(mode: str, doc: str) -> Callable:
    def transform(fn: Callable | None = None, wrt: Wrt | None = None, *, argnums: Any = None,
                  has_aux: bool = False, backend: str = "numpy", fast_math: bool = False) -> Any:
        chosen = resolve_wrt(wrt, argnums, None)
        if fn is None:
            return lambda f: _Jacobian(f, chosen, has_aux, backend, mode, fast_math)
        if not callable(fn):
            raise ArgumentError(f"symgrad.{transform.__name__}: pass the function first")
        return _Jacobian(fn, chosen, has_aux, backend, mode, fast_math)

    transform.__name__ = transform.__qualname__ = {"rev": "jacrev", "fwd": "jacfwd",
                                                   "auto": "jacobian"}.get(mode, mode)
    transform.__doc__ = doc
    return transform


jacrev = _jacobian_transform("rev", """The Jacobian d output / d wrt by reverse mode, one
VJP per output element (`jax.jacrev`).

Arguments: `fn`, `wrt`/`argnums` (default the first parameter), `has_aux`, `backend`,
`fast_math` (as `grad`). Returns
a function returning an array of shape `output.shape + wrt.shape` (a tuple for several
`wrt`, nested like the output's and the arguments' pytrees); `(jacobian, aux)` with `has_aux`.

Example::

    import numpy as np
    import symgrad as sg

    x = np.array([1.0, 2.0, 3.0])
    J = sg.jacrev(lambda x: np.sin(x) * 2)(x)
    assert J.shape == (3, 3) and np.allclose(J, np.diag(2 * np.cos(x)))
""")
jacfwd = _jacobian_transform("fwd", """The Jacobian by forward mode, one JVP per input element
(`jax.jacfwd`); arguments and returns as `jacrev`.

Example::

    import numpy as np
    import symgrad as sg

    w = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    J = sg.jacfwd(lambda x: np.tanh(x @ w))(np.zeros(3))
    assert J.shape == (2, 3) and np.allclose(J, w.T)
""")
jacobian = _jacobian_transform("auto", """The full Jacobian d output / d wrt: forward mode when
the differentiated inputs are smaller than the output, reverse mode otherwise.

Arguments and returns as `jacrev`: an array of shape `output.shape + wrt.shape` (a tuple of
them for several `wrt`).

Example::

    import numpy as np
    import symgrad as sg

    x = np.array([1.0, 2.0, 3.0])
    J = sg.jacobian(lambda x: np.sin(x) * 2, wrt="x")(x)
    assert J.shape == (3, 3) and np.allclose(J, np.diag(2 * np.cos(x)))
""")
hessian = _jacobian_transform("hessian", """Second derivatives of a scalar function
(`jax.hessian`), from one compiled Hessian-vector product (reverse over reverse) per element
of `wrt`.

Arguments as `grad`. Returns a function returning an array of shape `wrt.shape + wrt.shape`
(for several `wrt`, a tuple of tuples of blocks; for a pytree, nested like it twice).

Example::

    import numpy as np
    import symgrad as sg

    x = np.array([0.5, -1.0])
    H = sg.hessian(lambda x: np.sum(x ** 3), wrt="x")(x)
    assert np.allclose(H, np.diag(6 * x))
""")
