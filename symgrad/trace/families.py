"""Every family of numpy functions, imported once: each module registers its functions
(`numpy_api.implements`) and its ndarray methods and operators (`tracer.METHODS`, ...) on
import. Imported by `trace/__init__.py`, so a Tracer is complete whenever one exists."""
from . import (complex, creation, indexing, linalg, matrix, numpy_api, reductions,  # noqa: F401
               scipy_special, shape, sort, update)
