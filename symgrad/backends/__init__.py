"""The backend seam: which code generator a transform's `backend=` names.

Each backend is a module (`numpy/backend.py`, `c/backend.py`) with `NAME`, `SPEED_RULES` and
`compile_signature(fn, graph, structure, specs, transform, name, cache, parts, progress)`
(see `common.py` for what they share); `c` and `cuda` (`cuda/__init__.py`) print the shared
kernel IR of `kernel_ir.py`, as C loops and as CUDA kernels launched through CuPy.
Looking a backend up imports nothing heavy: each entry is a module path, imported on first use.

The public internal entry point of the seam (for the tests, the CLI and the tools): the
table and its look-ups defined here (`BACKENDS`, `backend_module`, `check_backend`,
`choose_backend` and its `AUTO_MIN_ELEMENTS`, `backend_key_parts`, the ops a fused backend
refuses: `C_NOT_YET`, `CUDA_NOT_YET`), and, imported on first use, what every backend
shares: `generated_name(fn, transform)`, the name of a generated function (`common.py`).
Each backend is an entry point of its own: `symgrad.backends.numpy`, `.c`, `.cuda`.
"""
from __future__ import annotations

import importlib
from typing import Any

from .._lazy import lazy_exports
from ..errors import ArgumentError

__getattr__, __dir__, _LAZY = lazy_exports(__name__, names={"common": ("generated_name",)})
__all__ = ["BACKENDS", "AUTO_MIN_ELEMENTS", "check_backend", "backend_module", "C_NOT_YET",
           "CUDA_NOT_YET", "choose_backend", "backend_key_parts", *_LAZY]

# name -> the module that implements it
BACKENDS: dict[str, str] = {
    "numpy": "symgrad.backends.numpy.backend",
    "c": "symgrad.backends.c.backend",
    "cuda": "symgrad.backends.cuda",
}


# backend="auto": fused C where an elementwise region has at least this many elements (and a
# C compiler is there), else numpy, whose per-call overhead is lower on small arrays.
AUTO_MIN_ELEMENTS = 1 << 18


def check_backend(name: Any) -> str:
    """`name` if it is a known backend (or 'auto'), else one clear error listing them."""
    if not isinstance(name, str) or (name not in BACKENDS and name != "auto"):
        known = ", ".join(repr(n) for n in [*BACKENDS, "auto"])
        raise ArgumentError(f"backend={name!r} is not available (backends: {known})")
    return name


def backend_module(name: str) -> Any:
    """The module implementing backend `name`."""
    return importlib.import_module(BACKENDS[check_backend(name)])


# Ops the C backend does not run yet: the loop drivers (fori_loop/scan, while_loop, cond),
# whose bodies the numpy backend generates as functions of their own, which the C launcher
# has no form for, and numpy.fft (complex values as real parts, not yet tested with C).
# backend="c" refuses a function that uses one, naming it, and "auto" picks numpy for it.
# (Linear algebra, sorting and updates run in numpy between kernels.)
C_NOT_YET = frozenset({"scan", "while", "cond", "while_vjp", "loop_out", "fft", "rfft",
                       "irfft"})
# Ops backend="cuda" was not yet built or tested with: it refuses a function that uses one,
# naming it. (The C backend's list above shrank as its library steps were tested.)
CUDA_NOT_YET = C_NOT_YET | frozenset({
    "solve", "inv", "det", "adjugate", "slogdet_sign", "logabsdet", "cholesky", "eigh_values",
    "eigh_vectors", "svd_u", "svd_s", "svd_vh", "qr_q", "qr_r", "lstsq", "pair_reciprocals",
    "triu", "tril", "sort", "partition", "argsort", "argpartition", "searchsorted", "cummax",
    "cummin", "overwrite"})


def choose_backend(name: str, graph: Any) -> str:
    """The backend a signature compiles with: `name`, or for 'auto' the one its sizes favour
    (the traced graph's largest elementwise value decides; no C compiler: numpy)."""
    if name != "auto":
        return name
    from ..ir.ops import OPS, Group

    nodes = graph.nodes()
    largest = max((n.size for n in nodes if OPS[n.op].group is Group.ELEMENTWISE), default=0)
    if largest < AUTO_MIN_ELEMENTS or any(n.op in C_NOT_YET or n.op == "call" for n in nodes):
        return "numpy"
    from ..errors import CompilerError

    try:
        backend_module("c").toolchain()
    except CompilerError:
        return "numpy"
    return "c"


def backend_key_parts(parts: Any, name: str, fast_math: bool = False) -> Any:
    """The key parts of a signature for backend `name`: what the backend adds to the shared
    components (the C backend: compiler, flags -- fast math's among them --, CPU features,
    its own source). A backend module's `key_components(fast_math)` gives them."""
    module = backend_module(name)
    if not hasattr(module, "key_components"):
        return parts
    from ..cache.key import KeyParts

    return KeyParts({**parts.components, **module.key_components(fast_math)})
