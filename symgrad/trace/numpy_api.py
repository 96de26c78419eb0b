"""The numpy front end: what `np.*` functions, ufuncs, operators and methods mean on tracers.

Each entry translates numpy's calling convention (axis, keepdims, Python scalars, ...) into
primitive calls. Adding a numpy function is a row of the op table (an elementwise op: its ufunc
traces to it by name, see `UFUNC_OPS`) or one
`@implements` function here or in its family's module, written on nodes with the shared setup:

    @implements(np.transpose)
    def transpose(a, axes=None):
        return on_nodes(lambda b, x: prim.transpose(b, x, axes), a)

(`on_nodes`: the builder, the user's line for nodes and errors, the arguments as nodes, the
result boxed.)
"""
from __future__ import annotations

import operator
import sys
from typing import Any, Callable

import numpy as np

from ..ir import primitives as prim
from ..errors import TracingError, UnsupportedFunctionError
from ..ir.graph import Builder, Node
from ..ir.ops import OPS, Group
from .tracer import (METHODS, OPERATORS, PROPERTIES, Tracer, bound_site, check_fresh, is_active,
                     resolved, user_site)

FAMILY = "Elementwise, matmul, sum/mean, reshape/transpose, where"  # its heading in docs/ops.md

# numpy ufunc -> elementwise op name: the op table's (an op's own name, and `also`)
UFUNC_OPS: dict[np.ufunc, str] = {
    getattr(np, name): op for op, record in OPS.items() if record.group is Group.ELEMENTWISE
    for name in (op, *record.also) if isinstance(getattr(np, name, None), np.ufunc)}

# scipy.special ufunc name -> elementwise op; looked up only once scipy is imported (by the user:
# importing scipy.special costs ~0.6 s, and symgrad never pays it itself).
SCIPY_SPECIAL_OPS: dict[str, str] = {
    "expit": "expit", "log_expit": "log_expit", "logit": "logit", "erf": "erf", "erfc": "erfc",
    "xlogy": "xlogy", "xlog1py": "xlog1py", "gammaln": "gammaln", "digamma": "digamma",
    "psi": "digamma",
}


def ufunc_op(ufunc: np.ufunc) -> str | None:
    """The elementwise op of a numpy (or, when scipy is loaded, scipy.special) ufunc."""
    op = UFUNC_OPS.get(ufunc)
    if op is None:
        special = sys.modules.get("scipy.special")
        name = SCIPY_SPECIAL_OPS.get(getattr(ufunc, "__name__", ""))
        if special is not None and name is not None and getattr(
                special, ufunc.__name__, None) is ufunc:
            op = name
    return op

FUNCTIONS: dict[Callable, Callable] = {}


def implements(*functions: Callable) -> Callable:
    def register(handler: Callable) -> Callable:
        for function in functions:
            FUNCTIONS[function] = handler
        return handler
    return register


_PUBLIC_NAMESPACES = (("numpy", np), ("numpy.linalg", np.linalg), ("numpy.fft", np.fft),
                      ("numpy.random", np.random), ("numpy.lib", np.lib))


def function_name(func: Any) -> str:
    """The public name of a numpy function (numpy.linalg.inv, not numpy._core...)."""
    name = getattr(func, "__name__", repr(func))
    for prefix, namespace in _PUBLIC_NAMESPACES:
        if getattr(namespace, name, None) is func:
            return f"{prefix}.{name}"
    module = getattr(func, "__module__", None) or "numpy"
    return f"{module}.{name}"


# ---------------------------------------------------------------------------------------------
# Boxing
# ---------------------------------------------------------------------------------------------
def _builder_of(values: Any) -> Builder:
    for value in values:
        if isinstance(value, Tracer):
            return value.builder
        if isinstance(value, (list, tuple)):
            for inner in value:
                if isinstance(inner, Tracer):
                    return inner.builder
    raise TracingError("no traced value among the operands")


def unwrap(builder: Builder, value: Any) -> prim.Operand:
    """A node for traced values and numpy constants; Python scalars stay weak scalars."""
    value = resolved(value)
    if isinstance(value, Tracer):
        check_fresh(value)
        if value.builder is not builder and not is_active(value.builder):
            site = user_site()
            raise TracingError("a traced value from a trace that has ended was used"
                               f"{f' at {site}' if site else ''} (a value kept from an earlier "
                               "call, e.g. in a global or a list); return it from the traced "
                               "function instead")
        return value.node
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (np.ndarray, np.generic)):
        return prim.constant(builder, value)
    if isinstance(value, (list, tuple)):
        return prim.constant(builder, np.asarray(value))
    raise TracingError(f"cannot use a {type(value).__name__} as an array operand")


def node_of(builder: Builder, value: Any) -> Node:
    return prim.as_node(builder, unwrap(builder, value))


def boxed(builder: Builder, result: Any) -> Any:
    """A node as a Tracer; a tuple, named tuple or list of them element by element; anything
    else (a Tracer of a composed call, a ComplexTracer, None) as it is."""
    if isinstance(result, Node):
        return Tracer(result, builder)
    if isinstance(result, list):
        return [boxed(builder, r) for r in result]
    if isinstance(result, tuple):
        boxes = [boxed(builder, r) for r in result]
        return type(result)(*boxes) if hasattr(result, "_fields") else tuple(boxes)
    return result


def on_nodes(build: Callable[..., Any], *arrays: Any, others: tuple = ()) -> Any:
    """The setup every numpy function on tracers shares: `build(builder, *nodes)` run at the
    user's line on the nodes of `arrays`, and what it returns boxed (`boxed`).

    - the builder is the trace of the first traced value among `arrays` and then `others`
      (arguments that `build` reads itself, such as an index; a list or tuple among them is
      looked into); none traced is a TracingError;
    - inside `build` every node made carries the user's source line (`bound_site`), also
      when the handler is called as a method or from another handler, and `_where(builder)`
      names that line for an error message (with the op and its shapes);
    - each of `arrays` is converted in order by `node_of` (a Tracer's node, checked fresh and
      of a live trace; numpy arrays, lists and Python numbers as constants): pass a sequence
      of arrays unpacked, `on_nodes(build, *arrays)`, and `build` takes `*nodes`.
    """
    builder = _builder_of(arrays + others)
    with bound_site(builder):
        return boxed(builder, build(builder, *[node_of(builder, a) for a in arrays]))


# ---------------------------------------------------------------------------------------------
# Ufuncs and operators
# ---------------------------------------------------------------------------------------------
# A ufunc's methods other than __call__ that trace: (ufunc or None for any, method) ->
# handler(ufunc, *inputs, **kwargs), filled by the families (`update.py`: at, `sort.py`:
# accumulate of maximum, minimum, add, multiply).
UFUNC_METHODS: dict[tuple[Any, str], Callable[..., Any]] = {}


def apply_ufunc(builder: Builder, ufunc: np.ufunc, method: str, inputs: tuple,
                kwargs: dict) -> Any:
    with bound_site(builder):
        if method == "reduce" and ufunc is np.add:  # (ufunc.reduce's axis defaults to 0)
            return reduce_sum(inputs[0], **{"axis": 0, **kwargs})
        handler = UFUNC_METHODS.get((ufunc, method)) or UFUNC_METHODS.get((None, method))
        if handler is not None:
            return handler(ufunc, *inputs, **kwargs)
        if method != "__call__":
            raise UnsupportedFunctionError(f"numpy.{ufunc.__name__}.{method}",
                                           _where(builder))
        unsupported = set(kwargs) - {"dtype", "casting"}
        if kwargs.get("out") is not None or unsupported - {"out"}:
            raise TracingError(f"numpy.{ufunc.__name__}: the arguments "
                               f"{sorted(unsupported)} are not supported while tracing "
                               f"(at {_where(builder)}); write the result to a new value")
        if ufunc is np.matmul:
            return matmul(*inputs)
        op = ufunc_op(ufunc)
        if op is None:
            raise UnsupportedFunctionError(f"numpy.{ufunc.__name__}", _where(builder))
        if ufunc is np.float_power:  # computes in float64 whatever the inputs
            inputs = tuple(astype(i, "float64") if isinstance(i, Tracer) else i for i in inputs)
        result = elementwise(op, *inputs)
        if kwargs.get("dtype") is not None:
            result = astype(result, kwargs["dtype"])
        return result


def _where(builder: Builder) -> str | None:
    site = builder.site or user_site()
    return str(site) if site else None


# op -> its complex form, for operands of which one is complex (frontend_complex.py)
COMPLEX_HOOKS: dict[str, Callable] = {}


def complex_operand(value: Any) -> bool:
    """A traced complex value, a complex constant or a Python complex."""
    value = resolved(value)
    if isinstance(value, (np.ndarray, np.generic)):
        return value.dtype.kind == "c"
    return isinstance(value, complex) or getattr(type(value), "_symgrad_complex", False)


def _complex_form(op: str, operands: tuple) -> Callable | None:
    if not any(complex_operand(o) for o in operands):
        return None
    form = COMPLEX_HOOKS.get(op)
    if form is None:
        raise UnsupportedFunctionError(f"{op} of a complex value", _where(_builder_of(
            [getattr(o, "re", o) for o in operands])))
    return form


def elementwise(op: str, *operands: Any, operator: bool = False) -> Tracer:
    """`operator`: a Python operator (`s * 2`), whose result stays weakly typed when its
    operands are (Python numbers traced as weak values); a numpy function's never is
    (`np.sqrt(3)` is an np.float64)."""
    form = _complex_form(op, operands)
    if form is not None:
        return form(*operands)
    builder = _builder_of(operands)
    with bound_site(builder):  # not on_nodes: Python numbers stay weak scalars (`unwrap`)
        nodes = [unwrap(builder, o) for o in operands]
        return boxed(builder, prim.elementwise(builder, op, *nodes, weak_ok=operator))


def _binary(op: str, reflected: bool = False) -> Callable:
    if reflected:
        return lambda self, other: elementwise(op, other, self, operator=True)
    return lambda self, other: elementwise(op, self, other, operator=True)


def _unary(op: str) -> Callable:
    return lambda self: elementwise(op, self, operator=True)


_ARITHMETIC = {"add": "add", "sub": "subtract", "mul": "multiply", "truediv": "divide",
               "pow": "power", "and": "logical_and", "or": "logical_or", "xor": "logical_xor",
               "mod": "remainder", "floordiv": "floor_divide"}
_COMPARISONS = {"gt": "greater", "ge": "greater_equal", "lt": "less", "le": "less_equal",
                "eq": "equal", "ne": "not_equal"}  # reflected by Python itself (3 < x: x > 3)
for _name, _op in _ARITHMETIC.items():
    OPERATORS[_name] = _binary(_op)
    OPERATORS[f"r{_name}"] = _binary(_op, reflected=True)
for _name, _op in _COMPARISONS.items():
    OPERATORS[_name] = _binary(_op)
OPERATORS.update(neg=_unary("negative"), pos=_unary("positive"), abs=_unary("abs"),
                 invert=_unary("logical_not"),
                 matmul=lambda self, other: matmul(self, other),
                 rmatmul=lambda self, other: matmul(other, self),
                 divmod=lambda self, other: (self // other, self % other),
                 rdivmod=lambda self, other: (other // self, other % self))

# Python operators numpy defines that symgrad has no op for: refused by the numpy function each
# calls and the user's line (Python's own TypeError would name neither)
_REFUSED_OPERATORS = {"lshift": ("<<", "left_shift"), "rshift": (">>", "right_shift")}


def _refused(symbol: str, function: str) -> Callable:
    def refuse(*operands: Any) -> Any:
        raise UnsupportedFunctionError(f"numpy.{function} (the {symbol} operator)",
                                       _where(_builder_of(operands)))
    return refuse


for _name, (_symbol, _function) in _REFUSED_OPERATORS.items():
    for _form in (_name, f"r{_name}", f"i{_name}"):
        OPERATORS[_form] = _refused(_symbol, _function)


# ---------------------------------------------------------------------------------------------
# Functions
# ---------------------------------------------------------------------------------------------
@implements(np.matmul)
def matmul(a: Any, b: Any) -> Tracer:
    form = _complex_form("matmul", (a, b))
    if form is not None:
        return form(a, b)
    return on_nodes(prim.matmul, a, b)


def _reduction_args(kwargs: dict, name: str, builder: Builder) -> None:
    for key in ("out", "where", "initial"):
        if kwargs.get(key) is not None:
            raise TracingError(f"numpy.{name}: argument {key!r} is not supported while "
                               f"tracing (at {_where(builder)})")


@implements(np.sum)
def reduce_sum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
               keepdims: bool = False, **kwargs: Any) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        _reduction_args({"out": out, **kwargs}, "sum", b)
        if dtype is not None:
            x = prim.astype(b, x, dtype)
        axes = prim.normalize_axes("sum", axis, x.ndim, _where(b), x.shape)
        result = prim.reduce_sum(b, x, axes, bool(keepdims))
        if not axes and x.dtype in ("bool", "int8", "int16", "int32", "uint8"):
            result = prim.astype(b, x, "int64")
        return result
    return on_nodes(build, a)


@implements(np.mean)
def mean(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
         keepdims: bool = False, **kwargs: Any) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        _reduction_args({"out": out, **kwargs}, "mean", b)
        if dtype is not None or x.dtype[0] in "biu":
            x = prim.astype(b, x, dtype or "float64")
        axes = prim.normalize_axes("mean", axis, x.ndim, _where(b), x.shape)
        count = 1
        for ax in axes:
            count *= x.shape[ax]
        return prim.elementwise(b, "divide", prim.reduce_sum(b, x, axes, bool(keepdims)), count)
    return on_nodes(build, a)


@implements(np.transpose)
def transpose(a: Any, axes: Any = None) -> Tracer:
    return on_nodes(lambda b, x: prim.transpose(b, x, axes), a)


@implements(np.reshape)
def reshape(a: Any, shape: Any = None, order: str = "C", *, newshape: Any = None,
            copy: Any = None) -> Tracer:
    def build(b: Builder, x: Node) -> Node:
        if order != "C":
            raise TracingError(f"numpy.reshape: order={order!r} is not supported (at "
                               f"{_where(b)})")
        given = newshape if shape is None else shape
        return prim.reshape(b, x, (given,) if isinstance(given, (int, np.integer))
                            else tuple(given))
    return on_nodes(build, a)


@implements(np.ravel)
def ravel(a: Any, order: str = "C") -> Tracer:
    return reshape(a, (-1,), order)


@implements(np.broadcast_to)
def broadcast_to(array: Any, shape: Any, subok: bool = False) -> Tracer:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return on_nodes(lambda b, x: prim.broadcast_to(b, x, shape), array)


@implements(np.where)
def where(condition: Any, x: Any = None, y: Any = None) -> Tracer:
    if x is None or y is None:  # (the select binds its own site: elementwise)
        builder = _builder_of((condition,))
        raise UnsupportedFunctionError("numpy.where with one argument (data-dependent shape)",
                                       _where(builder))
    return elementwise("where", condition, x, y)


_NO_VALUE = getattr(np, "_NoValue", None)


def _given(value: Any) -> bool:
    return value is not None and value is not _NO_VALUE


@implements(np.clip)
def clip(a: Any, a_min: Any = None, a_max: Any = None, out: Any = None, *, min: Any = None,
         max: Any = None, **kwargs: Any) -> Tracer:
    """np.clip and ndarray.clip; a missing bound is infinite (torch.clamp's gradient)."""
    builder = _builder_of((a,))  # for the error's line only: `elementwise` binds the site
    if _given(out) or kwargs:
        raise TracingError(f"numpy.clip: the arguments {sorted(['out'] * _given(out) + list(kwargs))}"
                           f" are not supported while tracing (at {_where(builder)})")
    lower = a_min if _given(a_min) else min if _given(min) else None
    upper = a_max if _given(a_max) else max if _given(max) else None
    if lower is None and upper is None:
        return elementwise("positive", a)
    return elementwise("clip", a, -np.inf if lower is None else lower,
                       np.inf if upper is None else upper)


@implements(np.round, np.around)
def round_(a: Any, decimals: int = 0, out: Any = None) -> Tracer:
    """Round half to even, as numpy: x * 10**d, rint, / 10**d. The gradient is zero."""
    def build(b: Builder, x: Node) -> Any:
        if out is not None:
            raise TracingError(f"numpy.round: argument 'out' is not supported while tracing "
                               f"(at {_where(b)})")
        places = operator.index(decimals)
        if x.dtype[0] in "biu":
            if places >= 0:
                return a
            raise UnsupportedFunctionError("numpy.round of integers with negative decimals",
                                           _where(b))
        if places == 0:
            return elementwise("rint", a)
        scale = 10.0 ** abs(places)
        if places > 0:
            return elementwise("divide", elementwise("rint", elementwise("multiply", a, scale)),
                               scale)
        return elementwise("multiply", elementwise("rint", elementwise("divide", a, scale)),
                           scale)
    return on_nodes(build, a)


def astype(a: Tracer, dtype: Any, order: str = "K", casting: str = "unsafe",
           subok: bool = True, copy: bool = True) -> Tracer:
    if np.dtype(dtype).kind == "c":  # a complex value of parts (trace/complex.py)
        return COMPLEX_HOOKS["astype"](a, dtype)
    return on_nodes(lambda b, x: prim.astype(b, x, np.dtype(dtype).name), a)


def stop_gradient(a: Tracer) -> Tracer:
    return on_nodes(prim.stop_gradient, a)


# ---------------------------------------------------------------------------------------------
# Methods and attributes
# ---------------------------------------------------------------------------------------------
def _shape_args(args: tuple) -> tuple:
    if len(args) == 1 and not isinstance(args[0], (int, np.integer)):
        return tuple(args[0])
    return tuple(args)


METHODS["astype"] = astype
METHODS["clip"] = lambda self, min=None, max=None, out=None, **kwargs: clip(self, min, max, out,
                                                                        **kwargs)
METHODS["sum"] = lambda self, axis=None, dtype=None, out=None, keepdims=False: reduce_sum(
    self, axis, dtype, out, keepdims)
METHODS["mean"] = lambda self, axis=None, dtype=None, out=None, keepdims=False: mean(
    self, axis, dtype, out, keepdims)
METHODS["reshape"] = lambda self, *shape, order="C": reshape(self, _shape_args(shape), order)
METHODS["transpose"] = lambda self, *axes: transpose(self, _shape_args(axes) or None)
PROPERTIES["T"] = lambda self: transpose(self)
METHODS["ravel"] = lambda self, order="C": ravel(self, order)
METHODS["flatten"] = lambda self, order="C": ravel(self, order)
METHODS["round"] = lambda self, decimals=0, out=None: round_(self, decimals, out)
