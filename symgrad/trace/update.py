"""In-place updates of arrays the traced function made, traced as functional updates (JAX's
`.at[...]` semantics, written the way numpy users write them):

    out = np.zeros(3); out[0] = w.sum()       y = x.copy(); y[0] += 1; y[mask] = 0
    np.add.at(acc, labels, v)                  np.put_along_axis(y, order, v, axis=1)

An update replaces the Tracer box's node by the updated array, so every name bound to the
box sees it, as with numpy. Overwritten elements get no gradient, accumulated ones do.

- Views: `row = y[i]` (basic indexing) is a view; an update through it writes through to
  `y`, and a view read after its base changed is refused (numpy would show the new values).
- Arguments are never modified (symgrad functions are pure): an update of one, or of a view
  of one, raises `MutationError` naming the line and suggesting `x = x.copy()`.
- Arrays made by np.zeros/np.ones/... are numpy constants (frontend_creation.py); the first
  update with a traced value makes them traced (`traced_constant`).
- Positions must be constants (or, for np.add.at and np.put_along_axis, integer arrays):
  assignment at positions computed from the inputs is refused (its repeats are unknown).
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..ir import index as prim_index
from ..ir import sort as ps
from ..ir import primitives as prim
from ..errors import MutationError, TracingError, UnsupportedFunctionError
from .indexing import index_arrays_of, traced_getitem
from ..ir.graph import Builder, Node
from .numpy_api import (FUNCTIONS, UFUNC_METHODS, _builder_of, _where, elementwise, implements,
                        node_of, on_nodes)
from .tracer import (ARGUMENT, METHODS, OPERATORS, PROPERTIES, TRACED, VIEW, Tracer, bound_site,
                     check_fresh, resolved, traced_array, user_site)

FAMILY = "In-place updates of arrays made inside the function"  # its heading in docs/ops.md


def _at() -> str | None:
    site = user_site()
    return f"{site}  `{site.text}`" if site else None


# ---------------------------------------------------------------------------------------------
# Boxes: arguments, views, constants that became traced
# ---------------------------------------------------------------------------------------------
def writable(target: Any, what: str) -> Tracer:
    """The Tracer an in-place `what` updates: arguments (and views of them) are refused."""
    if isinstance(target, np.ndarray):
        target = traced_constant(target)
    base = target
    while isinstance(base.origin, tuple):
        if base.origin[1] is None:
            raise TracingError(
                f"{what} into a reshaped or transposed view of an array (at {_at()}) is not "
                "supported while tracing: numpy would write through to the array. Index the "
                "array itself (y[i, j] = v), or take a copy first (z = y.T.copy()).")
        base = base.origin[0]
    if base.origin == ARGUMENT:
        raise MutationError(what, _at())
    return target


def traced_constant(array: np.ndarray, builder: Builder | None = None) -> Tracer:
    """The Tracer standing for a numpy array made while tracing (made on first use)."""
    tracer = traced_array(array)
    view = getattr(array, "__dict__", {}).get(VIEW)
    if tracer is None and view is not None:  # a view: its base becomes traced
        return traced_constant(view[0], builder)[view[1]]
    if tracer is None:
        if builder is None or not hasattr(array, "__dict__"):
            raise TracingError(f"a numpy array that is not made inside the traced function "
                               f"cannot be updated with traced values (at {_at()}); make it "
                               "inside the function (np.zeros(...)) or copy it there")
        with bound_site(builder):
            tracer = Tracer(prim.constant(builder, np.asarray(array)), builder)
        array.__dict__[TRACED] = tracer  # the array stands for the Tracer from now on
    return tracer


def view_of(base: Tracer, index: Any, result: Tracer) -> Tracer:
    """Mark `result = base[index]` as a view when numpy's basic indexing makes one."""
    if isinstance(result, Tracer) and index_arrays_of(index) is None and result.ndim:
        result.origin = (base, index, base.version)
    return result


# numpy functions and methods whose result is a view numpy cannot index back into the base:
# writing into one is refused, reading one after the base changed too (`check_fresh`).
RESHAPING_FUNCTIONS = (np.reshape, np.transpose, np.ravel, np.swapaxes, np.moveaxis,
                       np.squeeze, np.expand_dims, np.broadcast_to, np.atleast_1d,
                       np.atleast_2d, np.diagonal)
RESHAPING_METHODS = ("reshape", "transpose", "ravel", "swapaxes", "squeeze", "diagonal")
RESHAPING_PROPERTIES = ("T", "mT")


def _marking(view: Any) -> Any:
    """`view` (a function of an array) with its Tracer result marked as a view of it."""
    @functools.wraps(view)
    def marked(a: Any, *args: Any, **kwargs: Any) -> Any:
        result = view(a, *args, **kwargs)
        if isinstance(a, Tracer) and isinstance(result, Tracer) and result is not a:
            result.origin = (a, None, a.version)
        return result
    return marked


def mark_reshaping_views() -> None:
    for function in RESHAPING_FUNCTIONS:
        if function in FUNCTIONS:
            FUNCTIONS[function] = _marking(FUNCTIONS[function])
    for name in RESHAPING_METHODS:
        METHODS[name] = _marking(METHODS[name])
    for name in RESHAPING_PROPERTIES:
        PROPERTIES[name] = _marking(PROPERTIES[name])


def _replace(target: Tracer, node: Node) -> None:
    """Give `target` its new value; a view writes it through to its base."""
    target.node = node
    target.version += 1
    if isinstance(target.origin, tuple):
        base, index, _ = target.origin
        assign(base, index, target)
        target.origin = (base, index, base.version)


# ---------------------------------------------------------------------------------------------
# Assignment: x[index] = value
# ---------------------------------------------------------------------------------------------
def _value(b: Builder, value: Any, dtype: str) -> Node:
    value = resolved(value)
    if isinstance(value, Tracer):
        check_fresh(value)
    v = node_of(b, value)
    if v.dtype != dtype and v.dtype != "bool" and np.dtype(dtype).kind in "biu" \
            and v.dtype.startswith("float") and not (v.op == "const" and not v.shape):
        raise TracingError(f"assigning {v.dtype} values into an integer array truncates them "
                           f"(at {_where(b)}); cast explicitly with .astype()")
    return prim.astype(b, v, dtype)


def assign(target: Tracer, index: Any, value: Any) -> None:
    b = target.builder  # not on_nodes: `target` is updated in place, in its own trace
    with bound_site(b):
        x = target.node
        v = _value(b, value, x.dtype)
        if index_arrays_of(index, traced_only=True):
            raise TracingError(
                f"assignment at positions computed from the inputs (at {_where(b)}): which "
                "elements are overwritten (and their repeats) must be known while tracing. "
                "Select with np.where, or use np.put_along_axis / np.add.at.")
        positions = _positions(b, x, index)
        v = prim.broadcast_to(b, v, positions.shape) if v.shape != positions.shape else v
        flat = positions.reshape(-1)
        # numpy writes repeated positions in order: the last value stays
        reversed_unique, first_of_reversed = np.unique(flat[::-1], return_index=True)
        last = flat.size - 1 - first_of_reversed
        mask = np.zeros(x.size, dtype=bool)
        mask[flat] = True
        if mask.all() and last.size == flat.size:
            order = np.argsort(flat)
            new = prim.reshape(b, v, (-1,)) if (order == np.arange(flat.size)).all() else \
                prim_index.gather(b, prim.reshape(b, v, (-1,)), (("a", 0),),
                                  [prim.constant(b, order)])
            _set_node(target, prim.reshape(b, new, x.shape))
            return
        basic = index_arrays_of(index) is None
        if basic:
            normal = prim.normalize_basic_index(index, x.shape, _where(b))
            placed = prim.unslice(b, v, normal, x.shape)
        else:
            chosen = prim.reshape(b, v, (-1,))
            if last.size != flat.size:
                chosen = prim_index.gather(b, chosen, (("a", 0),), [prim.constant(b, last)])
            spread = prim_index.scatter_add(b, chosen, (("a", 0),),
                                            [prim.constant(b, flat[last])], (x.size,))
            placed = prim.reshape(b, spread, x.shape)
        written = prim.constant(b, mask.reshape(x.shape))
        _set_node(target, prim_index.overwrite(b, written, placed, x))


def replace_all(target: Any, value: Any) -> Any:
    """`target[...] = value` for an in-place operator on an array made while tracing."""
    tracer = writable(target if isinstance(target, Tracer) else traced_constant(
        target, value.builder), "an in-place operator")
    on_nodes(lambda b, v: _set_node(tracer, prim.broadcast_to(b, v, tracer.shape)), value,
             others=(tracer,))
    return target


def _set_node(target: Tracer, node: Node) -> None:
    _replace(target, prim.astype(target.builder, node, target.node.dtype))


def _positions(b: Builder, x: Node, index: Any) -> np.ndarray:
    """The flat positions `x[index]` reads, by numpy itself on an array of positions."""
    if isinstance(index, Tracer):
        raise TracingError(f"assignment at a position computed from the inputs (at "
                           f"{_where(b)}); use np.where")
    try:
        return np.asarray(np.arange(x.size).reshape(x.shape)[_plain_index(index)])
    except (IndexError, TypeError) as error:
        from ..errors import ShapeError

        raise ShapeError("setitem", [x.shape], str(error), _where(b)) from None


def _plain_index(index: Any) -> Any:
    if isinstance(index, tuple):
        return tuple(_plain_index(i) for i in index)
    if isinstance(index, np.ndarray):
        return np.asarray(index)
    return index


# ---------------------------------------------------------------------------------------------
# Tracer methods: item assignment, in-place operators, copies
# ---------------------------------------------------------------------------------------------
def setitem(self: Tracer, index: Any, value: Any) -> None:
    assign(writable(self, "item assignment"), index, value)


def getitem(self: Tracer, index: Any) -> Tracer:
    return view_of(self, index, on_nodes(lambda b, x: traced_getitem(b, x, index), self))


def _inplace(op: str) -> Any:
    def update(self: Tracer, other: Any) -> Tracer:
        target = writable(self, f"the in-place operator ({op})")
        check_fresh(target)
        result = elementwise(op, target, other).node
        if result.dtype != target.node.dtype and np.can_cast(result.dtype, target.node.dtype,
                                                             "same_kind") is False:
            raise TracingError(f"in-place {op}: a {result.dtype} result cannot be stored in a "
                               f"{target.node.dtype} array (at {_where(target.builder)})")
        if result.shape != target.shape:
            raise TracingError(f"in-place {op}: the result's shape {result.shape} differs "
                               f"from the array's {target.shape} (at {_where(target.builder)})")
        _set_node(target, result)
        return target
    return update


_INPLACE = {"iadd": "add", "isub": "subtract", "imul": "multiply", "itruediv": "divide",
            "ipow": "power"}
for _name, _op in _INPLACE.items():
    OPERATORS[_name] = _inplace(_op)


def copy_of(a: Any) -> Tracer:
    """A new box with the same value: updates of the copy leave `a` alone."""
    if isinstance(a, np.ndarray):
        return np.array(a)
    check_fresh(a)
    return Tracer(a.node, a.builder)


def sort_in_place(self: Tracer, axis: int = -1, kind: Any = None, order: Any = None) -> None:
    """ndarray.sort: the array replaced by its sorted values."""
    from .sort import sort

    target = writable(self, "ndarray.sort")
    _set_node(target, sort(target, axis).node)


METHODS["sort"] = sort_in_place
OPERATORS["setitem"] = setitem
OPERATORS["getitem"] = getitem
mark_reshaping_views()
METHODS["copy"] = lambda self, order="C": copy_of(self)


@implements(np.copy)
def copy(a: Any, order: str = "K", subok: bool = False) -> Tracer:
    return copy_of(a)


# ---------------------------------------------------------------------------------------------
# np.add.at, np.subtract.at, np.put_along_axis
# ---------------------------------------------------------------------------------------------
def ufunc_at(ufunc: np.ufunc, a: Any, indices: Any, b: Any = None) -> None:
    """np.add.at / np.subtract.at: values added at the positions, repeats accumulating."""
    if ufunc not in (np.add, np.subtract) or b is None:
        raise UnsupportedFunctionError(f"numpy.{ufunc.__name__}.at (supported: add.at and "
                                       "subtract.at with values)", _at())
    builder = _builder_of((a, indices, b))  # not on_nodes: `a` is updated in place
    target = writable(a if isinstance(a, Tracer) else traced_constant(a, builder),
                      f"numpy.{ufunc.__name__}.at")
    with bound_site(builder):
        x = target.node
        if index_arrays_of(indices) is None:  # basic: distinct positions
            normal = prim.normalize_basic_index(indices, x.shape, _where(builder))
            v = prim.broadcast_to(builder, _value(builder, b, x.dtype),
                                  prim.indexed_shape(normal, x.shape))
            added = prim.unslice(builder, _signed(builder, ufunc, v), normal, x.shape)
        else:
            gathered = traced_getitem(builder, x, indices)
            entries, arrays = gathered.param("index"), list(gathered.inputs[1:])
            v = prim.broadcast_to(builder, _value(builder, b, x.dtype), gathered.shape)
            added = prim_index.scatter_add(builder, _signed(builder, ufunc, v), entries, arrays,
                                           x.shape)
        _set_node(target, prim.elementwise(builder, "add", x, added))


def _signed(b: Builder, ufunc: np.ufunc, v: Node) -> Node:
    return prim.elementwise(b, "negative", v) if ufunc is np.subtract else v


@implements(np.put_along_axis)
def put_along_axis(arr: Any, indices: Any, values: Any, axis: Any) -> None:
    """arr's elements at `indices` along `axis` set to `values`; positions named twice in a
    row get the mean of their values (numpy keeps one of them)."""
    builder = _builder_of((arr, indices, values))  # not on_nodes: `arr` is updated in place
    target = writable(arr if isinstance(arr, Tracer) else traced_constant(arr, builder),
                      "numpy.put_along_axis")
    with bound_site(builder):
        x, idx = target.node, node_of(builder, indices)
        if axis is None:
            raise UnsupportedFunctionError("numpy.put_along_axis with axis=None", _at())
        (ax,) = prim.normalize_axes("put_along_axis", axis, x.ndim, _where(builder), x.shape)
        if idx.ndim != x.ndim:
            raise TracingError(f"numpy.put_along_axis: indices and arr must have the same "
                               f"number of dims (at {_where(builder)})")
        v = prim.broadcast_to(builder, _value(builder, values, x.dtype), idx.shape)
        count = ps.add_along(builder, prim.broadcast_to(builder, prim.constant(
            builder, 1, x.dtype), idx.shape), idx, ax, x.shape)
        total = ps.add_along(builder, v, idx, ax, x.shape)
        hit = prim.elementwise(builder, "greater", count, 0)
        mean = prim.elementwise(builder, "divide", total,
                                prim.elementwise(builder, "where", hit, count, 1))
        _set_node(target, prim.elementwise(builder, "where", hit, mean, x))


UFUNC_METHODS[(None, "at")] = ufunc_at
