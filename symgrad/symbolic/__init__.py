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
"""
