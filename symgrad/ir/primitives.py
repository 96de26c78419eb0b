"""Primitive constructors: one function per op family that checks operands, infers the result
shape and dtype exactly as numpy would, and makes the node.

Both the tracer (user code) and the VJP rules (derivative code) build nodes through these, so
shapes and dtypes are checked in one place. Operands may be nodes or Python scalars; Python
scalars are numpy's "weak" scalars (NEP 50): they never change the dtype of an array operand.
"""
from __future__ import annotations

import hashlib
import operator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence, Union

import numpy as np

from ..errors import ShapeError, TracingError
from .graph import Builder, Node, Shape
from .ops import OPS, Result
from .promotion import check_promotion

Operand = Union[Node, int, float, bool]


@dataclass(frozen=True)
class ConstArray:
    """An array constant captured from the user's code, hashable by content."""

    data: bytes
    shape: Shape
    dtype: str

    @classmethod
    def of(cls, array: np.ndarray) -> "ConstArray":
        array = np.ascontiguousarray(array)
        return cls(array.tobytes(), tuple(array.shape), array.dtype.str)

    @property
    def value(self) -> np.ndarray:
        return np.frombuffer(self.data, dtype=np.dtype(self.dtype)).reshape(self.shape)

    def __repr__(self) -> str:
        digest = hashlib.sha256(self.data).hexdigest()[:16]
        return f"ConstArray({self.dtype},{list(self.shape)},{digest})"


# ---------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------
def input_node(b: Builder, name: str, position: int, shape: Shape, dtype: str,
               weak: bool = False) -> Node:
    """A parameter; `weak`: a Python number traced as a 0-d value, which takes the dtype of
    the arrays it meets (as the number itself would in numpy, and as in JAX)."""
    params = {"name": name, "position": position, **({"weak": True} if weak else {})}
    return b.node("input", (), params, tuple(shape), dtype)


def constant(b: Builder, value: Any, dtype: str | None = None) -> Node:
    """A scalar (Python number, weak) or an array constant (strong, numpy semantics)."""
    if isinstance(value, (bool, int, float)) and not isinstance(value, np.generic):
        if isinstance(value, bool) and dtype not in (None, "bool"):
            value = int(value)  # True in arithmetic is 1 (numpy: x * True is x)
        kind = "bool" if isinstance(value, bool) else dtype or np.result_type(value).name
        return b.node("const", (), {"value": value}, (), kind)
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TracingError(f"constant of dtype {array.dtype} is not supported")
    if array.ndim == 0 or (array.size > 1 and (array == array.flat[0]).all()
                           and array.flat[0] == array.flat[0]):
        # A uniform array (np.zeros, np.ones, np.full) is one strong scalar made full size.
        scalar = b.node("const", (), {"value": array.flat[0].item(), "strong": True}, (),
                        array.dtype.name)
        return broadcast_to(b, scalar, array.shape)
    return b.node("const", (), {"value": ConstArray.of(array)}, array.shape, array.dtype.name)


def as_node(b: Builder, operand: Operand, dtype: str | None = None) -> Node:
    return operand if isinstance(operand, Node) else constant(b, operand, dtype)


# ---------------------------------------------------------------------------------------------
# Elementwise
# ---------------------------------------------------------------------------------------------
_WEAK_PROBES = {"f": 0.0, "i": 0, "u": 0, "b": False}


def _dtype_probe(operand: Operand) -> Any:
    if isinstance(operand, Node):
        if operand.op == "const" and operand.shape == () and not operand.param("strong"):
            return operand.param("value")  # weak scalar constant
        if operand.param("weak") and operand.shape == ():  # a traced Python number
            return _WEAK_PROBES.get(np.dtype(operand.dtype).kind, np.empty(0, operand.dtype))
        return np.empty(0, operand.dtype)
    return operand


def _is_weak(operand: Operand) -> bool:
    if isinstance(operand, Node):
        return operand.shape == () and (bool(operand.param("weak")) or (
            operand.op == "const" and not operand.param("strong")))
    return isinstance(operand, (bool, int, float))


@lru_cache(maxsize=4096)
def _result_dtype(op: str, probes_key: tuple) -> str:
    probes = [np.empty(0, p[1]) if p[0] == "a" else p[2] for p in probes_key]
    if OPS[op].result is Result.BOOL:
        return "bool"
    if op in ("where", "clip"):
        return np.result_type(*probes[-2:] if op == "where" else probes).name
    # scipy.special ops resolve types as numpy's float ufuncs of the same arity do.
    ufunc = getattr(np, op, None) or (np.sin if OPS[op].arity == 1 else np.arctan2)
    with np.errstate(all="ignore"):
        return ufunc(*probes).dtype.name


def _probes_key(operands: Sequence[Operand]) -> tuple:
    key = []
    for probe in map(_dtype_probe, operands):
        # The scalar's type is part of the key: 2.0 == np.float64(2.0) == 2 as cache keys, but
        # numpy promotes them differently (np.float64 is strong, Python numbers are weak).
        key.append(("a", probe.dtype.name) if isinstance(probe, np.ndarray)
                   else ("s", type(probe).__name__, probe))
    return tuple(key)


def broadcast_shapes(op: str, shapes: Sequence[Shape], where: str | None) -> Shape:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(op, list(shapes), "they do not broadcast together", where) from None


def elementwise(b: Builder, op: str, *operands: Operand, weak_ok: bool = False) -> Node:
    """`weak_ok`: the result of a Python operator on weak values is weak (see input_node)."""
    record = OPS[op]
    weak = weak_ok and any(isinstance(o, Node) and o.param("weak") for o in operands) \
        and all(_is_weak(o) for o in operands) and record.result is not Result.BOOL
    dtype = _result_dtype(op, _probes_key(operands))
    check_promotion(b, op, operands, dtype)
    if op == "where":
        cond, *values = operands
        cond = _as_bool(b, cond)
        values = [_cast(b, v, dtype) for v in values]
        operands = (cond, *values)
    elif record.result is Result.BOOL:
        common = np.result_type(*map(_dtype_probe, operands)).name
        operands = tuple(_cast(b, o, common) for o in operands)
    else:
        operands = tuple(_cast(b, o, dtype) for o in operands)
    nodes = [as_node(b, o, dtype) for o in operands]
    shape = broadcast_shapes(op, [n.shape for n in nodes], str(b.site) if b.site else None)
    return b.node(op, nodes, {"weak": True} if weak else {}, shape, dtype)


def ew(b: Builder, expr: Any, inputs: Sequence[Node], shape: Shape, dtype: str) -> Node:
    """An elementwise node made by differentiation: `expr` is SymPy over symbols a0, a1, ..."""
    return b.node("ew", inputs, {"expr": expr}, tuple(shape), dtype)


def _cast(b: Builder, operand: Operand, dtype: str) -> Operand:
    if isinstance(operand, Node) and operand.dtype != dtype:
        if operand.op == "const" and operand.shape == () and not operand.param("strong"):
            value = operand.param("value")
            value = int(value) if isinstance(value, bool) and dtype != "bool" else value
            return b.node("const", (), {"value": value}, (), dtype)
        return astype(b, operand, dtype)
    return operand


def _as_bool(b: Builder, operand: Operand) -> Operand:
    if isinstance(operand, Node) and operand.dtype != "bool":
        return elementwise(b, "not_equal", operand, 0)
    if not isinstance(operand, Node):
        return bool(operand)
    return operand


def astype(b: Builder, x: Node, dtype: str) -> Node:
    dtype = np.dtype(dtype).name
    if x.dtype == dtype:
        return x
    if np.dtype(dtype).kind == "c":  # the graph is real: complex values are pairs of parts
        raise TracingError(f"a cast to {dtype} is not supported here (at {b.site}): make "
                           "complex values with x.astype(complex), x + 0j or x + 1j * y")
    return b.node("astype", (x,), {"dtype": dtype}, x.shape, dtype)


def stop_gradient(b: Builder, x: Node) -> Node:
    return b.node("stop_gradient", (x,), {}, x.shape, x.dtype)


# ---------------------------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------------------------
def normalize_axes(op: str, axis: Any, ndim: int, where: str | None,
                   shape: Shape | None = None) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    shown = [shape if shape is not None else ()]
    result = []
    for a in axes:
        a = operator.index(a)
        if not -ndim <= a < ndim:
            raise ShapeError(op, shown, f"axis {a} is out of bounds for an array of {ndim} dims",
                             where)
        result.append(a % ndim)
    if len(set(result)) != len(result):
        raise ShapeError(op, shown, f"repeated axis in {axis!r}", where)
    return tuple(sorted(result))


def reduced_shape(shape: Shape, axes: tuple[int, ...], keepdims: bool) -> Shape:
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def reduce_sum(b: Builder, x: Node, axes: tuple[int, ...], keepdims: bool = False) -> Node:
    if not axes:
        return x
    dtype = np.add.reduce(np.empty((0,), x.dtype)).dtype.name
    return b.node("sum", (x,), {"axes": axes, "keepdims": keepdims},
                  reduced_shape(x.shape, axes, keepdims), dtype)


# ---------------------------------------------------------------------------------------------
# Movement
# ---------------------------------------------------------------------------------------------
def reshape(b: Builder, x: Node, shape: Sequence[int]) -> Node:
    shape = tuple(operator.index(d) for d in shape)
    if shape.count(-1) > 1:
        raise ShapeError("reshape", [x.shape], f"can only infer one dimension in {shape}",
                         str(b.site) if b.site else None)
    if -1 in shape:
        known = 1
        for d in shape:
            if d != -1:
                known *= d
        if known == 0 or x.size % known:
            raise ShapeError("reshape", [x.shape], f"cannot reshape into {shape}",
                             str(b.site) if b.site else None)
        shape = tuple(x.size // known if d == -1 else d for d in shape)
    if int(np.prod(shape, dtype=np.int64)) != x.size:
        raise ShapeError("reshape", [x.shape], f"cannot reshape array of size {x.size} into "
                         f"shape {shape}", str(b.site) if b.site else None)
    if shape == x.shape:
        return x
    if x.op == "reshape":  # reshape of a reshape is one reshape
        x = x.inputs[0]
        if shape == x.shape:
            return x
    return b.node("reshape", (x,), {"shape": shape}, shape, x.dtype)


def transpose(b: Builder, x: Node, perm: Sequence[int] | None = None) -> Node:
    perm = tuple(reversed(range(x.ndim))) if perm is None else tuple(
        operator.index(p) % max(x.ndim, 1) for p in perm)
    if sorted(perm) != list(range(x.ndim)):
        raise ShapeError("transpose", [x.shape], f"axes {perm} are not a permutation",
                         str(b.site) if b.site else None)
    if x.op == "transpose":  # a transpose of a transpose is one transpose (or none)
        inner = x.param("perm")
        x, perm = x.inputs[0], tuple(inner[p] for p in perm)
    if perm == tuple(range(x.ndim)):
        return x
    shape = tuple(x.shape[p] for p in perm)
    return b.node("transpose", (x,), {"perm": perm}, shape, x.dtype)


def expand_dims(b: Builder, x: Node, axis: int) -> Node:
    """Insert a unit axis at position `axis` (0..ndim)."""
    return reshape(b, x, x.shape[:axis] + (1,) + x.shape[axis:])


def swap_last(b: Builder, x: Node) -> Node:
    perm = list(range(x.ndim))
    perm[-1], perm[-2] = perm[-2], perm[-1]
    return transpose(b, x, perm)


def broadcast_to(b: Builder, x: Node, shape: Sequence[int]) -> Node:
    shape = tuple(shape)
    if x.shape == shape:
        return x
    if broadcast_shapes("broadcast_to", [x.shape, shape], None) != shape:
        raise ShapeError("broadcast_to", [x.shape, shape], "cannot broadcast",
                         str(b.site) if b.site else None)
    return b.node("broadcast_to", (x,), {"shape": shape}, shape, x.dtype)


def unbroadcast(b: Builder, g: Node, shape: Shape) -> Node:
    """Sum `g` over the axes that broadcasting added or stretched, back to `shape`."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and g.shape[lead + i] != 1)
    if lead == 0:  # only stretched axes: keepdims gives `shape` itself, no reshape after
        return reduce_sum(b, g, axes, keepdims=True)
    summed = reduce_sum(b, g, axes, keepdims=False)
    return reshape(b, summed, shape)


def expand_to_rank(b: Builder, g: Node, shape: Shape, axes: tuple[int, ...]) -> Node:
    """Undo a reduction over `axes` without keepdims: put the reduced axes back as size 1."""
    kept = reduced_shape(shape, axes, keepdims=True)
    return reshape(b, g, kept)


# ---------------------------------------------------------------------------------------------
# Linear algebra
# ---------------------------------------------------------------------------------------------
def matmul(b: Builder, x: Node, y: Node) -> Node:
    where = str(b.site) if b.site else None
    if x.ndim == 0 or y.ndim == 0:
        raise ShapeError("matmul", [x.shape, y.shape], "matmul does not take 0-d operands", where)
    dtype = np.result_type(np.empty(0, x.dtype), np.empty(0, y.dtype)).name
    x, y = astype(b, x, dtype), astype(b, y, dtype)
    xs = (1,) + x.shape if x.ndim == 1 else x.shape
    ys = y.shape + (1,) if y.ndim == 1 else y.shape
    if xs[-1] != ys[-2]:
        raise ShapeError("matmul", [x.shape, y.shape],
                         f"contracted dimensions {xs[-1]} and {ys[-2]} differ", where)
    batch = broadcast_shapes("matmul", [xs[:-2], ys[:-2]], where)
    shape = batch + (() if x.ndim == 1 else (xs[-2],)) + (() if y.ndim == 1 else (ys[-1],))
    return b.node("matmul", (x, y), {}, shape, dtype)


# ---------------------------------------------------------------------------------------------
# Indexing (basic: integers, slices, None, Ellipsis)
# ---------------------------------------------------------------------------------------------
def normalize_basic_index(index: Any, shape: Shape, where: str | None) -> tuple:
    """A canonical, hashable basic index: entries ('s', start, stop, step), ('i', k), ('n',)."""
    return normalize_index(index if isinstance(index, tuple) else (index,), shape, where)


def normalize_index(index: tuple, shape: Shape, where: str | None) -> tuple:
    """Entries ('s', start, stop, step), ('i', k), ('n',), ('a', j): canonical and hashable.

    `index` holds ints, slices, None, Ellipsis, and ('a', j, ndim) markers for index arrays
    (advanced indexing, prim_index.py).
    """
    if sum(1 for i in index if i is Ellipsis) > 1:
        raise TracingError(f"an index can only have a single ellipsis (at {where})")
    consumed = sum(1 for i in index if i is not None and i is not Ellipsis)
    if consumed > len(shape):
        raise ShapeError("getitem", [shape], f"too many indices ({consumed}) for an array "
                         f"with {len(shape)} dims", where)
    out: list[tuple] = []
    dim = 0
    for item in index:
        if item is Ellipsis:
            for _ in range(len(shape) - consumed):
                out.append(("s", 0, shape[dim], 1))
                dim += 1
        elif item is None:
            out.append(("n",))
        elif isinstance(item, slice):
            out.append(("s", *item.indices(shape[dim])))
            dim += 1
        elif isinstance(item, tuple) and item and item[0] == "a":
            out.append(("a", item[1]))
            dim += 1
        else:
            k = operator.index(item)
            if not -shape[dim] <= k < shape[dim]:
                raise ShapeError("getitem", [shape], f"index {k} is out of bounds for axis "
                                 f"{dim} with size {shape[dim]}", where)
            out.append(("i", k % shape[dim]))
            dim += 1
    while dim < len(shape):
        out.append(("s", 0, shape[dim], 1))
        dim += 1
    return tuple(out)


def indexed_shape(index: tuple, shape: Shape) -> Shape:
    out = []
    dim = 0
    for entry in index:
        if entry[0] == "n":
            out.append(1)
        elif entry[0] == "s":
            out.append(len(range(entry[1], entry[2], entry[3])))
            dim += 1
        else:
            dim += 1
    return tuple(out)


def is_full_index(index: tuple, shape: Shape) -> bool:
    return all(e[0] == "s" for e in index) and all(
        e[1:] == (0, d, 1) for e, d in zip(index, shape))


def getitem(b: Builder, x: Node, index: Any) -> Node:
    index = normalize_basic_index(index, x.shape, str(b.site) if b.site else None)
    return getitem_normalized(b, x, index)


def moves_unit_axes_only(index: tuple, shape: Shape) -> bool:
    """The index only adds (None) or drops (0 on an axis of size 1) unit axes: a reshape."""
    dims = iter(shape)
    for entry in index:
        if entry[0] == "n":
            continue
        d = next(dims)
        if not (entry[0] == "s" and entry[1:] == (0, d, 1) or entry[0] == "i" and d == 1):
            return False
    return True


def getitem_normalized(b: Builder, x: Node, index: tuple) -> Node:
    if is_full_index(index, x.shape):
        return x
    if moves_unit_axes_only(index, x.shape):  # m[:, 0], x[None]: its adjoint is a reshape too
        return reshape(b, x, indexed_shape(index, x.shape))
    return b.node("getitem", (x,), {"index": index}, indexed_shape(index, x.shape), x.dtype)


def unslice(b: Builder, g: Node, index: tuple, shape: Shape) -> Node:
    return b.node("unslice", (g,), {"index": index, "shape": tuple(shape)}, tuple(shape), g.dtype)
