"""Stage 5, the backend-neutral schedule: what every backend starts from.

- `prepare.py`: the transform's outputs lifted to SymPy (`symbolic.lift`) and given the stable
  forms every backend runs (`symbolic.simplify`): finiteness is not a backend's choice. The
  fused backends (`backends/kernel_ir.py`) group these values into loop nests from here.
- `schedule.py`: for a backend that writes one statement a value (numpy): its evaluation forms
  (a backend hook), one common-subexpression pass over forward and backward together, names
  (the user's, `names.py`), and an order in which every temporary is computed just before its
  first use and nothing unused is computed: a `Schedule` of statements whose right side is a
  SymPy expression or a structural node. Nothing here prints code.

The public internal entry point of the stage (for the tests, the CLI and the tools), each
name imported from its module on first use: `prepare(outputs, hints)` (the shared front),
`build_schedule(outputs, hints, params)` and its `Schedule`; the sanitising of user text
before it enters generated code, on every backend (`sanitise.py`): `identifier(wish)`,
`is_safe_identifier`, `comment_text`.
"""
from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, names={
    "prepare": ("prepare",),
    "schedule": ("build_schedule", "Schedule"),
    "sanitise": ("identifier", "is_safe_identifier", "comment_text"),
})
