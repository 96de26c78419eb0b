"""Stage 4, SymPy: elementwise regions lifted to expressions (`lift.py`), the stable forms every
backend runs (`stability.py`, `graph_rewrites.py`), exact folding (`exact.py`), simplification
and the SymPy helper functions.

Where rewrites live, by purpose:

- For finite and exact results, on every backend: `graph_rewrites.py` (softmax, log-softmax,
  logsumexp and norm however written: patterns across reductions, on the graph before
  differentiation), `stability.py` (the table of stable forms of SymPy expressions: log1p,
  softplus, sigmoid, hypot, ...), `simplify.py` (kinks resolved by cases, np.where folded into
  its branches, values seen through), `exact.py` (SymPy's folds that IEEE floats agree with;
  the others only with `fast_math`), and the constructors of `ir/primitives.py` (a transpose
  of a transpose, a reshape to the same shape).
- For speed, chosen by each backend (`SPEED_RULES` of its module): `backends/speed_rules.py`
  (fewer, larger BLAS calls; sums of products as einsum; softmax written out after
  differentiation); the numpy backend's own: `evaluation_forms.py` (sigmoid and softplus
  sharing one exp on large arrays, branch-free steps), the printer's fast reductions of short
  rows (`printer_structural.py`), column-wise statements (`statements.py`), buffer reuse,
  in-place forms and row blocks (`buffers.py`, `inplace.py`, `blocking.py`). Each speed form
  keeps a comment with its plain form in the generated code.

The public internal entry point of the stage (for the tests, the CLI and the tools), each
name imported from its module on first use, so that importing the package imports no SymPy:

- `STABILITY_RULES` (`stability.py`) and `rewrite_graph(graph)` (`graph_rewrites.py`): the
  rewrites for finite results;
- `true_divide`, `unfolded` (`exact.py`): a division and an operation kept as IEEE floats
  compute them, not folded by SymPy;
- `Literal`, `constant_expr`, `namespace` (`expressions.py`): constants and the SymPy
  functions an op's expression is written with;
- `KINKED`, `STEPPED` (`functions.py`): the SymPy functions with kinks and steps;
- `symbols_in`, `tree_ops` (`simplify.py`): an expression's symbols and size, each distinct
  subexpression visited once;
- `code_latex`, `name_latex` (`latex.py`): generated code and names as LaTeX.
"""
from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, names={
    "stability": ("STABILITY_RULES",),
    "graph_rewrites": ("rewrite_graph",),
    "exact": ("true_divide", "unfolded"),
    "expressions": ("Literal", "constant_expr", "namespace"),
    "functions": ("KINKED", "STEPPED"),
    "simplify": ("symbols_in", "tree_ops"),
    "latex": ("code_latex", "name_latex"),
})
