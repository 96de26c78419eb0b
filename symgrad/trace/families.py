"""Every family of numpy functions, imported once: each module registers its functions
(`numpy_api.implements`) and its ndarray methods and operators (`tracer.METHODS`, ...) on
import. Imported by `trace/__init__.py`, so a Tracer is complete whenever one exists."""
from . import (complex, complex_functions, creation, fft, indexing, linalg,  # noqa: F401
               matrix, numpy_api, reductions, scipy_special, shape, sort, update)
