"""The user-facing transforms' machinery: `CompiledFunction` (one compilation per
signature), composition inside traced code, Jacobians and Hessians, vmap, check_grads.

The public internal entry point (for the tests, the CLI and the tools), imported on first
use: the module `compiled` itself (`CompiledFunction`, its per-signature limit
`MAX_SIGNATURES`, the `compile_function` it calls), for a test that patches it where its
code reads a name. The transforms themselves are `symgrad`'s own names (`sg.grad`, `sg.vmap`, ...).
"""
from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, modules=("compiled",))
