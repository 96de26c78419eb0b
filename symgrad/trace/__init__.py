"""Stage 1, tracing: a user's numpy function run on tracers, recorded as a graph.

`tracer.py` (the Tracer and `trace_function`), `numpy_api.py` (numpy's protocols: ufuncs and
`__array_function__`), one module per family of numpy functions, `arguments.py` (a call's
arguments bound and flattened), `loops.py`/`control.py` (loops and branches that stay loops).
"""
from . import families  # noqa: E402,F401  (registers every function, method and operator)
