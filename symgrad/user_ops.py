"""User-defined elementwise primitives: `sg.elementwise(name, sympy_lambda)`.

The SymPy expression is built once, when the primitive is defined (over the positional
symbols a0, a1, ... that every elementwise form uses), and checked there: it must use only
its arguments, and numpy must be able to print it and its first derivative. Traced, the
primitive is one `ew` node carrying that same expression object and the sanitised name, so
tracing builds no SymPy objects and a warm cache imports no SymPy. Its derivatives of any
order come from `sympy.diff`, its code from the printer, like every built-in elementwise op.
"""
from __future__ import annotations

import inspect
import keyword
import re
from typing import Any, Callable

import numpy as np

from .ir import primitives as prim
from .errors import ArgumentError
from .trace.tracer import Tracer, bound_site

_NOT_NAME = re.compile(r"\W+", re.ASCII)


def sanitised(name: Any) -> str:
    """`name` as a Python identifier: other characters become `_`, a leading digit or a
    keyword gets an affix, at most 40 characters."""
    text = _NOT_NAME.sub("_", str(name)).strip("_")[:40] or "elementwise"
    if text[0].isdigit():
        text = "f_" + text
    if keyword.iskeyword(text) or keyword.issoftkeyword(text):
        text += "_"
    return text


class Elementwise:
    """An elementwise primitive given by a SymPy expression (see `symgrad.elementwise`)."""

    def __init__(self, name: str, form: Callable, arity: int | None = None):
        import sympy as sp

        from .backends.numpy.printer import NumpyExpressionPrinter
        from .symbolic.expressions import _operand_symbol  # the symbols of the built-in forms

        if not callable(form):
            raise ArgumentError(f"symgrad.elementwise({name!r}, ...): the form must be a "
                                f"function of SymPy symbols, got {form!r}")
        self.name = sanitised(name)
        if arity is None:
            try:
                arity = len(inspect.signature(form).parameters)
            except (TypeError, ValueError):
                raise ArgumentError(f"elementwise {self.name}: give arity=, the form's "
                                    "parameters cannot be read") from None
        self.arity = int(arity)
        symbols = [_operand_symbol(k, False) for k in range(self.arity)]
        try:
            expr = sp.sympify(form(*symbols))
        except (TypeError, ValueError, sp.SympifyError) as error:
            raise ArgumentError(f"elementwise {self.name}: its form does not give a SymPy "
                                f"expression ({error})") from None
        stray = sorted(map(str, expr.free_symbols - set(symbols)))
        if stray:
            raise ArgumentError(f"elementwise {self.name}: the form uses symbols other than "
                                f"its arguments: {', '.join(stray)}")
        printer = NumpyExpressionPrinter({s: f"x{k}" for k, s in enumerate(symbols)})
        for shown in [expr] + [sp.diff(expr, s) for s in symbols]:
            try:
                printer.doprint(shown)
            except NotImplementedError as error:
                raise ArgumentError(f"elementwise {self.name}: {error} (in {shown}); use "
                                    "functions numpy has") from None
        self.expr = expr
        self.__name__ = self.name
        self._jit: Any = None

    def __repr__(self) -> str:
        return f"<symgrad elementwise {self.name}: {self.expr}>"

    def __call__(self, *args: Any) -> Any:
        if len(args) != self.arity:
            raise ArgumentError(f"elementwise {self.name} takes {self.arity} arguments, got "
                                f"{len(args)}")
        tracer = next((a for a in args if isinstance(a, Tracer)), None)
        if tracer is None:  # plain arrays: the same generated code, compiled once per shape
            if self._jit is None:
                from .transforms.compiled import CompiledFunction

                self._jit = CompiledFunction(self._call_traced_only, "jit")
            return self._jit(*[np.asarray(a, dtype=np.result_type(a, np.float16)) for a in args])
        builder = tracer.builder
        with bound_site(builder):
            nodes = [a.node if isinstance(a, Tracer) else prim.constant(builder, a)
                     for a in args]
            dtype = np.result_type(*[np.empty(0, n.dtype) for n in nodes], np.float16).name
            nodes = [prim.astype(builder, n, dtype) for n in nodes]
            shape = prim.broadcast_shapes(self.name, [n.shape for n in nodes],
                                          str(builder.site) if builder.site else None)
            node = builder.node("ew", nodes, {"expr": self.expr, "name": self.name}, shape,
                                dtype)
        return Tracer(node, builder)

    def _call_traced_only(self, *args: Any) -> Any:
        return self(*args)


def elementwise(name: str, form: Callable, *, arity: int | None = None) -> Elementwise:
    """A user-defined elementwise primitive from a SymPy expression, differentiated to any
    order by SymPy and printed as numpy like the built-in ops.

    Arguments: `name` (any text; sanitised to an identifier before it reaches a graph or
    generated code), `form` (a function of SymPy symbols returning a SymPy expression, e.g.
    `lambda x: sp.log(1 + sp.exp(x))`), `arity` (default: the form's number of parameters).
    The expression is built and checked once, here (it may use only its arguments and
    functions numpy has); calls inside traced code add one node and build no SymPy objects.
    Returns a callable taking arrays (numpy broadcasting) or traced values; on plain arrays
    it runs the generated code.

    Example::

        import numpy as np
        import sympy as sp
        import symgrad as sg

        softclip = sg.elementwise("soft clip", lambda x, c: c * sp.tanh(x / c))
        x = np.array([-3.0, 0.5, 4.0])
        g = sg.grad(lambda x: np.sum(softclip(x, 2.0)))(x)
        assert softclip.name == "soft_clip" and np.allclose(g, 1 - np.tanh(x / 2) ** 2)
    """
    return Elementwise(name, form, arity)
