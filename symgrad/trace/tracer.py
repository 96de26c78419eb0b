"""Tracing: run the user's function on `Tracer` boxes and record a graph.

A Tracer is a thin box around a graph node. Operators, `__array_ufunc__` and
`__array_function__` all funnel into the numpy front end (`numpy_frontend.py`), which binds
primitives. Shapes and dtypes are static; Python control flow on a traced value is refused with
an error that names the line.
"""
from __future__ import annotations

import linecache
import os
import sys
import threading
import types
from typing import Any, Callable, Sequence

import numpy as np

from ..ir import primitives as prim
from ..errors import (ArgumentError, TracedBoolError, TracedConversionError, TracingError,
                      UnsupportedFunctionError)
from ..ir.graph import Builder, Graph, LoopName, Node, Site
from ..specs import ArgSpec

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # symgrad/
_ACTIVE = threading.local()  # the builders of the traces running on this thread
_NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__))


def _is_user_frame(frame: Any) -> bool:
    filename = frame.f_code.co_filename
    return not (filename.startswith(_PACKAGE_DIR) or filename.startswith(_NUMPY_DIR)
                or filename.startswith("<frozen"))


def _site(frame: Any) -> Site:
    filename = frame.f_code.co_filename
    return Site(filename, frame.f_lineno, linecache.getline(filename, frame.f_lineno).strip())


def user_site() -> Site | None:
    """The innermost stack frame that belongs to neither symgrad nor numpy."""
    frame = sys._getframe(1)
    while frame is not None:
        if _is_user_frame(frame):
            return _site(frame)
        frame = frame.f_back
    return None


ARGUMENT = "argument"  # the origin of a traced argument
TRACED = "_symgrad_traced"  # a numpy array made while tracing and then updated: its Tracer


VIEW = "_symgrad_view"  # a numpy view made while tracing: (base array, index)


def traced_array(value: Any) -> "Tracer | None":
    """The Tracer of a numpy array made while tracing that an update made traced; for a view
    of one, the view of its Tracer (as numpy, it shows the base's current values)."""
    extra = getattr(value, "__dict__", None) if isinstance(value, np.ndarray) else None
    if not extra:
        return None
    if VIEW in extra:
        base, index = extra[VIEW]
        tracer = traced_array(base)
        return None if tracer is None else tracer[index]
    return extra.get(TRACED)


def resolved(value: Any) -> Any:
    """`value`, or the Tracer it became (`traced_array`)."""
    tracer = traced_array(value)
    return value if tracer is None else tracer


# What a Tracer does for Python's operators and for ndarray's methods and properties, by name:
# the op-family modules (`numpy_api.py`, `shape.py`, ...) fill these tables, and the Tracer
# dispatches every operator (`bind`) and every attribute (`__getattr__`) through them.
OPERATORS: dict[str, Callable[..., Any]] = {}  # "add" -> fn(self, other), "radd", "neg", ...
METHODS: dict[str, Callable[..., Any]] = {}  # "sum" -> fn(self, axis=None, ...)
PROPERTIES: dict[str, Callable[[Any], Any]] = {}  # "T" -> fn(self)

# Python's operators a Tracer has: each `__name__` is `bind(name, self, *operands)`.
OPERATOR_NAMES = (
    "add", "radd", "sub", "rsub", "mul", "rmul", "truediv", "rtruediv", "pow", "rpow",
    "matmul", "rmatmul", "and", "rand", "or", "ror", "xor", "rxor",
    "gt", "ge", "lt", "le", "eq", "ne", "neg", "pos", "abs", "invert",
    "iadd", "isub", "imul", "itruediv", "ipow", "getitem", "setitem",
    "mod", "rmod", "floordiv", "rfloordiv", "divmod", "rdivmod",
    # numpy's too, refused with the user's line (numpy_api._REFUSED_OPERATORS)
    "lshift", "rlshift", "ilshift", "rshift", "rrshift", "irshift")


def bind(name: str, *operands: Any) -> Any:
    """Python's operator `name` applied to traced operands, from the table `OPERATORS`."""
    return OPERATORS[name](*operands)


class Tracer:
    """An array value being traced: shape and dtype are known, the numbers are not."""

    __array_priority__ = 1000.0
    __hash__ = object.__hash__  # __eq__ is elementwise, as for numpy arrays
    # `origin`: None for a value the function made, ARGUMENT for an argument (never modified
    # in place), or (base, index, version) for a view `base[index]` (frontend_update.py).
    __slots__ = ("node", "builder", "origin", "version")

    def __init__(self, node: Node, builder: Builder, origin: Any = None):
        self.node = node
        self.builder = builder
        self.origin = origin
        self.version = 0  # counts in-place updates: views made before one are stale

    # -- static facts, available during tracing --------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.node.shape

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.node.dtype)

    @property
    def ndim(self) -> int:
        return self.node.ndim

    @property
    def size(self) -> int:
        return self.node.size

    def __len__(self) -> int:
        if not self.node.shape:
            raise TypeError("len() of a 0-d traced array")
        return self.node.shape[0]

    def __repr__(self) -> str:
        return f"Tracer({self.node.dtype}{list(self.node.shape)})"

    def __getattr__(self, name: str) -> Any:
        """ndarray's methods and properties, from the tables the op families fill."""
        if name in PROPERTIES:
            return PROPERTIES[name](self)
        method = METHODS.get(name)
        if method is not None:
            return types.MethodType(method, self)
        if name.startswith("__"):
            raise AttributeError(name)
        if hasattr(np.ndarray, name):
            site = user_site()
            raise UnsupportedFunctionError(f"ndarray.{name}", str(site) if site else None)
        raise AttributeError(f"traced array has no attribute {name!r}")

    # -- refusals ----------------------------------------------------------------------------
    def __bool__(self) -> bool:
        site = user_site()
        raise TracedBoolError(f"{site}  `{site.text}`" if site else None)

    def _refuse_conversion(kind: str) -> Callable:
        def refuse(self: "Tracer", *args: Any) -> Any:
            site = user_site()
            hint = None
            if self.node.op == "input" and self.node.param("weak"):
                hint = (f"The argument {self.node.param('name')!r} is a Python number, traced so "
                        "that new values do not compile again; if it decides a shape or a loop "
                        "count, make it static: static_argnames=(...,) or static_argnums=(...,).")
            raise TracedConversionError(kind, f"{site}  `{site.text}`" if site else None, hint)
        return refuse

    __float__ = _refuse_conversion("float(), math.* or a Python float context")
    __int__ = _refuse_conversion("int()")
    __index__ = _refuse_conversion("as an index, a shape or a range bound")
    _refuse_axis = staticmethod(_refuse_conversion("as an axis, a shape or a count"))
    __complex__ = _refuse_conversion("complex()")

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        site = user_site()
        raise TracingError(
            f"a traced array was converted to a concrete numpy array"
            f"{f' at {site}  `{site.text}`' if site else ''}; this happens with functions "
            "symgrad does not know (they are listed in the error for np.* calls) or with "
            "np.array/np.asarray on a traced value. Keep values as arrays, without conversion.")

    def __iter__(self):
        if not self.node.shape:
            if self.node.op == "input" and self.node.param("weak"):  # a Python number
                self._refuse_axis(self)
            raise TypeError("iteration over a 0-d traced array")
        return (self[i] for i in range(self.node.shape[0]))

    # -- numpy's dispatch protocols ----------------------------------------------------------
    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        from .numpy_api import apply_ufunc

        return apply_ufunc(self.builder, ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Callable, types: Any, args: Any, kwargs: Any) -> Any:
        from .numpy_api import FUNCTIONS, function_name

        if any(getattr(t, "_symgrad_complex", False) for t in types):
            return NotImplemented  # the complex value's own handler (trace/complex.py)
        handler = FUNCTIONS.get(func)
        if handler is None:
            site = user_site()
            raise UnsupportedFunctionError(function_name(func), str(site) if site else None)
        with bound_site(self.builder):
            return handler(*args, **kwargs)

    # Operators, methods and attributes come from numpy_frontend (attached there).


class bound_site:
    """Attribute the nodes made inside this block to the user's current source line."""

    def __init__(self, builder: Builder):
        self.builder = builder

    def __enter__(self) -> None:
        self.saved = self.builder.site
        if self.saved is None:
            names = _bindings_of(self.builder)
            self.builder.site = names.enter(sys._getframe(1)) if names else user_site()

    def __exit__(self, *exc: Any) -> None:
        self.builder.site = self.saved


class Bindings:
    """The user's names of traced values: the local variables that held them.

    Each time an op begins (`bound_site`), the user's frames between the op and the start of
    this trace are looked at, and once more when the function has returned (a frame that has
    returned keeps its final locals). A value takes the first name it was seen with in the
    frame that made it or in a caller of that frame: `h = np.tanh(...)`, `l1, l2 = ...`,
    `logp = log_softmax(z)` (made in the helper, named by the caller). A name a value has only
    as the parameter of a function it was passed to (`def sigmoid(z)`) is used when it is
    unambiguous: the one value with that name, and no value has it as its own. The first
    binding seen wins (`a = b = f(x)` names it by the first of its locals); a rebound name
    names each value it held (`h`, `h1`, ... once the names are made unique), and one that a
    line gave several values (a loop's `x = f(x)`) is a `LoopName`. Looking at locals makes
    no node and reads no number: names only.
    """

    def __init__(self, builder: Builder, entry: Any):
        self.builder = builder
        self.entry = entry  # the frame that runs the trace: user frames are below it
        self.frames: dict[int, tuple[Any, tuple[int, ...]]] = {}  # id -> (frame, callers' ids)
        self.makers: dict[int, tuple[Site, int]] = {}  # id(site) -> (site, frame it is in)
        self.candidates: dict[Node, list[tuple[bool, str]]] = {}  # (own name?, name)

    def enter(self, frame: Any) -> Site | None:
        """Look at the user's frames above `frame`; the innermost one's line is the site."""
        chain = []
        while frame is not None and frame is not self.entry:
            if _is_user_frame(frame):
                chain.append(frame)
            frame = frame.f_back
        if frame is None or not chain:  # not inside this trace's function
            return user_site()
        for k, user in enumerate(chain):
            if id(user) not in self.frames:
                self.frames[id(user)] = (user, tuple(id(f) for f in chain[k + 1:]))
            self._look(user)
        site = _site(chain[0])  # the nodes of this op carry this very object
        self.makers[id(site)] = (site, id(chain[0]))
        return site

    def _look(self, frame: Any) -> None:
        """Note the names `frame` gives values of this trace (it makes no node: a numpy array
        updated with traced values counts, a view of one would be a new node)."""
        for name, value in frame.f_locals.items():
            if name == "_" or not name.isidentifier():
                continue
            if getattr(type(value), "_symgrad_complex", False):  # trace/complex.py
                self._complex(frame, name, value)
                continue
            tracer = value if isinstance(value, Tracer) else (getattr(
                value, "__dict__", {}).get(TRACED) if isinstance(value, np.ndarray) else None)
            if tracer is not None and tracer.builder is self.builder:
                self._note(frame, tracer.node, name)

    def _complex(self, frame: Any, name: str, value: Any) -> None:
        """A complex `Z` names its parts Z_re and Z_im, and the transform that made both Z."""
        if value.re.builder is not self.builder:
            return
        self._note(frame, value.re.node, f"{name}_re")
        self._note(frame, value.im.node, f"{name}_im")
        parts = getattr(self.builder, "complex_parts", {}).get(value.re.node)
        if parts is not None and parts[2] is not None:
            self._note(frame, parts[2], name)

    def _note(self, frame: Any, node: Node, name: str) -> None:
        if node.op in ("input", "const"):
            return
        maker = self._maker(node)
        own = maker is None or maker == id(frame) or id(frame) in self.frames[maker][1]
        self.candidates.setdefault(node, []).append((own, name))

    def _maker(self, node: Node) -> int | None:
        """The frame `node` was made in, where an op that began in this trace made it."""
        made = self.makers.get(id(node.site))
        return made[1] if made is not None and made[0] is node.site else None

    def names(self, parameters: Sequence[str]) -> dict[Node, str]:
        for frame, _ in list(self.frames.values()):  # the locals each frame ended with
            self._look(frame)
        own = {n: next(name for o, name in c if o) for n, c in self.candidates.items()
               if any(o for o, _ in c)}
        taken = set(own.values())
        passed: dict[str, list[Node]] = {}
        for node, candidates in self.candidates.items():
            for name in dict.fromkeys(name for o, name in candidates if not o):
                passed.setdefault(name, []).append(node)
        names = dict(own)
        for name, nodes in passed.items():
            if name not in taken and len(nodes) == 1 and nodes[0] not in names:
                names[nodes[0]] = name
        return _numbered(_loop_names(names), parameters)

    def release(self) -> None:
        self.frames.clear()  # frames hold the user's locals: let them go with the trace
        self.makers.clear()


def _numbered(names: dict[Node, str], parameters: Sequence[str]) -> dict[Node, str]:
    """Each value its own name: a name that several values held (`h` rebound, a helper's
    local in each call) or a parameter's goes to them in the order they were made, with a
    number (`h`, `h1`, `h2`) that no other name uses, so that adjoints follow (`h1_bar`)."""
    used = set(names.values()) | set(parameters)
    holders: dict[str, list[Node]] = {}
    for node in sorted(names, key=lambda n: n.serial):
        holders.setdefault(names[node], []).append(node)
    numbered = {}
    for name, nodes in holders.items():
        k = 0
        for position, node in enumerate(nodes):
            if position == 0 and name not in parameters:
                numbered[node] = name
                continue
            k += 1
            while f"{name}{k}" in used:
                k += 1
            used.add(f"{name}{k}")
            numbered[node] = type(name)(f"{name}{k}")
    return numbered


def _loop_names(names: dict[Node, str]) -> dict[Node, str]:
    """Names that one line gave several values (a loop's `x = f(x)`, a helper's local in
    each call) as `LoopName`s."""
    count: dict[tuple, int] = {}
    for node, name in names.items():
        if node.site is not None:
            where = (name, node.site.filename, node.site.lineno)
            count[where] = count.get(where, 0) + 1
    return {node: LoopName(name) if node.site is not None and count[
        (name, node.site.filename, node.site.lineno)] > 1 else name
        for node, name in names.items()}


def _bindings_of(builder: Builder) -> Bindings | None:
    for bindings in reversed(getattr(_ACTIVE, "bindings", ())):
        if bindings.builder is builder:
            return bindings
    return None


def check_fresh(value: Tracer) -> None:
    """Refuse a view read after its base was updated in place."""
    origin = value.origin
    while isinstance(origin, tuple):
        base, index, version = origin
        if base.version != version:
            raise TracingError(
                f"a view of an array was read after the array was modified in place (at "
                f"{_site_text()}); numpy would show the new values, the view holds the old ones. "
                "Index the array again after the update, or take a copy (`.copy()`) before it.")
        origin = base.origin


def _site_text() -> str | None:
    site = user_site()
    return f"{site}  `{site.text}`" if site else None


def _operator(name: str) -> Callable[..., Any]:
    def operator(self: Tracer, *operands: Any) -> Any:
        return bind(name, self, *operands)
    operator.__name__ = operator.__qualname__ = f"__{name}__"
    return operator


for _name in OPERATOR_NAMES:
    setattr(Tracer, f"__{_name}__", _operator(_name))


def trace_function(fn: Callable, specs: Sequence[ArgSpec],
                   builder: Builder | None = None) -> tuple[Graph, Any]:
    from .creation import tracing_numpy

    builder = builder or Builder()
    _ACTIVE.__dict__.setdefault("builders", []).append(builder)
    _ACTIVE.__dict__.setdefault("bindings", []).append(Bindings(builder, sys._getframe()))
    try:
        return _trace(fn, specs, builder, tracing_numpy, _ACTIVE.bindings[-1])
    finally:
        _ACTIVE.builders.pop()
        _ACTIVE.bindings.pop().release()


def is_active(builder: Builder) -> bool:
    """Whether `builder` belongs to a trace still running on this thread (an enclosing one,
    whose values an inner transform's function may close over)."""
    return any(b is builder for b in getattr(_ACTIVE, "builders", ()))


def _trace(fn: Callable, specs: Sequence[ArgSpec], builder: Builder,
           tracing_numpy: Callable, bindings: "Bindings") -> tuple[Graph, Any]:
    from .complex import refuse_complex
    from .scipy_special import traced_scipy_special

    inputs, args = [], []
    for position, spec in enumerate(specs):
        if spec.shape is None:
            args.append(spec.static_value)
            continue
        refuse_complex(spec.name, spec.dtype)
        if np.dtype(spec.dtype).kind not in "biuf":
            raise ArgumentError(f"argument {spec.name!r}: arrays of dtype {spec.dtype} are not "
                                "supported (symgrad traces bool, integer and float arrays)")
        node = prim.input_node(builder, spec.name, position, spec.shape, spec.dtype, spec.weak)
        inputs.append(node)
        args.append(Tracer(node, builder, ARGUMENT))
    with tracing_numpy(), traced_scipy_special(fn):
        result = fn(*args)
    outputs, structure = _flatten_output(result, builder)
    hints = bindings.names([spec.name for spec in specs])
    hints.update(getattr(builder, "result_names", {}))  # `h, ys = sg.scan(...)` (loops.py)
    graph = Graph(tuple(inputs), tuple(outputs), name_hints=hints)
    return graph, structure


def _flatten_output(result: Any, builder: Builder) -> tuple[list[Node], Any]:
    """Outputs as a flat node list plus a structure (an int leaf index, or a tuple/list)."""
    outputs: list[Node] = []

    def walk(value: Any) -> Any:
        if isinstance(value, (tuple, list)):
            return type(value)(walk(v) for v in value)
        value = resolved(value)
        if isinstance(value, Tracer):
            check_fresh(value)
            node = value.node
        elif getattr(value, "_symgrad_complex", False):
            raise TracingError(
                "the function returned a complex value; symgrad's results are real arrays: "
                "return np.real(z) and np.imag(z), or a real function of z such as np.abs(z)")
        elif isinstance(value, (int, float, bool, np.ndarray, np.generic)):
            node = prim.constant(builder, np.asarray(value))
        else:
            raise TracingError(f"the function returned a {type(value).__name__}; symgrad "
                               "functions return arrays, or tuples and lists of arrays")
        outputs.append(node)
        return len(outputs) - 1

    return outputs, walk(result)
