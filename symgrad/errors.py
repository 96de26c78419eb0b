"""Error classes. Each one says what went wrong, where in the user's code, and what to do instead.

Errors are raised at trace or differentiation time, never from inside generated code.
"""
from __future__ import annotations


class SymgradError(Exception):
    """Base class of every error symgrad raises on purpose."""


class TracingError(SymgradError):
    """The user's function did something that cannot be traced into a static graph."""


class UnsupportedFunctionError(TracingError):
    """A numpy function (or ufunc, or method) that symgrad has no op for.

    Example::

        np.fft.fft(x)   # -> UnsupportedFunctionError: numpy.fft.fft is not supported ...
    """

    def __init__(self, name: str, where: str | None = None):
        at = f" (at {where})" if where else ""
        super().__init__(
            f"numpy function {name!r} is not supported by symgrad{at}. "
            "See `symgrad ops` or docs/ops.md for the supported operations."
        )
        self.function_name = name


class TracedBoolError(TracingError):
    """Python control flow (`if`, `while`, `and`, `bool()`) on a traced array value.

    Example::

        if x.sum() > 0:            # refused: the value is unknown while tracing
            y = x
        y = np.where(x.sum() > 0, x, -x)   # the traceable form
    """

    def __init__(self, where: str | None):
        at = f" at {where}" if where else ""
        super().__init__(
            f"Python control flow on a traced array value{at}: the value is not known while "
            "symgrad traces the function. Use np.where(condition, a, b) to select values, "
            "or branch on shapes and Python constants instead."
        )


class ShapeError(TracingError):
    """Operand shapes that do not fit the operation (named with the op and the user's line)."""

    def __init__(self, op: str, shapes: list[tuple[int, ...]], detail: str, where: str | None):
        at = f" at {where}" if where else ""
        shown = ", ".join(str(tuple(s)) for s in shapes)
        super().__init__(f"{op}: operands with shapes {shown} do not fit{at}: {detail}")


class GradientError(SymgradError):
    """A gradient that cannot be produced: not implemented, or undefined."""


class NotDifferentiableError(GradientError):
    """The gradient with respect to an argument that is not a float array (labels, indices)."""


class NonScalarOutputError(GradientError):
    """`grad` / `value_and_grad` of a function whose output is not a scalar."""


class ArgumentError(SymgradError, TypeError):
    """A `wrt` that names no parameter, a wrong number of arguments, or an unusable argument."""


class GeneratedCodeError(SymgradError):
    """Generated source failed the safety check before execution (a bug in symgrad)."""


class CompilerError(SymgradError):
    """backend='c' found no C compiler, or the compiler failed on the generated code."""
