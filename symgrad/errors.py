"""Error classes. Each one says what went wrong, where in the user's code, and what to do instead.

Errors are raised at trace or differentiation time, never from inside generated code.
"""
from __future__ import annotations

# every error class, in the order defined: `symgrad.errors` is an entry point of its own
__all__ = [
    "SymgradError", "TracingError", "UnsupportedFunctionError", "TracedBoolError",
    "TracedConversionError", "MutationError", "DtypePromotionError", "ShapeError",
    "GradientError", "NotDifferentiableError", "NonScalarOutputError", "ArgumentError",
    "GeneratedCodeError", "NotDecomposableError", "ComplexArgumentError", "CompilerError",
]


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
        y = sg.cond(x.sum() > 0, lambda x: x, lambda x: -x, x)   # only one branch runs
    """

    def __init__(self, where: str | None):
        at = f" at {where}" if where else ""
        super().__init__(
            f"Python control flow on a traced array value{at}: the value is not known while "
            "symgrad traces the function. Use np.where(condition, a, b) to select values, "
            "sg.cond(pred, true_fn, false_fn, *operands) or sg.switch(index, branches, "
            "*operands) to run one branch, sg.while_loop(cond_fn, body_fn, init) for a loop "
            "that runs while a traced condition holds (sg.fori_loop or sg.scan for a fixed "
            "number of steps), or branch on shapes and Python constants instead."
        )


class TracedConversionError(TracingError):
    """A traced value turned into a Python number: `float(x)`, `math.exp(x)`, `int(x)`, or a
    traced value used as a shape, a range bound or a slice index.

    Example::

        math.exp(x[0])     # refused: the number is not known while tracing
        np.exp(x[0])       # the traceable form
    """

    def __init__(self, conversion: str, where: str | None, hint: str | None = None):
        at = f" at {where}" if where else ""
        super().__init__(
            f"a traced value was converted to a Python number ({conversion}){at}: its value is "
            "not known while symgrad traces the function. "
            + (hint or "Keep it an array: use numpy functions (np.exp, not math.exp; x, not "
               "float(x)); shapes, range bounds and indices must be Python integers or static "
               "arguments (static_argnames=), not values computed from the inputs.")
        )


class MutationError(TracingError):
    """An argument of the traced function modified in place (`x[0] = 1`, `x += 1`,
    `np.add.at(x, ...)`).

    symgrad functions are pure: the caller's array is never modified, which would differ from
    numpy. Copy first::

        x = x.copy()
        x[0] = 1
    """

    def __init__(self, what: str, where: str | None):
        at = f" at {where}" if where else ""
        super().__init__(
            f"{what} modifies an argument of the traced function in place{at}; symgrad "
            "functions are pure and never modify the caller's arrays (numpy would). Write "
            "`x = x.copy()` first and modify the copy.")


class DtypePromotionError(TracingError):
    """A float32 array promoted to float64 by a numpy scalar, with
    SYMGRAD_DTYPE_PROMOTION=error (symgrad/ir/promotion.py)."""


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


class NotDecomposableError(TracingError):
    """A loss called with Dask arrays that does not split over their chunks of rows.

    Example::

        np.mean((x - x.mean(0)) ** 2)   # batch statistics: every row needs every other row
        np.mean(x @ w) + np.max(x @ w)  # a max over rows added to a mean
    """


class ComplexArgumentError(ArgumentError, TracingError):
    """A complex array argument: symgrad traces real arrays only (pass the real and
    imaginary parts as two float arrays)."""


class CompilerError(SymgradError):
    """backend='c' found no C compiler, or the compiler failed on the generated code."""
