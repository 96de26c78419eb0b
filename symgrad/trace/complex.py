"""Complex values inside a traced function, as pairs of real traced arrays.

The graph stays real: a `ComplexTracer` holds the real and imaginary parts of a complex array
as two real Tracers, and complex arithmetic is real arithmetic on the parts (so SymPy
differentiates it, and `z * np.conj(z)` has an imaginary part that cancels to 0). Complex
values come from np.fft (trace/fft.py), from complex constants (`1j * x`,
`np.exp(-2j * np.pi * k / n)`), and from arithmetic with them; real-valued functions of them
(np.abs, np.real, np.imag, np.angle) lead back to real values.

- `np.abs(z)` is np.hypot(re, im) (no overflow; gradient 0 at z = 0, as PyTorch's);
  `np.angle(z)` is np.arctan2(im, re);
- `+ - * /`, `**` with an integer exponent, np.exp, np.log, np.square, np.reciprocal,
  np.conj, `@`, np.where, astype, indexing, and (complex_functions.py) sums, means, the
  shape functions, np.dot, np.vdot and np.linalg.norm act as numpy's do on complex arrays;
- a complex value cannot be a result of the traced function (return its parts, or a real
  function of it), and a complex *argument* is a `ComplexArgumentError` (`refuse_complex`).

On real arrays np.real, np.imag, np.conj and np.angle are their real-input values (x, 0, x,
arctan2(0, x)).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import (ComplexArgumentError, TracedConversionError, TracingError,
                      UnsupportedFunctionError)
from ..ir import primitives as prim
from .numpy_api import COMPLEX_HOOKS, boxed, elementwise, function_name, implements, on_nodes
from .tracer import METHODS, PROPERTIES, Tracer, bound_site, resolved, user_site

FAMILY = "Complex values (intermediates; complex arguments are refused)"  # in docs/ops.md


# ---------------------------------------------------------------------------------------------
# Real arrays: the complex-number functions' real-input values
# ---------------------------------------------------------------------------------------------
@implements(np.real)
def real(val: Any) -> Any:
    return val.re if isinstance(val, ComplexTracer) else val


def _zeros_like(x: Tracer) -> Tracer:
    builder = x.builder  # not on_nodes: reads only x's shape and dtype (a stale view is fine)
    with bound_site(builder):
        return boxed(builder, prim.broadcast_to(builder, prim.constant(builder, 0, x.dtype.name),
                                                x.shape))


@implements(np.imag)
def imag(val: Any) -> Any:
    return val.im if isinstance(val, ComplexTracer) else _zeros_like(val)


@implements(np.angle)
def angle(z: Any, deg: bool = False) -> Tracer:
    if isinstance(z, ComplexTracer):
        radians = np.arctan2(z.im, z.re)
    else:
        x = z if z.dtype.kind == "f" else z.astype(np.float64)
        radians = elementwise("arctan2", np.zeros((), dtype=x.dtype), x)  # 0 or pi (-0.0: pi)
    return elementwise("multiply", radians, 180 / np.pi) if deg else radians


def refuse_complex(name: str, dtype: str) -> None:
    if np.dtype(dtype).kind == "c":
        raise ComplexArgumentError(
            f"argument {name!r} is a {dtype} array: symgrad traces real arguments only (a "
            "complex value would be cast to real and lose its imaginary part). Pass np.real(z) "
            "and np.imag(z) as two float arrays and make the complex value inside the function "
            "(z = re + 1j * im); complex intermediates (np.fft, complex arithmetic) are traced.")


PROPERTIES["real"] = lambda self: real(self)
PROPERTIES["imag"] = lambda self: imag(self)
METHODS["conj"] = METHODS["conjugate"] = lambda self: elementwise("positive", self)


# ---------------------------------------------------------------------------------------------
# The complex tracer
# ---------------------------------------------------------------------------------------------
class ComplexTracer:
    """A complex array being traced: its real and imaginary parts, two real Tracers of one
    shape and float dtype."""

    __array_priority__ = 1001.0
    __slots__ = ("re", "im")
    _symgrad_complex = True

    def __init__(self, re: Tracer, im: Tracer, packed: Any = None):
        self.re, self.im = re, im
        # for names (trace.py): `Z = ...` names the parts Z_re, Z_im (and a transform Z)
        parts = re.builder.__dict__.setdefault("complex_parts", {})
        for part in (re.node, im.node):
            parts[part] = (re.node, im.node, packed)

    @property
    def builder(self) -> Any:
        return self.re.builder

    @property
    def shape(self) -> tuple[int, ...]:
        return self.re.shape

    @property
    def ndim(self) -> int:
        return self.re.ndim

    @property
    def size(self) -> int:
        return self.re.size

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.complex64 if self.re.dtype == np.float32 else np.complex128)

    real = property(lambda self: self.re)
    imag = property(lambda self: self.im)

    def __len__(self) -> int:
        return len(self.re)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return f"ComplexTracer({self.dtype.name}{list(self.shape)})"

    __bool__ = Tracer.__bool__  # refused, naming the line

    def _refuse(kind: str) -> Callable:
        def refuse(self: "ComplexTracer", *args: Any) -> Any:
            site = user_site()
            raise TracedConversionError(kind, f"{site}  `{site.text}`" if site else None)
        return refuse

    __float__ = _refuse("float() of a complex value")
    __int__ = _refuse("int() of a complex value")
    __complex__ = _refuse("complex()")
    __index__ = _refuse("as an index, a shape or a range bound")

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        site = user_site()
        raise TracingError(f"a traced complex value was converted to a concrete numpy array"
                           f"{f' at {site}  `{site.text}`' if site else ''}; keep it traced "
                           "(the functions on complex values are listed in docs/ops.md)")

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        with bound_site(self.builder):
            if method == "reduce" and ufunc is np.add:  # (axis 0 unless given, as numpy)
                return partwise(np.sum)(*inputs, **{"axis": 0, **kwargs})
            handler = UFUNCS.get(ufunc)
            if method != "__call__" or handler is None or kwargs.get("out") is not None:
                raise UnsupportedFunctionError(
                    f"numpy.{ufunc.__name__}{'' if method == '__call__' else '.' + method} of "
                    "a complex value", _site())
            return handler(*inputs)

    def __array_function__(self, func: Callable, types: Any, args: Any, kwargs: Any) -> Any:
        from .numpy_api import FUNCTIONS

        handler = FUNCTIONS.get(func) if func in ACCEPTS_COMPLEX else COMPLEX_FUNCTIONS.get(func)
        if handler is None:
            raise UnsupportedFunctionError(f"{function_name(func)} of a complex value", _site())
        with bound_site(self.builder):
            return handler(*args, **kwargs)

    def __getitem__(self, index: Any) -> "ComplexTracer":
        return ComplexTracer(self.re[index], self.im[index])

    def __setitem__(self, index: Any, value: Any) -> None:
        raise UnsupportedFunctionError("assignment into a complex value", _site())

    def conj(self) -> "ComplexTracer":
        return conjugate(self)

    conjugate = conj


def _site() -> str | None:
    site = user_site()
    return str(site) if site else None


# Functions of the real front end that take complex values too (they reach the hooks).
ACCEPTS_COMPLEX: set[Callable] = {np.real, np.imag, np.angle, np.where}
COMPLEX_FUNCTIONS: dict[Callable, Callable] = {}


def complex_function(*functions: Callable) -> Callable:
    def register(handler: Callable) -> Callable:
        for function in functions:
            COMPLEX_FUNCTIONS[function] = handler
        return handler
    return register


# ---------------------------------------------------------------------------------------------
# Operands as parts
# ---------------------------------------------------------------------------------------------
def is_complex(value: Any) -> bool:
    value = resolved(value)
    if isinstance(value, ComplexTracer) or isinstance(value, complex):
        return True
    return isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind == "c"


def split(value: Any) -> tuple[Any, Any]:
    """(real part, imaginary part) of an operand; the imaginary part None when it is zero."""
    value = resolved(value)
    if isinstance(value, ComplexTracer):
        return value.re, value.im
    if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind == "c":
        return value.real, value.imag
    if isinstance(value, complex):
        return value.real, value.imag
    return value, None


def made(re: Any, im: Any, *operands: Any) -> Any:
    """A ComplexTracer of parts (traced values or constants; None: zero); both parts zero
    (`x * 0j`): zeros shaped as the traced one of `operands`."""
    if _zero(re) and _zero(im):
        like = next(p for o in operands for p in split(o) if isinstance(p, Tracer))
        re = np.zeros_like(like) if np.ndim(re) == 0 else re + np.zeros_like(like)
    def build(b: Any, *nodes: Any) -> tuple:
        probe = nodes[0] if len(nodes) == 1 else prim.elementwise(b, "add", *nodes)
        dtype = probe.dtype if probe.dtype.startswith("float") else "float64"
        full = [prim.broadcast_to(b, prim.astype(b, n, dtype), probe.shape) for n in nodes]
        if im is None:
            full.append(prim.broadcast_to(b, prim.constant(b, 0, dtype), probe.shape))
        elif re is None:
            full.insert(0, prim.broadcast_to(b, prim.constant(b, 0, dtype), probe.shape))
        return tuple(full)
    return ComplexTracer(*on_nodes(build, *[p for p in (re, im) if p is not None]))


def _zero(x: Any) -> bool:
    return x is None or _exactly(x, 0.0)


def _plus(x: Any, y: Any) -> Any:
    return x if _zero(y) else y if _zero(x) else x + y


def _minus(x: Any, y: Any) -> Any:
    return x if _zero(y) else _negated(y) if _zero(x) else x - y


def _exactly(x: Any, number: float) -> bool:
    """A Python number (a part of a complex literal) equal to `number`."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == number


def _times(x: Any, y: Any) -> Any:
    """x * y; a zero part of a Python complex (the 0 of 1j) is an exact zero (None)."""
    if _zero(x) or _zero(y):
        return None
    return y if _exactly(x, 1.0) else x if _exactly(y, 1.0) else x * y


def _negated(x: Any) -> Any:
    return None if x is None else -x


# ---------------------------------------------------------------------------------------------
# Arithmetic on parts
# ---------------------------------------------------------------------------------------------
def add(z: Any, w: Any) -> Any:
    (a, b), (c, d) = split(z), split(w)
    return made(_plus(a, c), _plus(b, d), z, w)


def subtract(z: Any, w: Any) -> Any:
    (a, b), (c, d) = split(z), split(w)
    return made(_minus(a, c), _minus(b, d), z, w)


def multiply(z: Any, w: Any) -> Any:
    (a, b), (c, d) = split(z), split(w)
    return made(_minus(_times(a, c), _times(b, d)), _plus(_times(a, d), _times(b, c)), z, w)


def divide(z: Any, w: Any) -> Any:
    """z / w: by a constant w, times numpy's 1 / w; by a traced w, as numpy divides
    (docs/conventions.md, `complex-division`)."""
    (a, b), (c, d) = split(z), split(w)
    if d is None:
        return made(a / c, None if b is None else b / c)
    if not isinstance(resolved(w), ComplexTracer):
        return multiply(z, 1 / resolved(w))
    b = 0.0 if b is None else b
    wide = np.abs(c) >= np.abs(d)
    # Smith's method, as numpy: the smaller part over the larger, |ratio| <= 1. The clip (an
    # identity there, gradient 1) keeps it a value of its own, so that SymPy does not fold
    # d * (d / c) back into d**2 / c, which overflows.
    ratio = np.clip(np.where(wide, d / c, c / d), -1.0, 1.0)
    scale = np.where(wide, c + d * ratio, c * ratio + d)
    return made(np.where(wide, a + b * ratio, a * ratio + b) / scale,
                np.where(wide, b - a * ratio, b * ratio - a) / scale)


def negative(z: Any) -> Any:
    a, b = split(z)
    return made(-a, _negated(b))


def positive(z: Any) -> Any:
    return made(*split(z))


def conjugate(z: Any) -> Any:
    a, b = split(z)
    return made(a, _negated(b))


def square(z: Any) -> Any:
    return multiply(z, z)


def reciprocal(z: Any) -> Any:
    return divide(1.0, z)


def power(z: Any, k: Any) -> Any:
    """z ** k for an integer k (by squaring; negative: the reciprocal)."""
    if isinstance(k, (np.ndarray, np.generic)) and k.ndim == 0:
        k = k.item()
    if not isinstance(k, (int, float)) or isinstance(k, bool) or k != int(k):
        raise UnsupportedFunctionError("a complex power other than z ** (an integer)", _site())
    result, base, remaining = None, z, abs(int(k))
    while remaining:
        if remaining & 1:
            result = base if result is None else multiply(result, base)
        remaining >>= 1
        if remaining:
            base = multiply(base, base)
    if result is None:
        result = made(np.ones_like(split(z)[0]), None)
    return reciprocal(result) if k < 0 else result


def absolute(z: Any) -> Any:
    a, b = split(z)
    return np.abs(a) if b is None else np.hypot(a, b)


def exp(z: Any) -> Any:
    a, b = split(z)
    magnitude = np.exp(a)
    return made(magnitude, None) if b is None else made(magnitude * np.cos(b),
                                                        magnitude * np.sin(b))


def log(z: Any) -> Any:
    a, b = split(z)
    return made(np.log(np.hypot(a, b)), np.arctan2(b, a))


def matmul(z: Any, w: Any) -> Any:
    (a, b), (c, d) = split(z), split(w)
    mm = np.matmul
    both = None if b is None or d is None else mm(b, d)
    return made(_minus(mm(a, c), both), _plus(None if d is None else mm(a, d),
                                              None if b is None else mm(b, c)))


def where(condition: Any, z: Any, w: Any) -> Any:
    (a, b), (c, d) = split(z), split(w)
    zero = np.zeros((), dtype=np.float32)
    return made(np.where(condition, a, c), None if b is None and d is None else np.where(
        condition, zero if b is None else b, zero if d is None else d))


def astype(z: Any, dtype: Any, *args: Any, **kwargs: Any) -> Any:
    """z as complex64 or complex128 (its parts float32 or float64); a real dtype is refused
    (numpy would discard the imaginary part with a warning)."""
    dtype = np.dtype(dtype)
    if dtype.kind != "c":
        raise TracingError(f"a complex value cast to {dtype.name} (at {_site()}) would lose its "
                           "imaginary part: write np.real(z) (or np.abs(z)) first")
    part = np.empty(0, dtype).real.dtype
    a, b = split(z)
    return made(a.astype(part), None if b is None else b.astype(part))


UFUNCS: dict[np.ufunc, Callable] = {
    np.add: add, np.subtract: subtract, np.multiply: multiply, np.divide: divide,
    np.negative: negative, np.positive: positive, np.conjugate: conjugate, np.square: square,
    np.reciprocal: reciprocal, np.power: power, np.absolute: absolute, np.exp: exp,
    np.log: log, np.matmul: matmul,
}

# The elementwise ops of the real front end, when an operand is complex (numpy_api.py).
COMPLEX_HOOKS.update({
    "add": add, "subtract": subtract, "multiply": multiply, "divide": divide,
    "negative": negative, "positive": positive, "square": square, "reciprocal": reciprocal,
    "power": power, "abs": absolute, "exp": exp, "log": log, "where": where, "matmul": matmul,
    "astype": astype,
})

_OPERATORS = {"add": add, "sub": subtract, "mul": multiply, "truediv": divide, "pow": power,
              "matmul": matmul}
for _name, _function in _OPERATORS.items():
    setattr(ComplexTracer, f"__{_name}__", lambda self, other, f=_function: f(self, other))
    if _name != "pow":
        setattr(ComplexTracer, f"__r{_name}__", lambda self, other, f=_function: f(other, self))
ComplexTracer.__rpow__ = lambda self, other: power(other, self)
ComplexTracer.__neg__ = negative
ComplexTracer.__pos__ = positive
ComplexTracer.__abs__ = absolute
for _name in ("eq", "ne", "lt", "le", "gt", "ge"):
    setattr(ComplexTracer, f"__{_name}__", lambda self, other: _no_order())


def _no_order() -> Any:
    raise UnsupportedFunctionError("a comparison of complex values (compare np.abs or the "
                                   "parts)", _site())


ComplexTracer.__hash__ = object.__hash__


# ---------------------------------------------------------------------------------------------
# Functions that act on each part alike (linear in the array, the rest static)
# ---------------------------------------------------------------------------------------------
def partwise(function: Callable) -> Callable:
    def both_parts(z: Any, *args: Any, **kwargs: Any) -> ComplexTracer:
        a, b = split(z)
        return made(function(a, *args, **kwargs),
                    None if b is None else function(b, *args, **kwargs))
    return both_parts
