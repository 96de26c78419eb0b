"""The numpy backend: lowering to named numpy statements, printing (SymPy to numpy text),
buffer reuse, row blocking, einsum and BLAS speed rules, rendering through `templates/`, and
the exact load-time grammar of what it writes (`safety.py`, `grammar.py`).

The public internal entry point of the backend (for the tests, the CLI and the tools), each
name imported from its module on first use (the backend itself is `backend.py`, found through
`symgrad.backends.BACKENDS`):

- the modules whose size thresholds a test lowers to see a speed form on small arrays:
  `blocking` (row blocks), `buffers` (buffer reuse), `statements` (column-wise statements),
  `evaluation_forms` (sigmoid and softplus forms of large arrays); a test patches the module
  itself, where the code reads the threshold;
- the printers: `NumpyExpressionPrinter` (SymPy to numpy text), `float_literal` (a float as
  exact text), `STRUCTURAL` (one formatter per structural op), `InplaceWriter` (in-place
  forms), `body_function` (a loop body as a function of its own);
- the trust check of what it wrote: `check_source(source)` (the exact grammar),
  `PURE_BUILTINS` (the builtins generated code may call), `template_helpers()` (the helpers
  the templates define).
"""
from ..._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__, modules=("blocking", "buffers", "statements", "evaluation_forms"), names={
        "printer": ("NumpyExpressionPrinter",),
        "printer_structural": ("float_literal", "STRUCTURAL"),
        "inplace": ("InplaceWriter",),
        "loop_code": ("body_function",),
        "safety": ("check_source", "template_helpers"),
        "grammar": ("PURE_BUILTINS",),
    })
