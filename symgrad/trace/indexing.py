"""Indexing on tracers: basic and integer-array indexing (`x[i]`, `x[:, ::-1]`,
`logp[np.arange(n), labels]`), constant boolean masks, np.take and np.take_along_axis.

Index arrays may be integer inputs of the function (labels: traced, never differentiated) or
constants. A constant boolean mask is its `nonzero()` index arrays, as in numpy; a mask
computed from traced values would give a data-dependent shape and is refused with a pointer to
np.where.

Constants indexed *by* traced arrays (`np.eye(k)[labels]`) are in frontend_creation.py.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..ir import index as prim_index
from ..ir import primitives as prim
from ..errors import TracingError
from ..ir.graph import Builder, Node
from .numpy_api import _where, implements, on_nodes
from .tracer import Tracer

FAMILY = "Indexing"  # its heading in docs/ops.md


def _is_array_item(item: Any) -> bool:
    return isinstance(item, (Tracer, np.ndarray, list)) or (
        isinstance(item, np.generic) and item.dtype == np.bool_)


def index_arrays_of(index: Any, traced_only: bool = False) -> list | None:
    """The array items of an index (index arrays, masks, traced integers), None for a basic
    index; with `traced_only`, the traced ones only."""
    items = index if isinstance(index, tuple) else (index,)
    found = [item for item in items if _is_array_item(item) or isinstance(item, bool)]
    if traced_only:
        found = [item for item in found if isinstance(item, Tracer)]
    return found or None


def traced_getitem(builder: Builder, x: Node, index: Any) -> Node:
    items = index if isinstance(index, tuple) else (index,)
    if not any(_is_array_item(item) for item in items) and not any(
            isinstance(item, bool) for item in items):
        for item in items:
            if isinstance(item, slice) and any(isinstance(v, Tracer) for v in
                                               (item.start, item.stop, item.step)):
                raise TracingError(f"slice bounds must be Python integers, not traced values "
                                   f"(at {_where(builder)}); shapes are static while tracing")
        return prim.getitem(builder, x, index)
    entries: list[Any] = []
    arrays: list[Node] = []
    for item in items:
        if not _is_array_item(item) and not isinstance(item, bool):
            entries.append(item)
            continue
        for array in _index_arrays(builder, item):
            entries.append(("a", len(arrays)))
            arrays.append(array)
    index_entries = prim.normalize_index(tuple(entries), x.shape, _where(builder))
    return prim_index.gather(builder, x, index_entries, arrays)


def _index_arrays(builder: Builder, item: Any) -> list[Node]:
    """The integer index arrays an array-like index item stands for."""
    where = _where(builder)
    if isinstance(item, Tracer):
        if item.node.dtype == "bool":
            raise TracingError(
                f"indexing with a boolean mask computed from traced values (at {where}) would "
                "give an array whose size depends on the data. Keep the shape and select with "
                "np.where(mask, x, 0) (or multiply by the mask), then reduce.")
        if not item.node.dtype.startswith(("int", "uint")):
            raise TracingError(f"arrays used as indices must be integers, not "
                               f"{item.node.dtype} (at {where})")
        return [item.node]
    array = np.asarray(item)
    if array.dtype == np.bool_:
        if array.ndim == 0:
            raise TracingError(f"indexing with a scalar boolean is not supported (at {where})")
        return [prim.constant(builder, np.asarray(k, dtype=np.int64)) for k in array.nonzero()]
    if array.dtype.kind not in "iu":
        raise TracingError(f"arrays used as indices must be integers, not {array.dtype} "
                           f"(at {where})")
    return [prim.constant(builder, array)]


@implements(np.take)
def take(a: Any, indices: Any, axis: Any = None, out: Any = None, mode: str = "raise") -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        if mode != "raise" or out is not None:
            raise TracingError(f"numpy.take: mode={mode!r}/out are not supported while "
                               f"tracing (at {_where(b)})")
        ax = axis
        if ax is None:
            x, ax = prim.reshape(b, x, (-1,)), 0
        ax = prim.normalize_axes("take", ax, x.ndim, _where(b), x.shape)[0]
        return traced_getitem(b, x, (slice(None),) * ax + (indices,))
    return on_nodes(build, a, others=(indices,))  # (traced_getitem reads the indices)


@implements(np.take_along_axis)
def take_along_axis(arr: Any, indices: Any, axis: Any = -1) -> Tracer:
    def build(b: Builder, x: Node, idx: Node) -> Node:
        ax = axis
        if ax is None:
            x, ax = prim.reshape(b, x, (-1,)), 0
        ax = prim.normalize_axes("take_along_axis", ax, x.ndim, _where(b), x.shape)[0]
        if idx.ndim != x.ndim:
            raise TracingError(f"numpy.take_along_axis: indices and arr must have the same "
                               f"number of dims (at {_where(b)})")
        entries, arrays = [], []
        for dim in range(x.ndim):
            if dim == ax:
                arrays.append(idx)
            else:
                shape = [1] * x.ndim
                shape[dim] = x.shape[dim]
                arrays.append(prim.constant(b, np.arange(x.shape[dim]).reshape(shape)))
            entries.append(("a", dim))
        return prim_index.gather(b, x, tuple(entries), arrays)
    return on_nodes(build, arr, indices)
