"""Arrays made while a function is traced: np.eye, np.arange, np.zeros, ... and np.array /
np.asarray of traced values.

numpy cannot dispatch `ndarray.__getitem__` or `np.array(...)` to a tracer, so while a trace
runs on a thread these numpy functions are wrapped:

- the creation functions return `IndexableConstant` arrays: plain numpy arrays (every numpy
  operation works on them as usual) that can also be indexed *by* a traced index, as in the
  one-hot idiom `np.eye(k)[labels]`;
- `np.array` / `np.asarray` of a tracer give the tracer (cast to `dtype` if one is given), and of
  a (nested) list holding tracers give their stack.

numpy's attributes are swapped only while some thread traces; on every other thread the
wrappers return exactly what numpy returns.
"""
from __future__ import annotations

import functools
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np

from . import primitives as prim
from .frontend_indexing import traced_getitem
from .numpy_frontend import boxed, node_of
from .trace import Tracer, bound_site


class IndexableConstant(np.ndarray):
    """A numpy array made while tracing; indexing it with a traced index records a gather."""

    def __getitem__(self, index: Any) -> Any:
        items = index if isinstance(index, tuple) else (index,)
        tracer = next((i for i in items if isinstance(i, Tracer)), None)
        if tracer is None:
            return super().__getitem__(index)
        builder = tracer.builder
        with bound_site(builder):
            constant = prim.constant(builder, np.asarray(self))
            return boxed(builder, traced_getitem(builder, constant, index))


CREATION_FUNCTIONS = ("eye", "identity", "arange", "zeros", "ones", "full", "linspace")
CONVERSION_FUNCTIONS = ("array", "asarray", "asanyarray")

_originals = {name: getattr(np, name) for name in CREATION_FUNCTIONS + CONVERSION_FUNCTIONS}
_state = threading.local()
_lock = threading.Lock()
_tracing_threads = 0


def _tracing_here() -> bool:
    return getattr(_state, "depth", 0) > 0


def _indexable(original: Callable) -> Callable:
    @functools.wraps(original)
    def creation(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if _tracing_here() and type(result) is np.ndarray:
            return result.view(IndexableConstant)
        return result
    return creation


def _first_tracer(value: Any) -> Tracer | None:
    if isinstance(value, Tracer):
        return value
    if isinstance(value, (list, tuple)):
        for item in value:
            found = _first_tracer(item)
            if found is not None:
                return found
    return None


def _stacked(builder: Any, value: Any) -> Any:
    """A node for a tracer, or for a nested list of tracers and numbers (their stack)."""
    if not isinstance(value, (list, tuple)):
        return node_of(builder, value)
    from .frontend_shape import stack

    return stack([boxed(builder, _stacked(builder, item)) for item in value]).node


def _converting(original: Callable) -> Callable:
    @functools.wraps(original)
    def conversion(obj: Any = None, dtype: Any = None, *args: Any, **kwargs: Any) -> Any:
        tracer = _first_tracer(obj) if _tracing_here() else None
        if tracer is None:
            return original(obj, dtype, *args, **kwargs)
        builder = tracer.builder
        with bound_site(builder):
            node = _stacked(builder, obj)
            if dtype is not None:
                node = prim.astype(builder, node, np.dtype(dtype).name)
            return boxed(builder, node)
    return conversion


_wrapped = {**{name: _indexable(_originals[name]) for name in CREATION_FUNCTIONS},
            **{name: _converting(_originals[name]) for name in CONVERSION_FUNCTIONS}}


@contextmanager
def tracing_numpy() -> Iterator[None]:
    """Wrap numpy's creation and conversion functions while this thread traces."""
    global _tracing_threads
    with _lock:
        if _tracing_threads == 0:
            for name, wrapper in _wrapped.items():
                setattr(np, name, wrapper)
        _tracing_threads += 1
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1
        with _lock:
            _tracing_threads -= 1
            if _tracing_threads == 0:
                for name, original in _originals.items():
                    setattr(np, name, original)
