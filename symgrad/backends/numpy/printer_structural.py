"""The numpy text of the structural ops (reductions, movement, indexing, constants): one
formatter per op in `STRUCTURAL`, and the small code builders the statements use. Split from
`printer.py`, which prints the SymPy expressions.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ...ir.linalg import index_letters
from .einsum_forms import readable_einsum, spelled_infix
from ...ir.graph import Node
from ...ir.index import positions_distinct
from ..speed_rules import SHORT_ROW_FOR_EXTREMA, TINY_ROW, row_reduction
from ...ir.primitives import ConstArray


def float_literal(value: float) -> str:
    """A float as source text that evaluates to exactly the same float."""
    if value != value:
        return "np.nan"
    if value in (float("inf"), float("-inf")):
        return "np.inf" if value > 0 else "-np.inf"
    return repr(float(value))


# ---------------------------------------------------------------------------------------------
# Structural ops
# ---------------------------------------------------------------------------------------------
def dtype_code(dtype: str) -> str:
    return f"np.{np.dtype(dtype).name}"


def _axes_code(axes: tuple[int, ...]) -> str:
    return str(axes[0]) if len(axes) == 1 else str(tuple(axes))


def _kept_trailing(code: str, node: Node) -> str:
    """`code` (the reduction of trailing axes, without keepdims) with those axes kept."""
    if not node.param("keepdims"):
        return code
    kept = node.inputs[0].ndim - len(node.param("axes"))
    return f"{code}[{', '.join([':'] * kept + ['None'] * len(node.param('axes')))}]"


def _sum(node: Node, a: str, over_all_rows: bool = True) -> str:
    # The method, not np.sum: the same reduction without np.sum's Python-level dispatch
    # (about 1 us a call, which shows on small arrays).
    axes = node.param("axes")
    keep = ", keepdims=True" if node.param("keepdims") else ""
    if axes == tuple(range(node.inputs[0].ndim)) and not keep:
        return sum_code(a)
    rows = row_reduction(node.inputs[0].shape, axes)
    if over_all_rows and rows and node.inputs[0].is_float and node.dtype == node.inputs[0].dtype:
        if len(axes) == 1 and 2 <= rows[1] <= TINY_ROW:  # the columns added, in numpy's order
            columns = " + ".join(f"{a}[..., {j}]" for j in range(rows[1]))
            return _kept_trailing(f"({columns})", node)
        # einsum: one pass over all the rows
        letters = index_letters(node.inputs[0].ndim)
        kept = letters[:len(letters) - len(axes)]
        return _kept_trailing(readable_einsum([letters], kept, [a]), node)
    return f"{a}.sum(axis={_axes_code(axes)}{keep})"


def sum_code(a: str) -> str:
    """The sum of all elements of the array named `a`."""
    return f"{a}.sum()"


def _reduction(function: str) -> Callable[..., str]:
    def formatter(node: Node, a: str, over_all_rows: bool = True) -> str:
        axes = node.param("axes")
        keep = ", keepdims=True" if node.param("keepdims") else ""
        if axes == tuple(range(node.inputs[0].ndim)) and not keep:
            return f"{function}({a})"
        rows = row_reduction(node.inputs[0].shape, axes)
        if over_all_rows and function in ("np.max", "np.min") and rows and len(axes) == 1 \
                and rows[1] <= SHORT_ROW_FOR_EXTREMA:  # moved first: np.maximum over all rows
            return _kept_trailing(f"{function}(np.moveaxis({a}, -1, 0).copy(), axis=0)", node)
        return f"{function}({a}, axis={_axes_code(axes)}{keep})"
    return formatter


def plain_code(node: Node, *arguments: str) -> str:
    """A structural op as a reader expects it (`x.sum(axis=1)`), where STRUCTURAL prints a
    faster form (`np.einsum('ij->i', x)`): for the comment above such a statement and for
    the derivative shown as math."""
    if node.op in ("sum", "max", "min"):
        return STRUCTURAL[node.op](node, *arguments, over_all_rows=False)
    if node.op == "einsum":
        return _summed_product(node, *arguments) or STRUCTURAL[node.op](node, *arguments)
    return STRUCTURAL[node.op](node, *arguments)


def spelled_with_operator(node: Node, plain: bool = False) -> bool:
    """Whether STRUCTURAL (or, with `plain`, plain_code) writes `node` with an operator outside
    brackets (`x @ w`, an einsum spelled as a product): it binds like `*` inside an expression.
    Every other structural form is a name, a view, a subscript or a call: an atom."""
    if node.op == "matmul":
        return True
    if node.op != "einsum" or (plain and _summed_product(node, "a", "b") is not None):
        return False
    inputs, output = node.param("subscripts").split("->")
    return spelled_infix(inputs.split(","), output)


def _summed_product(node: Node, *operands: str) -> str | None:
    """`(a*b).sum(axis=1)` for the einsum `'ij,ij->i'` of a and b (optimize.py writes such
    a sum of products over short rows as this einsum); None for any other einsum."""
    inputs, output = node.param("subscripts").split("->")
    parts = inputs.split(",")
    if len(parts) != 2 or parts[0] != parts[1] or len(set(parts[0])) != len(parts[0]) \
            or not output or output == parts[0] or not parts[0].startswith(output):
        return None
    axes = tuple(range(len(output), len(parts[0])))
    return f"({operands[0]}*{operands[1]}).sum(axis={_axes_code(axes)})"


def _norm(node: Node, a: str) -> str:
    ndim = node.inputs[0].ndim
    if node.param("axes") == tuple(range(ndim)) and ndim > 2:  # np.linalg.norm's own ravel
        return f"np.linalg.norm({a}{', keepdims=True' if node.param('keepdims') else ''})"
    if len(node.param("axes")) <= 2 or node.param("axes") == tuple(range(ndim)):
        return _reduction("np.linalg.norm")(node, a)
    return _reduction("np.sqrt(np.sum")(node, f"np.square({a})") + ")"


def _arg_reduction(node: Node, a: str) -> str:
    axis = node.param("axis")
    keep = ", keepdims=True" if node.param("keepdims") else ""
    return f"np.{node.op}({a}{'' if axis is None else f', axis={axis}'}{keep})"


def _pad(node: Node, a: str) -> str:
    widths = node.param("widths")
    value = node.param("value")
    fill = "" if value == 0 else f", constant_values={_scalar_code(value)}"
    return f"np.pad({a}, {widths}{fill})"


def _scalar_code(value: Any) -> str:
    return float_literal(value) if isinstance(value, float) else repr(value)


def _einsum(node: Node, *operands: str) -> str:
    inputs, output = node.param("subscripts").split("->")
    return readable_einsum(inputs.split(","), output, operands)


def _reshape(node: Node, a: str) -> str:
    source, target = node.inputs[0].shape, node.shape
    inserted = _unit_insertions(source, target)
    if inserted is not None:
        return _index_text(a, ["None" if i in inserted else ":" for i in range(len(target))])
    removed = _unit_insertions(target, source)
    if removed is not None and removed:
        return _index_text(a, ["0" if i in removed else ":" for i in range(len(source))])
    return f"np.reshape({a}, {tuple(target)})"


def _index_text(a: str, parts: list[str]) -> str:
    while parts and parts[-1] == ":":
        parts.pop()
    return f"{a}[{', '.join(parts)}]"


def _unit_insertions(source: tuple, target: tuple) -> set[int] | None:
    """Positions of the unit axes that turn `source` into `target`, if that is all it takes."""
    inserted, j = set(), 0
    for i, d in enumerate(target):
        if j < len(source) and source[j] == d:
            j += 1
        elif d == 1:
            inserted.add(i)
        else:
            return None
    return inserted if j == len(source) else None


def _transpose(node: Node, a: str) -> str:
    perm = node.param("perm")
    if perm == tuple(reversed(range(len(perm)))):
        return f"{a}.T" if len(perm) == 2 else f"np.transpose({a})"
    swap = list(range(len(perm)))
    swap[-1], swap[-2] = swap[-2], swap[-1]
    if perm == tuple(swap):
        return f"np.swapaxes({a}, -1, -2)"
    return f"np.transpose({a}, {perm})"


def index_code(index: tuple, shape: tuple | None = None,
               arrays: Sequence[str] = ()) -> str:
    """A normalised index as source. With the indexed `shape`, default bounds are left out
    (`x[:, ::-1]`, not `x[0:4, 2::-1]`); ('a', k) entries print as the k-th of `arrays`."""
    parts = []
    dims = iter(shape) if shape is not None else None
    for entry in index:
        if entry[0] == "n":
            parts.append("None")
            continue
        size = next(dims) if dims is not None else None
        if entry[0] == "i":
            parts.append(str(entry[1]))
        elif entry[0] == "a":
            parts.append(arrays[entry[1]])
        else:
            parts.append(_slice_code(*entry[1:], size))
    while len(parts) > 1 and parts[-1] == ":":
        parts.pop()
    return ", ".join(parts) if parts else "..."


def _slice_code(start: int, stop: int, step: int, size: int | None) -> str:
    if step > 0:
        text = "" if start == 0 else str(start)
        text += ":" + ("" if stop == size else str(stop))
    else:
        text = "" if size is not None and start == size - 1 else str(start)
        text += ":" + ("" if stop < 0 else str(stop))
    return text + ("" if step == 1 else f":{step}")


STRUCTURAL: dict[str, Callable[..., str]] = {
    "sum": _sum,
    "reshape": _reshape,
    "transpose": _transpose,
    "broadcast_to": lambda node, a: f"np.broadcast_to({a}, {node.shape})",
    # a 0-d value may be a Python number (a loop's counter): np.float64(i), not i.astype
    "astype": lambda node, a: (f"{dtype_code(node.dtype)}({a})" if node.shape == ()
                               else f"{a}.astype({dtype_code(node.dtype)})"),
    "stop_gradient": lambda node, a: a,  # the identity on values
    "custom_rule": lambda node, a, *rest: a,  # its value (custom.strip_rules removes it first)
    "getitem": lambda node, a: f"{a}[{index_code(node.param('index'), node.inputs[0].shape)}]",
    "unslice": lambda node, a: (
        f"_unslice({a}, {node.shape}, np.s_[{index_code(node.param('index'), node.shape)}])"),
    "matmul": lambda node, a, b: f"{a} @ {b}",
    "max": _reduction("np.max"),
    "min": _reduction("np.min"),
    "prod": _reduction("np.prod"),
    "norm": _norm,
    "cumsum": lambda node, a: f"np.cumsum({a}, axis={node.param('axis')})",
    "cumprod": lambda node, a: f"np.cumprod({a}, axis={node.param('axis')})",
    "argmax": _arg_reduction,
    "argmin": _arg_reduction,
    "concatenate": lambda node, *xs: (
        f"np.concatenate([{', '.join(xs)}], axis={node.param('axis')})"),
    "pad": _pad,
    "gather": lambda node, a, *arrays: (
        f"{a}[{index_code(node.param('index'), node.inputs[0].shape, arrays)}]"),
    "scatter_add": lambda node, g, *arrays: (
        f"_{structural_helper(node)}({g}, {node.shape}, "
        f"np.s_[{index_code(node.param('index'), node.shape, arrays)}])"),
    "einsum": _einsum,
    "loop_out": lambda node, a: f"{a}[{node.param('index')}]",  # a result of a loop driver
    # Loops call their driver function (loop_code.py); this form is only for reading.
    "scan": lambda node, *xs: f"scan({node.param('body').name}, {', '.join(xs)})",
    "while": lambda node, *xs: f"while_loop({node.param('body').name}, {', '.join(xs)})",
    "cond": lambda node, *xs: f"switch({', '.join(xs)})",
}

STRUCTURAL_HELPERS = {"unslice": "unslice", "scatter_add": "scatter_add"}

def structural_helper(node: Node) -> str | None:
    """The helper of the generated module that computes `node`, if any: a scatter whose
    positions are all distinct is an assignment (`_unslice`), not an accumulation."""
    if node.op == "scatter_add" and positions_distinct(node.inputs[1:]):
        return "unslice"
    return STRUCTURAL_HELPERS.get(node.op)


def const_array_code(value: ConstArray) -> str:
    array = value.value
    dtype = dtype_code(array.dtype.name)
    if array.size == 0:  # np.array([]) would lose the shape
        return f"np.zeros({array.shape}, dtype={dtype})"
    if array.ndim == 1 and array.size > 1 and array.dtype.kind in "iuf" \
            and np.array_equal(array, np.arange(array.size)):
        return f"np.arange({array.size}, dtype={dtype})"
    if array.ndim == 2 and array.shape[0] == array.shape[1] > 1 \
            and np.array_equal(array, np.eye(array.shape[0])):
        return f"np.eye({array.shape[0]}, dtype={dtype})"
    if array.dtype.kind == "f":
        body = _nested_list(array, float_literal)
    else:
        body = _nested_list(array, lambda v: repr(v.item() if hasattr(v, "item") else v))
    return f"np.array({body}, dtype={dtype_code(array.dtype.name)})"


def _nested_list(array: np.ndarray, fmt: Callable[[Any], str]) -> str:
    if array.ndim == 0:
        return fmt(array.item())
    return "[" + ", ".join(_nested_list(sub, fmt) for sub in array) + "]"


def fill_code(shape: tuple[int, ...], value_code: str, dtype: str, is_constant: bool,
              value: Any = None) -> str:
    """A value of smaller (broadcast) shape made full size; `value` is what `value_code` prints
    (an integer 0 or 1 fills with np.zeros or np.ones)."""
    whole = isinstance(value, int) or getattr(value, "is_Integer", False)
    if is_constant and shape and whole and int(value) in (0, 1):
        return f"np.{'zeros' if int(value) == 0 else 'ones'}({shape}, dtype={dtype_code(dtype)})"
    if is_constant:
        return f"np.full({shape}, {value_code}, dtype={dtype_code(dtype)})"
    return f"np.broadcast_to({value_code}, {shape})"


def cast_code(code: str, dtype: str) -> str:
    """An expression typed by Python scalars only (np.where(c, 1, 0)) as an array of `dtype`."""
    return f"np.asarray({code}, dtype={dtype_code(dtype)})"


def owned_copy_code(code: str) -> str:
    return f"{code}.copy()"


def empty_code(shape: tuple[int, ...], dtype: str) -> str:
    """A full array that a blocked region fills one block of rows at a time."""
    return f"np.empty({shape}, dtype={dtype_code(dtype)})"


def blocks_call_code(function: str, rows: int, block_rows: int, arrays: Sequence[str]) -> str:
    return f"_in_blocks({function}, {rows}, {block_rows}, {', '.join(arrays)})"


def matmul_into_code(a: str, b: str, out: str) -> str:
    return f"np.matmul({a}, {b}, out={out})"


def column_code(code: str, k: int, grouped: bool = False) -> str:
    """Column `k` of the last axis of the array `code` prints (a primary: a name, view or
    call, subscripted as it is; `grouped`: an operator expression, in parentheses)."""
    return f"({code})[..., {k}]" if grouped else f"{code}[..., {k}]"


def whole_code(name: str) -> str:
    """The whole array `name`, as the target of an assignment that writes into it."""
    return f"{name}[...]"


def tuple_code(items: Sequence[str], parenthesized: bool = False, trailing: bool = False
               ) -> str:
    """A tuple display (`a, b`), with the comma of one item (`a,`); `trailing`: a comma after
    the last item however many there are (`a, b,`)."""
    text = ", ".join(items) + ("," if trailing or len(items) == 1 else "")
    return f"({text})" if parenthesized else text


# numpy.linalg (printer_linalg.py)
from .printer_linalg import LINALG_HELPERS, LINALG_STRUCTURAL  # noqa: E402

STRUCTURAL.update(LINALG_STRUCTURAL)
STRUCTURAL_HELPERS.update(LINALG_HELPERS)

# sorting (printer_sort.py)
from .printer_sort import SORT_STRUCTURAL  # noqa: E402

STRUCTURAL.update(SORT_STRUCTURAL)

# numpy.fft (printer_fft.py)
from .printer_fft import FFT_HELPERS, FFT_STRUCTURAL  # noqa: E402

STRUCTURAL.update(FFT_STRUCTURAL)
STRUCTURAL_HELPERS.update(FFT_HELPERS)
