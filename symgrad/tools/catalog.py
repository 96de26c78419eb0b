"""The list of supported operations, generated from the tables themselves: the numpy front
end (`FUNCTIONS`, `UFUNC_OPS`, the Tracer's methods and operators) and the op table (`OPS`,
`VJP_RULES`). `docs/ops.md` is this module's output (a test keeps it current); `symgrad ops`
prints it.

    python -m symgrad.tools.catalog > docs/ops.md
"""
from __future__ import annotations

import sys
from collections import defaultdict

def _family(handler: object) -> str:
    """The catalogue heading of a handler: its family module's `FAMILY`."""
    module = sys.modules.get(handler.__module__)
    return getattr(module, "FAMILY", handler.__module__)


# Where a structural gradient is a choice, the choice (PyTorch 2.13 unless said otherwise).
CONVENTIONS = (
    "`max`/`min`/`amax`/`amin` reductions: tied maxima share the gradient evenly, as "
    "`torch.amax` and `torch.max()` without `dim` (`torch.max(x, dim)` instead gives it all "
    "to the one index it returns).",
    "`prod` and `cumprod` with zeros: exact (one zero: the product of the others at the zero, "
    "0 elsewhere; several zeros: 0), as PyTorch. Second derivatives are exact away from zeros.",
    "`std` of a constant and `linalg.norm` at 0: gradient 0, as PyTorch.",
    "`sqrt(sum(x*x))` at x = 0: gradient 0, the minimum-norm subgradient (a graph rewrite to "
    "`norm`; PyTorch gives NaN here).",
    "Unshifted `log(sum(exp(x)))` and `exp(x) / sum(exp(x))`: rewritten with the max shift, so "
    "values and gradients stay finite at |x| = 1000.",
    "Integer-array indexing: the gradient scatter-adds (`np.add.at`), so repeated indices "
    "accumulate.",
    "numpy.linalg: symmetric gradients for `cholesky`/`eigh`/`eigvalsh` (numpy reads one "
    "triangle); `det` at a singular matrix: the adjugate; repeated eigenvalues or singular "
    "values: finite through the values, tie terms left out with a warning through the vectors; "
    "table in docs/conventions.md (\"Linear algebra\").",
    "`sort`, `median`, `percentile`/`quantile` (linear), `partition`, "
    "`maximum/minimum.accumulate`: the gradient goes to the selected elements (the two middle "
    "values of an even count get half each; a quantile's two neighbours their interpolation "
    "weights); exact ties share it evenly, as `max` (PyTorch's sort and cummax give it to one "
    "index). argsort, argpartition, argmax, argmin and searchsorted are integer positions "
    "without gradient, usable as indices.",
    "In-place updates of arrays made inside the function (`out[i] = v`, `y += v`, `y[mask] = 0`, "
    "`np.add.at`, `np.put_along_axis`) are functional updates: overwritten elements get no "
    "gradient, accumulated ones do; repeated constant positions keep the last value (as numpy), "
    "`put_along_axis` gives repeated positions the mean of their values. Updating an argument "
    "raises `MutationError` (write `x = x.copy()` first).",
)

_OPERATORS = ("+", "-", "*", "/", "**", "@", "%", "//", "divmod()", "unary -", "unary +",
              "abs()", "<", "<=", ">",
              ">=", "==", "!=", "& (logical and)", "| (logical or)", "^ (logical xor)",
              "~ (logical not)")


def _functions() -> dict[str, list[str]]:
    from ..trace.numpy_api import FUNCTIONS, function_name

    by_family: dict[str, list[str]] = defaultdict(list)
    for function, handler in FUNCTIONS.items():
        by_family[_family(handler)].append(
            function_name(function))
    return {family: sorted(names) for family, names in by_family.items()}


def _ufuncs() -> list[str]:
    from ..trace.numpy_api import UFUNC_OPS

    from ..trace.sort import ACCUMULATE

    return sorted(f"numpy.{ufunc.__name__}" for ufunc in UFUNC_OPS) + [
        "numpy.matmul", "numpy.add.reduce"] + sorted(f"numpy.{u.__name__}.accumulate"
                                                    for u in ACCUMULATE)


def _methods() -> list[str]:
    from ..trace.tracer import METHODS, PROPERTIES, Tracer

    names = [f"x.{name}()" for name in METHODS] + [f"x.{name}" for name in PROPERTIES]
    for name in dir(Tracer):  # the array's own facts (x.shape, x.dtype, ...)
        if name.startswith("_") or name in ("node", "builder"):
            continue
        attribute = getattr(Tracer, name)
        names.append(f"x.{name}" if isinstance(attribute, property) or not callable(attribute)
                     else f"x.{name}()")
    return sorted(names)


def _op_rows() -> list[tuple[str, str, str]]:
    from ..ir.ops import OPS, Group
    from ..autodiff.vjp_rules import VJP_RULES

    rows = []
    for name, record in OPS.items():
        if record.group is Group.SOURCE or name == "ew":
            continue
        if record.group is Group.ELEMENTWISE:
            gradient = "SymPy" if record.differentiable else "none (boolean result)"
        elif name in VJP_RULES:
            gradient = "VJP rule"
        elif record.group is Group.LOOP or name == "loop_out":
            gradient = ("forward mode only (reverse mode refused)" if name.startswith("while")
                        else "loop rule (loop_rules.py)")
        else:
            gradient = "none (not differentiable)"
        rows.append((record.group.value, name, gradient))
    return sorted(rows)


def _complex() -> tuple[list[str], list[str], list[str]]:
    """What works on a traced complex value: ufuncs, functions, methods and attributes."""
    from ..trace.complex import ACCEPTS_COMPLEX, COMPLEX_FUNCTIONS, UFUNCS, ComplexTracer
    from ..trace.numpy_api import function_name

    functions = sorted({function_name(f) for f in [*COMPLEX_FUNCTIONS, *ACCEPTS_COMPLEX]}
                       - {"numpy.fft.rfft", "numpy.fft.rfft2", "numpy.fft.rfftn"})  # real only
    methods = sorted(f"z.{name}" if isinstance(getattr(ComplexTracer, name), property)
                     else f"z.{name}()" for name in dir(ComplexTracer)
                     if not name.startswith("_") and name not in ("re", "im", "builder"))
    return sorted(f"numpy.{u.__name__}" for u in UFUNCS), functions, methods


def _scipy_special() -> list[str]:
    from ..trace.numpy_api import SCIPY_SPECIAL_OPS

    return sorted(SCIPY_SPECIAL_OPS)


def _scipy_functions() -> list[str]:
    from ..trace.scipy_special import TRACED

    return sorted(TRACED)


def _stability_rules() -> tuple:
    from ..symbolic.stability import STABILITY_RULES

    return STABILITY_RULES


def _graph_rules() -> tuple:
    from ..symbolic.graph_rewrites import GRAPH_RULES

    return GRAPH_RULES


def render() -> str:
    """docs/ops.md, as text."""
    lines = [
        "# Supported operations",
        "",
        "<!-- Generated by `python -m symgrad.tools.catalog > docs/ops.md` from symgrad's tables; "
        "do not edit. -->",
        "",
        "A traced function may use the numpy functions, ufuncs, methods and operators below on "
        "traced arrays. Any other numpy function raises `UnsupportedFunctionError` naming it. "
        "Python control flow on shapes and constants runs as usual; `if` on a traced value is "
        "refused (use `np.where`). Integer and boolean arrays are accepted as non-differentiable "
        "arguments (labels, indices, masks).",
        "",
        "## numpy functions",
        "",
    ]
    for family, names in sorted(_functions().items()):
        lines += [f"**{family}**: " + ", ".join(f"`{n}`" for n in names), ""]
    lines += ["## ufuncs", "", ", ".join(f"`{n}`" for n in _ufuncs()), "",
              "## Array methods and attributes", "", ", ".join(f"`{n}`" for n in _methods()), "",
              "Indexing: integers, slices (any step), `None`, `...`, integer index arrays "
              "(constants or integer inputs; the gradient scatter-adds, so repeated indices "
              "accumulate) and constant boolean masks. `np.eye(k)[labels]` works for constants "
              "made inside the traced function.", "",
              "`np.array` / `np.asarray` of a traced value give it back (cast to `dtype`), and "
              "of nested lists of traced values and numbers give their stack.", "",
              "## scipy.special", "",
              "When the traced code imports scipy, these scipy.special ufuncs are traced too "
              "(the generated code implements them in numpy; accuracy in docs/conventions.md): "
              + ", ".join(f"`scipy.special.{n}`" for n in _scipy_special()) + ". "
              + "And the functions " + ", ".join(f"`scipy.special.{n}`" for n in
                                                 _scipy_functions())
              + " (as the `softmax` / `log_softmax` ops and a max-shifted logsumexp), called as "
              "`scipy.special.<name>` or by a name the traced function's module imported.", "",
              "## Operators", "", ", ".join(f"`{o}`" for o in _OPERATORS), "",
              "## Complex values", "",
              "Complex intermediates (from `numpy.fft`, complex constants such as `1j * x`, and "
              "arithmetic with them) are traced as their real and imaginary parts; a complex "
              "argument or result is an error. On a complex value `z`: the operators "
              "`+ - * / @`, `**` an integer, `unary -`, `abs()`, indexing; the ufuncs "
              + ", ".join(f"`{n}`" for n in _complex()[0]) + "; the functions "
              + ", ".join(f"`{n}`" for n in _complex()[1]) + "; and "
              + ", ".join(f"`{n}`" for n in _complex()[2])
              + ". Conventions in docs/conventions.md (\"Complex values and the FFT\").", "",
              "## Gradient conventions of elementwise ops", "",
              "At kinks, ties and singular points, as PyTorch 2.13, with the deviations (where "
              "PyTorch gives NaN) listed in docs/conventions.md, a table checked exactly against "
              "PyTorch by tests/test_conventions.py.", "",
              "## Stability rewrites of elementwise expressions", "",
              "Applied to values and derivatives alike; `lower(...).rewrites` reports the ones "
              "that fired.", ""]
    lines += [f"- {rule.name}" for rule in _stability_rules()]
    lines += ["", "## Gradient conventions of structural ops", ""]
    lines += [f"- {c}" for c in CONVENTIONS]
    lines += ["", "## Graph rewrites", "",
              "Applied after tracing, before differentiation; `lower(...).rewrites` reports the "
              "ones that fired.", ""]
    lines += [f"- {rule.name}" for rule in _graph_rules()]
    lines += ["", "## Graph ops", "",
              "What the numpy calls above become. Elementwise ops are differentiated by SymPy; "
              "structural ops have one VJP rule each, written in graph ops, so derivatives can "
              "be differentiated again.", "",
              "| group | op | gradient |", "|---|---|---|"]
    lines += [f"| {group} | `{name}` | {gradient} |" for group, name, gradient in _op_rows()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
