"""The op table: every operation the IR knows, grouped by family.

Elementwise ops carry their SymPy form (a function of a namespace `s` and the operand
expressions); their derivatives come from `sympy.diff` of that form, never from a hand rule.
Structural ops (reductions, movement, linear algebra, indexing) get their VJP from
`vjp_rules.py` and their numpy text from `printer.py`; the completeness test checks that every
op here has both. Nothing in this module imports SymPy: the forms are called only after lifting.
"""
from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass
from typing import Any, Callable


class Group(enum.Enum):
    SOURCE = "source"  # inputs and constants
    ELEMENTWISE = "elementwise"
    REDUCTION = "reduction"
    MOVEMENT = "movement"
    LINALG = "linalg"
    INDEXING = "indexing"
    LOOP = "loop"  # a body graph in its params, results through loop_out (loops.py)


class Memory(enum.Enum):
    """What a structural op's numpy result is, for buffer reuse and for writing an op inside
    another: a new array, a view of its operand (printed as a postfix or a call, `h.T`), or
    either (numpy decides: a reshape of a strided array copies). A READ_ONLY result is a view
    numpy marks read-only (np.broadcast_to): never written into, and a result is copied."""
    FRESH = "fresh"
    VIEW = "view"
    READ_ONLY = "read-only view"
    EITHER = "either"

    @property
    def shares_operand(self) -> bool:
        """Whether the result is (or may be) a view of the op's first operand."""
        return self in (Memory.VIEW, Memory.READ_ONLY)


class Result(enum.Enum):
    FLOAT = "float"  # numpy's own type resolution (float for float inputs)
    BOOL = "bool"  # comparisons and logical ops: never differentiable


@dataclass(frozen=True)
class OpRecord:
    name: str
    group: Group
    arity: int | None
    sympy: Callable[..., Any] | None = None  # elementwise: (s, *operands) -> expression
    result: Result = Result.FLOAT
    kinked: bool = False  # non-smooth in its operands: they are kept as named values
    differentiable: bool = True
    memory: Memory = Memory.EITHER  # structural ops: a new array, or a view of an operand
    # elementwise: the numpy ufuncs that trace to it, by name, besides the one of its own name
    also: tuple[str, ...] = ()


OPS: dict[str, OpRecord] = {}
FRESH, VIEW = Memory.FRESH, Memory.VIEW


def _register(*records: OpRecord) -> None:
    for record in records:
        assert record.name not in OPS, record.name
        if record.group is Group.REDUCTION:  # numpy reduces into a new array
            record = dataclasses.replace(record, memory=Memory.FRESH)
        OPS[record.name] = record


def _ew(name: str, arity: int, form: Callable[..., Any], **extra: Any) -> OpRecord:
    return OpRecord(name, Group.ELEMENTWISE, arity, form, **extra)


def _float_test(name: str) -> OpRecord:
    """A test of a float's class (symbolic.functions.FloatTest): a condition of its name."""
    return OpRecord(name, Group.ELEMENTWISE, 1, lambda s, a: getattr(s, name)(a), Result.BOOL,
                    True, False)


def _cmp(name: str, form: Callable[..., Any]) -> OpRecord:
    return OpRecord(name, Group.ELEMENTWISE, 2, form, result=Result.BOOL, kinked=True,
                    differentiable=False)


# ---------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------
_register(
    OpRecord("input", Group.SOURCE, 0),
    OpRecord("const", Group.SOURCE, 0),
    # A transform called inside traced code (calls.py): expanded before differentiation.
    OpRecord("call", Group.SOURCE, None, differentiable=False),
)

# ---------------------------------------------------------------------------------------------
# Elementwise: the SymPy form is the whole definition
# ---------------------------------------------------------------------------------------------
_register(
    _ew("add", 2, lambda s, a, b: a + b),
    _ew("subtract", 2, lambda s, a, b: a - b),
    _ew("multiply", 2, lambda s, a, b: a * b),
    _ew("divide", 2, lambda s, a, b: a / b),
    _ew("power", 2, lambda s, a, b: s.power(a, b), also=("float_power",)),
    _ew("negative", 1, lambda s, a: -a),
    _ew("positive", 1, lambda s, a: a, also=("conjugate",)),  # of a real value
    _ew("reciprocal", 1, lambda s, a: 1 / a),
    _ew("square", 1, lambda s, a: a**2),
    _ew("sqrt", 1, lambda s, a: s.sqrt(a)),
    _ew("cbrt", 1, lambda s, a: s.cbrt(a)),
    _ew("exp", 1, lambda s, a: s.exp(a)),
    _ew("exp2", 1, lambda s, a: s.exp2(a)),
    _ew("expm1", 1, lambda s, a: s.expm1(a)),
    _ew("log", 1, lambda s, a: s.log(a)),
    _ew("log2", 1, lambda s, a: s.log2(a)),
    _ew("log10", 1, lambda s, a: s.log10(a)),
    _ew("log1p", 1, lambda s, a: s.log1p(a)),
    _ew("logaddexp", 2, lambda s, a, b: s.logaddexp(a, b)),
    _ew("logaddexp2", 2, lambda s, a, b: s.logaddexp2(a, b)),
    _ew("sin", 1, lambda s, a: s.sin(a)),
    _ew("cos", 1, lambda s, a: s.cos(a)),
    _ew("tan", 1, lambda s, a: s.tan(a)),
    _ew("arcsin", 1, lambda s, a: s.asin(a)),
    _ew("arccos", 1, lambda s, a: s.acos(a)),
    _ew("arctan", 1, lambda s, a: s.atan(a)),
    _ew("arctan2", 2, lambda s, a, b: s.arctan2(a, b), kinked=True),
    _ew("sinh", 1, lambda s, a: s.sinh(a)),
    _ew("cosh", 1, lambda s, a: s.cosh(a)),
    _ew("tanh", 1, lambda s, a: s.tanh(a)),
    _ew("arcsinh", 1, lambda s, a: s.asinh(a)),
    _ew("arccosh", 1, lambda s, a: s.acosh(a)),
    _ew("arctanh", 1, lambda s, a: s.atanh(a)),
    _ew("hypot", 2, lambda s, a, b: s.hypot(a, b), kinked=True),
    _ew("abs", 1, lambda s, a: s.Abs(a), kinked=True, also=("absolute", "fabs")),
    _ew("sign", 1, lambda s, a: s.sign(a), kinked=True),
    _ew("maximum", 2, lambda s, a, b: s.Max(a, b), kinked=True),
    _ew("minimum", 2, lambda s, a, b: s.Min(a, b), kinked=True),
    _ew("fmax", 2, lambda s, a, b: s.fmax(a, b), kinked=True),
    _ew("fmin", 2, lambda s, a, b: s.fmin(a, b), kinked=True),
    _ew("clip", 3, lambda s, a, lo, hi: s.clip(a, lo, hi), kinked=True),
    _ew("floor", 1, lambda s, a: s.floor(a), kinked=True),
    _ew("ceil", 1, lambda s, a: s.ceiling(a), kinked=True),
    _ew("rint", 1, lambda s, a: s.rint(a), kinked=True),
    _ew("trunc", 1, lambda s, a: s.trunc(a), kinked=True),
    # numpy multiplies by the rounded constant, as these do: x * (180.0/NPY_PI)
    _ew("degrees", 1, lambda s, a: a * (180 / math.pi), also=("rad2deg",)),
    _ew("radians", 1, lambda s, a: a * (math.pi / 180), also=("deg2rad",)),
    _ew("remainder", 2, lambda s, a, b: s.remainder(a, b), kinked=True),  # also np.mod
    _ew("fmod", 2, lambda s, a, b: s.fmod(a, b), kinked=True),
    _ew("floor_divide", 2, lambda s, a, b: s.floor_divide(a, b), kinked=True),
    # where(c, a, b): a SymPy Piecewise, so derivatives are taken branch by branch.
    _ew("where", 3, lambda s, c, a, b: s.Piecewise((a, c), (b, True))),
    # 'ew' is an elementwise node made during differentiation; its form is its `expr` param.
    OpRecord("ew", Group.ELEMENTWISE, None),
)

# scipy.special ufuncs (traced when scipy is installed; the generated code needs numpy only).
_register(
    _ew("expit", 1, lambda s, a: s.sigmoid(a)),
    _ew("log_expit", 1, lambda s, a: -s.softplus(-a)),
    _ew("logit", 1, lambda s, a: s.logit(a)),
    _ew("erf", 1, lambda s, a: s.erf(a)),
    _ew("erfc", 1, lambda s, a: s.erfc(a)),
    _ew("xlogy", 2, lambda s, a, b: s.xlogy(a, b), kinked=True),
    _ew("xlog1py", 2, lambda s, a, b: s.xlog1py(a, b), kinked=True),
    _ew("gammaln", 1, lambda s, a: s.gammaln(a)),
    _ew("digamma", 1, lambda s, a: s.digamma(a)),
)

_register(
    _cmp("greater", lambda s, a, b: s.Gt(a, b)),
    _cmp("greater_equal", lambda s, a, b: s.Ge(a, b)),
    _cmp("less", lambda s, a, b: s.Lt(a, b)),
    _cmp("less_equal", lambda s, a, b: s.Le(a, b)),
    _cmp("equal", lambda s, a, b: s.Eq(a, b)),
    _cmp("not_equal", lambda s, a, b: s.Ne(a, b)),
    _cmp("logical_and", lambda s, a, b: s.And(a, b)),
    _cmp("logical_or", lambda s, a, b: s.Or(a, b)),
    _cmp("logical_xor", lambda s, a, b: s.Xor(a, b)),
    OpRecord("logical_not", Group.ELEMENTWISE, 1, lambda s, a: s.Not(a), Result.BOOL, True, False),
    *(_float_test(name) for name in ("isnan", "isinf", "isfinite", "signbit")),
)

# ---------------------------------------------------------------------------------------------
# Structural ops: VJP rules in vjp_rules.py, numpy text in printer.py
# ---------------------------------------------------------------------------------------------
_register(
    OpRecord("sum", Group.REDUCTION, 1),  # params: axes, keepdims
    OpRecord("reshape", Group.MOVEMENT, 1, memory=VIEW),  # params: shape
    OpRecord("transpose", Group.MOVEMENT, 1, memory=VIEW),  # params: perm
    OpRecord("broadcast_to", Group.MOVEMENT, 1, memory=Memory.READ_ONLY),  # params: shape
    OpRecord("astype", Group.MOVEMENT, 1, memory=FRESH),  # params: dtype
    # the identity, with no adjoint
    OpRecord("stop_gradient", Group.MOVEMENT, 1, differentiable=False, memory=VIEW),
    OpRecord("getitem", Group.INDEXING, 1, memory=VIEW),  # params: index (a basic index)
    # params: index, shape (zeros, then g at index)
    OpRecord("unslice", Group.INDEXING, 1, memory=FRESH),
    OpRecord("matmul", Group.LINALG, 2, memory=FRESH),
)

_register(
    OpRecord("max", Group.REDUCTION, 1),  # params: axes, keepdims (ties share the gradient)
    OpRecord("min", Group.REDUCTION, 1),  # params: axes, keepdims
    OpRecord("prod", Group.REDUCTION, 1),  # params: axes, keepdims
    OpRecord("norm", Group.REDUCTION, 1),  # params: axes, keepdims (2-norm; gradient 0 at 0)
    OpRecord("softmax", Group.REDUCTION, 1),  # params: axes (same shape: exp(x)/sum(exp(x)))
    OpRecord("log_softmax", Group.REDUCTION, 1),  # params: axes (x - log(sum(exp(x))))
    OpRecord("cumsum", Group.REDUCTION, 1),  # params: axis
    OpRecord("cumprod", Group.REDUCTION, 1),  # params: axis
    OpRecord("argmax", Group.REDUCTION, 1, differentiable=False),  # params: axis, keepdims
    OpRecord("argmin", Group.REDUCTION, 1, differentiable=False),  # params: axis, keepdims
    OpRecord("concatenate", Group.MOVEMENT, None, memory=FRESH),  # params: axis
    OpRecord("pad", Group.MOVEMENT, 1, memory=FRESH),  # params: widths, value (constant mode)
    # inputs: array, index arrays; params: index
    OpRecord("gather", Group.INDEXING, None, memory=FRESH),
    # inputs: values, index arrays; params: index, shape
    OpRecord("scatter_add", Group.INDEXING, None, memory=FRESH),
    OpRecord("einsum", Group.LINALG, None),  # params: subscripts (explicit, "ij,jk->ik")
)

# numpy.linalg: one op per result of a decomposition (prim_matrix.py; VJPs in
# vjp_rules_linalg.py, each written in graph ops so that it can be differentiated again).
_register(
    OpRecord("solve", Group.LINALG, 2),
    OpRecord("inv", Group.LINALG, 1),
    OpRecord("det", Group.LINALG, 1),
    OpRecord("adjugate", Group.LINALG, 1),  # det(a) * inv(a): the gradient of det, finite
    OpRecord("slogdet_sign", Group.LINALG, 1, differentiable=False),
    OpRecord("logabsdet", Group.LINALG, 1),
    OpRecord("cholesky", Group.LINALG, 1),
    OpRecord("eigh_values", Group.LINALG, 1),
    OpRecord("eigh_vectors", Group.LINALG, 1),
    OpRecord("svd_u", Group.LINALG, 1),  # params: full_matrices
    OpRecord("svd_s", Group.LINALG, 1),
    OpRecord("svd_vh", Group.LINALG, 1),  # params: full_matrices
    OpRecord("qr_q", Group.LINALG, 1),
    OpRecord("qr_r", Group.LINALG, 1),
    OpRecord("lstsq", Group.LINALG, 2),
    OpRecord("pair_reciprocals", Group.LINALG, 1),  # 1/(w_j - w_i), 0 for ties (warns)
    OpRecord("triu", Group.MOVEMENT, 1),  # params: k
    OpRecord("tril", Group.MOVEMENT, 1),  # params: k
)

# Sorting (prim_sort.py; VJPs in vjp_rules_sort.py): values are differentiable, positions not.
_register(
    OpRecord("sort", Group.INDEXING, 1),  # params: axis (ties share the gradient evenly)
    OpRecord("partition", Group.INDEXING, 1),  # params: kth, axis
    OpRecord("argsort", Group.INDEXING, 1, differentiable=False),  # params: axis, kind
    OpRecord("argpartition", Group.INDEXING, 1, differentiable=False),  # params: kth, axis
    OpRecord("searchsorted", Group.INDEXING, 2, differentiable=False),  # params: side
    OpRecord("cummax", Group.REDUCTION, 1),  # params: axis (np.maximum.accumulate)
    OpRecord("cummin", Group.REDUCTION, 1),  # params: axis (np.minimum.accumulate)
    # x[index] = v traced (frontend_update.py): inputs mask (a bool constant), values placed
    # at the index, x; the value where(mask, values, x), without lifting it into SymPy
    OpRecord("overwrite", Group.INDEXING, 3),
)

# numpy.fft (ir/fft.py; VJPs in autodiff/vjp_fft.py): a complex value is its real and
# imaginary parts; a complex result is both, stacked on a last axis of 2 (read by getitem).
_register(
    # inputs (re,) or (re, im); params: axes, s, norm, inverse
    OpRecord("fft", Group.LINALG, None, memory=FRESH),
    OpRecord("rfft", Group.LINALG, 1, memory=FRESH),  # params: axes, s, norm (last axis halved)
    # inputs (re,) or (re, im); params: axes, s, norm
    OpRecord("irfft", Group.LINALG, None, memory=FRESH),
)

# Loops and branches (loops.py): the body is a graph in the params; each result is read by a
# `loop_out` node (param index). The VJP rules are in loop_rules.py, the code in loop_code.py.
_register(
    OpRecord("scan", Group.LOOP, None),  # params: body, length, reverse
    OpRecord("while", Group.LOOP, None),  # params: cond, body
    OpRecord("cond", Group.LOOP, None),  # params: branches (index is the first input)
    # reverse mode's stand-in for a while loop's pullback: only forward mode (its transpose)
    OpRecord("while_vjp", Group.LOOP, None),  # params: cond, body, seeded, wrt
    OpRecord("loop_out", Group.INDEXING, 1),  # params: index
)

# A user's derivative rule (custom.py): inputs value (behind a stop_gradient), primals,
# residuals, closures; params rule (a RuleBody), index. The identity on its value; its VJP
# inlines the rule; replaced by its value once differentiated.
_register(OpRecord("custom_rule", Group.MOVEMENT, None))
