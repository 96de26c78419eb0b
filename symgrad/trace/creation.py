"""Arrays made while a function is traced: np.eye, np.arange, np.zeros, ... and np.array /
np.asarray of traced values.

numpy cannot dispatch `ndarray.__getitem__` or `np.array(...)` to a tracer, so while a trace
runs on a thread these numpy functions are wrapped:

- the creation functions return `IndexableConstant` arrays: plain numpy arrays (every numpy
  operation works on them as usual) that can also be indexed *by* a traced index, as in the
  one-hot idiom `np.eye(k)[labels]`;
- `np.array` / `np.asarray` of a tracer give the tracer (cast to `dtype` if one is given), and of
  a (nested) list holding tracers give their stack.

- np.random's functions raise a `TracingError` naming the line: their numbers would be baked
  into the compiled code (pass random arrays in as arguments).

numpy's attributes are swapped only while some thread traces; on every other thread the
wrappers return exactly what numpy returns.
"""
from __future__ import annotations

import functools
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np

from ..ir import primitives as prim
from .indexing import traced_getitem
from .numpy_api import boxed, node_of, on_nodes
from ..errors import TracingError
from .tracer import TRACED, VIEW, Tracer, bound_site, resolved, traced_array, user_site

FAMILY = "Creation"  # its heading in docs/ops.md


class IndexableConstant(np.ndarray):
    """A numpy array made while tracing; indexing it with a traced index records a gather.

    Assigning a traced value into it (`out = np.zeros(3); out[0] = w.sum()`) makes it traced:
    from then on it stands for its Tracer (frontend_update.py) in every numpy call, operator,
    method and attribute."""

    def __getitem__(self, index: Any) -> Any:
        traced = traced_array(self)
        if traced is not None:
            return traced[index]
        items = index if isinstance(index, tuple) else (index,)
        tracer = next((i for i in items if isinstance(i, Tracer)), None)
        if tracer is None:
            result = super().__getitem__(index)
            if isinstance(result, IndexableConstant) and result.base is not None:
                result.__dict__[VIEW] = (self, index)  # writes into it reach this array
            return result
        return on_nodes(lambda b, constant: traced_getitem(b, constant, index), np.asarray(self),
                        others=(tracer,))

    def __setitem__(self, index: Any, value: Any) -> None:
        tracer = _first_tracer((index, value))
        if traced_array(self) is None and tracer is None:
            return super().__setitem__(index, value)
        from .update import traced_constant

        traced_constant(self, None if tracer is None else tracer.builder)[index] = value

    def __getattribute__(self, name: str) -> Any:
        if name[0] != "_":
            traced = object.__getattribute__(self, "__dict__").get(TRACED)
            if traced is not None:
                return getattr(traced, name)
        return super().__getattribute__(name)

    def __iter__(self) -> Any:
        traced = traced_array(self)
        return super().__iter__() if traced is None else iter(traced)

    def __bool__(self) -> bool:
        traced = traced_array(self)
        return super().__bool__() if traced is None else bool(traced)

    def __float__(self) -> float:
        traced = traced_array(self)
        return super().__float__() if traced is None else float(traced)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        swapped = tuple(_swapped(i) for i in inputs)
        out = kwargs.get("out")
        if _first_tracer(swapped) is None and _first_tracer(_swapped(out)) is None:
            result = getattr(ufunc, method)(*_plain(inputs), **_plain(kwargs))
            return result.view(IndexableConstant) if type(result) is np.ndarray else result
        from .update import replace_all, ufunc_at

        if method == "at":  # np.add.at(acc, ...): acc itself is updated
            return ufunc_at(ufunc, *(inputs[:1] + swapped[1:]), **kwargs)
        if out is None:
            return getattr(ufunc, method)(*_plain(swapped), **kwargs)

        (target,) = out  # an in-place operator: `out += x`
        kwargs.pop("out")
        return replace_all(target, getattr(ufunc, method)(*_plain(swapped), **kwargs))

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        swapped = _swapped(args)
        if _first_tracer(swapped) is None and _first_tracer(_swapped(kwargs)) is None:
            return super().__array_function__(func, types, args, kwargs)
        if func in UPDATING_FUNCTIONS:  # np.put_along_axis(y, ...): y itself is updated
            from .update import traced_constant

            target = traced_constant(args[0], _first_tracer(swapped).builder)
            return func(target, *_plain(swapped[1:]), **_plain(_swapped(kwargs)))
        return func(*_plain(swapped), **_plain(_swapped(kwargs)))


UPDATING_FUNCTIONS = (np.put_along_axis,)  # numpy functions that update their first argument


def _plain(value: Any) -> Any:
    """`value` with IndexableConstants as plain ndarrays (numpy's own ufunc loop)."""
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value.view(np.ndarray) if isinstance(value, IndexableConstant) else value


def _swapped(value: Any) -> Any:
    """`value` with the arrays that became traced replaced by their Tracers (in lists too)."""
    if isinstance(value, (list, tuple)):
        return type(value)(_swapped(v) for v in value)
    if isinstance(value, dict):
        return {k: _swapped(v) for k, v in value.items()}
    return resolved(value)


CREATION_FUNCTIONS = ("eye", "identity", "arange", "zeros", "ones", "full", "linspace", "empty",
                      "zeros_like", "ones_like", "empty_like", "full_like", "copy")
CONVERSION_FUNCTIONS = ("array", "asarray", "asanyarray")
# np.random's functions (not its classes): called while tracing they would be baked in
RANDOM_FUNCTIONS = tuple(sorted(
    name for name in dir(np.random) if not name.startswith("_")
    and callable(getattr(np.random, name)) and not isinstance(getattr(np.random, name), type)))

_originals = {**{(np, name): getattr(np, name) for name in CREATION_FUNCTIONS
                 + CONVERSION_FUNCTIONS},
              **{(np.random, name): getattr(np.random, name) for name in RANDOM_FUNCTIONS}}
_state = threading.local()
_lock = threading.Lock()
_tracing_threads = 0


def tracing_here() -> bool:
    return getattr(_state, "depth", 0) > 0


def _indexable(original: Callable) -> Callable:
    @functools.wraps(original)
    def creation(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if tracing_here() and type(result) is np.ndarray:
            return result.view(IndexableConstant)
        return result
    return creation


def _first_tracer(value: Any) -> Tracer | None:
    if isinstance(value, Tracer):
        return value
    if traced_array(value) is not None:
        return traced_array(value)
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
    from .shape import stack

    return stack([boxed(builder, _stacked(builder, item)) for item in value]).node


def _converting(original: Callable) -> Callable:
    @functools.wraps(original)
    def conversion(obj: Any = None, dtype: Any = None, *args: Any, **kwargs: Any) -> Any:
        if getattr(type(obj), "_symgrad_complex", False) and (
                dtype is None or np.dtype(dtype).kind == "c"):
            return obj  # a traced complex value (complex.py)
        tracer = _first_tracer(obj) if tracing_here() else None
        if tracer is None:
            return original(obj, dtype, *args, **kwargs)
        builder = tracer.builder  # not on_nodes: `obj` may be a nested list of tracers
        same = resolved(obj)
        if original.__name__ != "array" and isinstance(same, Tracer) and (
                dtype is None or np.dtype(dtype) == same.dtype):
            return same  # np.asarray gives the array itself: updates of it are updates of obj
        with bound_site(builder):
            node = _stacked(builder, obj)
            if dtype is not None and np.dtype(dtype).kind == "c":
                return boxed(builder, node).astype(dtype)  # a complex value (complex.py)
            if dtype is not None:
                node = prim.astype(builder, node, np.dtype(dtype).name)
            return boxed(builder, node)
    return conversion


def _refusing_random(name: str, original: Callable) -> Callable:
    @functools.wraps(original)
    def random(*args: Any, **kwargs: Any) -> Any:
        if not tracing_here():
            return original(*args, **kwargs)
        site = user_site()
        raise TracingError(
            f"numpy.random.{name} called inside a traced function"
            f"{f' at {site}  `{site.text}`' if site else ''}: its numbers would be baked into "
            "the compiled code as constants, the same on every call (a dropout mask that never "
            "changes). Draw them outside and pass the array in as an argument.")
    return random


_wrapped = {**{(np, name): _indexable(_originals[np, name]) for name in CREATION_FUNCTIONS},
            **{(np, name): _converting(_originals[np, name]) for name in CONVERSION_FUNCTIONS},
            **{(np.random, name): _refusing_random(name, _originals[np.random, name])
               for name in RANDOM_FUNCTIONS}}


@contextmanager
def tracing_numpy() -> Iterator[None]:
    """Wrap numpy's creation, conversion and random functions while this thread traces."""
    global _tracing_threads
    with _lock:
        if _tracing_threads == 0:
            for (module, name), wrapper in _wrapped.items():
                setattr(module, name, wrapper)
        _tracing_threads += 1
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1
        with _lock:
            _tracing_threads -= 1
            if _tracing_threads == 0:
                for (module, name), original in _originals.items():
                    setattr(module, name, original)
