"""Dask arrays: a loss split over chunks of rows and combined exactly.

The public internal entry point (for the tests, the CLI and the tools), imported on first
use (it needs dask): the module `dask` (what a worker receives and runs, and its report).
"""
from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, modules=("dask",))
