"""Dask arrays in, numpy answers out: exact gradients of a loss over data chunked by rows.

`sg.value_and_grad(loss)(w, X, y)` with `X` and `y` Dask arrays chunked along their first axis
never gathers them. The loss is traced at the full shapes (no data is read) and split over the
rows (`rows.py`): a generated *partial* per chunk size computes the loss's row sums on one
chunk and their gradients, `dask.array.blockwise` maps it over the blocks, Dask's own tree
reduction (`.sum(axis=0, split_every=...)`) adds the partials on the cluster, and a generated
*combine* step applies what is applied once: the constant factors (a mean's division by the
total row count) and the row-independent terms (a regulariser) with their gradients. A
gradient with respect to a chunked argument comes back as a Dask array chunked like it.

Why not run the generated numpy on Dask arrays through numpy's dispatch: it would be exact
only where Dask's own reductions are, it would build one Dask task per array statement (a
graph as long as the program for every call), and a loss that mixes rows would silently
shuffle data across the cluster. The split is checked on the graph, once per signature, and
what runs on a worker is one generated function per chunk.

Code travels as text (`CodeText`: the cache key, the source, the function name); a worker
checks what it receives and stores it in its own cache (`receive_code`, the one place where
the trust issue's signing goes), then loads it from there. Nothing here imports SymPy or
jinja2, so a worker never does; the client compiles (or loads from its cache) as usual.

Chunking: the rows of every chunked argument are rechunked to those of the first one, and
axes other than the rows to one chunk each (a chunk of rows holds whole rows). Chunks of
different sizes are fine: one partial is compiled per distinct chunk size.
"""
from __future__ import annotations

import dataclasses
import string
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..backends.numpy.safety import check_source
from ..cache.store import DiskCache, import_source
from ..errors import ArgumentError

_LOADED: dict[str, Callable] = {}  # cache key -> generated function, in this process
_LOCK = threading.Lock()
WORKER_STATS = {"received": 0, "from_cache": 0}  # how this process got the code it ran


# ---------------------------------------------------------------------------------------------
# Code as text, on the workers
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CodeText:
    """A generated module as it travels to workers: its cache key, source and metadata."""

    key: str
    source: str
    function: str
    meta: tuple  # the cache metadata's items (sorted), stored with the entry


def receive_code(code: CodeText, cache: DiskCache) -> Path | None:
    """Check source received from elsewhere, then store it in this process's cache.

    The one step between the network and the cache: the source is checked against the numpy
    backend's grammar and only then stored, signed with this worker's own key
    (`DiskCache.adopt`); the client's signature never travels and is never trusted."""
    return cache.adopt(code.key, code.source, dict(code.meta), check_source)


def load_code(code: CodeText) -> Callable:
    """The generated function, from this process's memory, else its own cache, else received
    (checked, stored, then loaded from the cache like any entry)."""
    function = _LOADED.get(code.key)
    if function is not None:
        return function
    with _LOCK:
        function = _LOADED.get(code.key)
        if function is not None:
            return function
        cache = DiskCache.shared()
        entry = cache.load(code.key)
        if entry is None:
            WORKER_STATS["received"] += 1
            stored = receive_code(code, cache)
            entry = cache.load(code.key) if stored is not None else None
        else:
            WORKER_STATS["from_cache"] += 1
        source, path = (entry[0], cache.source_path(code.key)) if entry else (code.source, None)
        module = import_source(source, path, f"symgrad_generated_{code.key[:20]}",
                               check=check_source)
        function = _LOADED[code.key] = getattr(module, code.function)
        return function


def worker_report() -> dict:
    """What this process holds: how it got its code, and whether SymPy or jinja2 were
    imported (`client.run(worker_report)` asks every worker)."""
    return {"sympy": "sympy" in sys.modules, "jinja2": "jinja2" in sys.modules,
            "loaded": len(_LOADED), **WORKER_STATS}


def forget_loaded() -> None:
    """Drop the functions this process holds in memory (the next call reads the cache)."""
    _LOADED.clear()


def _code_text(compiled: Any) -> CodeText:
    meta = {"function": compiled.function.__name__}
    _LOADED.setdefault(compiled.key, compiled.function)
    return CodeText(compiled.key, compiled.source, compiled.function.__name__,
                    tuple(sorted(meta.items())))


def _partial_task(shared: tuple, *blocks: np.ndarray, chunked: tuple, reduced: tuple,
                  pack: str, want: int | None) -> np.ndarray:
    """One block: the partial's value and the gradients summed across chunks, packed in one
    row (`want` None), or the gradient with respect to chunked argument `want`. `shared` is
    (code per chunk size, argument leaves): one task of the graph, read by every block."""
    codes, leaves = shared
    function = load_code(codes[blocks[0].shape[0]])
    args = list(leaves)
    for position, block in zip(chunked, blocks):
        args[position] = block
    value, grads = function(*args)
    if want is not None:
        return grads[want]
    parts = [np.asarray(value).reshape(1)] + [np.asarray(grads[k]).reshape(-1)
                                              for k in reduced]
    return np.concatenate(parts).astype(pack)[None, :]


# ---------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------
def is_dask_array(value: Any) -> bool:
    kind = type(value)
    return kind.__name__ == "Array" and kind.__module__.startswith("dask.array")


def has_dask(args: tuple, kwargs: dict) -> bool:
    """Whether any argument leaf is a Dask array (without importing Dask)."""
    if "dask.array" not in sys.modules:
        return False
    from ..pytree import tree_flatten

    leaves, _ = tree_flatten((args, kwargs))
    return any(is_dask_array(leaf) for leaf in leaves)


@dataclass
class Plan:
    """What one signature and chunking compiles to: partials per chunk size and a combine."""

    partials: dict[int, Any]  # rows per chunk -> Compiled
    combine: Any  # Compiled
    factors: list
    transform: Any
    chunked: tuple[int, ...]
    theta: tuple[int, ...]  # positions of the array leaves that are not chunked
    reduced: tuple[int, ...]  # indices into transform.wrt of gradients summed over chunks
    local: tuple[int, ...]  # indices into transform.wrt of gradients w.r.t. chunked leaves


@dataclass
class DistributedLowered:
    """`.lower(...)` of a call with Dask arrays: the generated partial(s) and combine step."""

    partials: dict[int, Any]
    combine: Any
    factors: list

    @property
    def partial_source(self) -> str:
        return self.partials[max(self.partials)].source

    @property
    def combine_source(self) -> str:
        return self.combine.source

    @property
    def source(self) -> str:
        parts = [f"# --- partial, per chunk of {rows} rows ---\n{c.source}"
                 for rows, c in sorted(self.partials.items())]
        return "\n".join(parts + [f"# --- combine ---\n{self.combine.source}"])

    def __str__(self) -> str:
        return self.source


def call_with_dask(function: Any, args: tuple, kwargs: dict) -> Any:
    """A grad / value_and_grad CompiledFunction called with Dask arrays among its arguments."""
    import dask

    prepared, arrays, plan = _prepare(function, args, kwargs)
    pairs = _pairs(arrays)
    # Dask's tree reduction; its fan-in is `dask.config.set(split_every=...)` (default 4).
    packed_total = _map_partial(plan, prepared, pairs, None).sum(axis=0)
    (total,) = dask.compute(packed_total)
    value_node = plan.combine.graph.inputs[len(plan.theta)]
    sizes = [int(np.prod(prepared.specs[plan.transform.wrt[k]].shape, dtype=np.int64))
             for k in plan.reduced]
    pieces = [np.asarray(total[0], dtype=value_node.dtype)]
    offset = 1
    for k, size in zip(plan.reduced, sizes):
        spec = prepared.specs[plan.transform.wrt[k]]
        pieces.append(total[offset:offset + size].reshape(spec.shape).astype(spec.dtype))
        offset += size
    theta = [prepared.leaves[p] for p in plan.theta]
    combined = plan.combine.function(*theta, *pieces)
    flat: list[Any] = [None] * len(plan.transform.wrt)
    for k, grad in zip(plan.reduced, combined[1:]):
        flat[k] = grad
    for k in plan.local:
        flat[k] = _scaled(_map_partial(plan, prepared, pairs, k), plan.factors)
    grads = _grouped(plan.transform, flat)
    result = grads if function.kind == "grad" else (combined[0], grads)
    finish = function._finisher(prepared, plan.transform)
    return result if finish is None else finish(result)


def lower_with_dask(function: Any, args: tuple, kwargs: dict) -> DistributedLowered:
    _, _, plan = _prepare(function, args, kwargs)
    return DistributedLowered(plan.partials, plan.combine, plan.factors)


def _prepare(function: Any, args: tuple, kwargs: dict) -> tuple[Any, list, Plan]:
    from ..pytree import tree_flatten

    if function.kind not in ("grad", "value_and_grad"):
        raise ArgumentError(f"{function!r} was called with Dask arrays: only grad and "
                            "value_and_grad split over chunks; pass numpy arrays "
                            "(x.compute()) to the other transforms")
    if function.has_aux:
        raise ArgumentError(f"{function!r}: has_aux=True is not supported with Dask arrays")
    found: dict[int, Any] = {}

    def spec_of(value: Any) -> Any:
        leaves, tree = tree_flatten(value)
        if not any(is_dask_array(leaf) for leaf in leaves):
            return value
        specs = []
        for leaf in leaves:
            if is_dask_array(leaf):
                if any(np.isnan(c) for axis in leaf.chunks for c in axis):
                    raise ArgumentError("a Dask argument has unknown chunk sizes; call "
                                        "x.compute_chunk_sizes() first")
                if leaf.ndim == 0:
                    raise ArgumentError("a 0-d Dask argument has no rows to split; pass it "
                                        "as a numpy value")
                leaf = _Chunked(leaf)
                found[id(leaf.spec)] = leaf.array
                specs.append(leaf.spec)
            else:
                specs.append(leaf)
        return tree.unflatten(specs)

    prepared = function._prepare(tuple(spec_of(a) for a in args),
                                 {k: spec_of(v) for k, v in kwargs.items()}, specs_allowed=True)
    chunked = tuple(i for i, leaf in enumerate(prepared.leaves) if id(leaf) in found)
    arrays = _aligned([found[id(prepared.leaves[i])] for i in chunked], prepared, chunked)
    for i in chunked:
        prepared.leaves[i] = None
    rows = tuple(sorted(set(int(c) for c in arrays[0].chunks[0])))
    plans = function.__dict__.setdefault("_dask_plans", {})
    plan = plans.get((prepared.key, rows))
    if plan is None:
        plan = plans[(prepared.key, rows)] = _plan(function, prepared, chunked, rows)
    return prepared, arrays, plan


class _Chunked:
    def __init__(self, array: Any):
        from ..specs import Spec

        self.array = array
        self.spec = Spec(tuple(int(d) for d in array.shape), np.dtype(array.dtype).name)


def _aligned(arrays: list, prepared: Any, chunked: tuple) -> list:
    """Every chunked argument with the first one's row chunks and whole rows per chunk."""
    first = arrays[0]
    out = []
    for array, position in zip(arrays, chunked):
        if array.shape[0] != first.shape[0]:
            names = (prepared.specs[chunked[0]].name, prepared.specs[position].name)
            raise ArgumentError(f"Dask arguments {names[0]!r} and {names[1]!r} have "
                                f"{first.shape[0]} and {array.shape[0]} rows; chunked "
                                "arguments must have the same rows")
        want = {0: first.chunks[0], **{axis: -1 for axis in range(1, array.ndim)}}
        if array.chunks[0] != first.chunks[0] or any(len(c) > 1 for c in array.chunks[1:]):
            array = array.rechunk(want)
        out.append(array)
    return out


def _plan(function: Any, prepared: Any, chunked: tuple, rows: tuple) -> Plan:
    from ..autodiff.transforms import Transform
    from ..compiler import compile_function
    from .rows import Split

    graph, structure, transform = function._trace(prepared)
    if structure != 0:
        raise ArgumentError(f"{function!r}: with Dask arguments the function must return one "
                            "scalar")
    split = Split.of(graph, chunked)
    if not split.reads_rows:
        raise ArgumentError(f"{function!r}: the loss does not read its Dask arguments; pass "
                            "numpy arrays")
    partial_transform = Transform("value_and_grad", transform.wrt, single=False,
                                  fast_math=transform.fast_math)
    cache = DiskCache.shared()
    partials, factors = {}, None
    for n in rows:
        partial_graph, found = split.partial(n)
        if factors is not None and found != factors:
            raise AssertionError("chunk sizes gave different factors")  # a symgrad bug
        factors = found
        specs = [dataclasses.replace(s, shape=(n,) + tuple(s.shape[1:])) if i in chunked else s
                 for i, s in enumerate(prepared.specs)]
        partials[n] = compile_function(
            _Renamed(function.fn, "_chunk"), specs, partial_transform, cache, function.backend,
            trace=lambda g=partial_graph: (g, 0, partial_transform))
    theta = tuple(i for i, s in enumerate(prepared.specs)
                  if s.shape is not None and i not in chunked)
    reduced = tuple(k for k, p in enumerate(transform.wrt) if p not in chunked)
    local = tuple(k for k, p in enumerate(transform.wrt) if p in chunked)
    from .combine import compile_combine

    combine = compile_combine(function, prepared.specs, theta, [transform.wrt[k] for k in reduced],
                              partials[rows[0]].graph.outputs[0].dtype, factors, split.rest(),
                              cache)
    return Plan(partials, combine, factors, transform, chunked, theta, reduced, local)


class _Renamed:
    """The user's function under another name (`loss_chunk`), for what is generated from it."""

    def __init__(self, fn: Callable, suffix: str):
        self.__name__ = getattr(fn, "__name__", "function") + suffix
        self.__qualname__ = getattr(fn, "__qualname__", self.__name__) + suffix
        self.__code__ = getattr(fn, "__code__", None)
        self.__module__ = getattr(fn, "__module__", None)


def _pairs(arrays: list) -> list:
    """blockwise's (array, index) pairs: rows are `r` in every argument, other axes apart."""
    letters = iter(c for c in string.ascii_lowercase if c not in "rk")
    pairs = []
    for array in arrays:
        pairs += [array, "r" + "".join(next(letters) for _ in range(array.ndim - 1))]
    return pairs


def _map_partial(plan: Plan, prepared: Any, pairs: list, want: int | None) -> Any:
    """The partial over every block: packed rows to sum (`want` None), or the blocks of the
    gradient with respect to the chunked argument at `transform.wrt[want]`."""
    import dask
    import dask.array as da

    codes = {n: _code_text(c) for n, c in plan.partials.items()}
    outputs = [c.graph.outputs[0].dtype for c in plan.partials.values()]
    dtypes = outputs + [prepared.specs[plan.transform.wrt[k]].dtype for k in plan.reduced]
    pack = np.result_type(*dtypes).name
    # The parameters and the code travel once per call, not once per block.
    shared = dask.delayed((codes, list(prepared.leaves)), pure=True, traverse=False)
    pairs = [shared, None, *pairs]
    common = dict(chunked=plan.chunked, reduced=plan.reduced, pack=pack, concatenate=True)
    if want is None:
        width = 1 + sum(int(np.prod(prepared.specs[plan.transform.wrt[k]].shape,
                                    dtype=np.int64)) for k in plan.reduced)
        return da.blockwise(_partial_task, "rk", *pairs, new_axes={"k": width},
                            adjust_chunks={"r": 1}, dtype=pack, want=None,
                            meta=np.empty((0, 0), pack), **common)
    position = plan.transform.wrt[want]
    index = pairs[2 * plan.chunked.index(position) + 3]
    dtype = prepared.specs[position].dtype
    return da.blockwise(_partial_task, index, *pairs, dtype=dtype, want=want,
                        meta=np.empty((0,) * len(index), dtype), **common)


def _scaled(array: Any, factors: list) -> Any:
    for op, value in factors:  # as the combine step applies them (rows.py's _peel)
        array = -array if op == "negative" else array / value if op == "divide" \
            else array * value
    return array


def _grouped(transform: Any, flat: list) -> Any:
    """Flat gradients in the shape the generated value_and_grad would return them."""
    if transform.groups is None:
        return flat[0] if transform.single else tuple(flat)
    items, k = [], 0
    for count in transform.groups:
        if count is None:
            items.append(flat[k])
            k += 1
        else:
            items.append(tuple(flat[k:k + count]))
            k += count
    return items[0] if transform.single else tuple(items)
