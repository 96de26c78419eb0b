"""The fused C backend: kernels from the shared kernel IR printed as C, compiled with the
system compiler, loaded through a rendered ctypes launcher checked by its own grammar.

The public internal entry point of the backend (for the tests, the CLI and the tools), each
name imported from its module on first use: `backend` (the backend module: `toolchain()`,
`compile_signature`, ...; a test patches it where its code reads a name),
`CExpressionPrinter` (SymPy to C, `printer.py`) and `check_launcher(source)` (the exact
grammar of a rendered launcher, `check.py`).
"""
from ..._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, modules=("backend",), names={
    "printer": ("CExpressionPrinter",),
    "check": ("check_launcher",),
})
