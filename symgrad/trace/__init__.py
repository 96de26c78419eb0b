"""Stage 1, tracing: a user's numpy function run on tracers, recorded as a graph.

`tracer.py` (the Tracer and `trace_function`), `numpy_api.py` (numpy's protocols: ufuncs and
`__array_function__`), one module per family of numpy functions, `arguments.py` (a call's
arguments bound and flattened), `loops.py`/`control.py` (loops and branches that stay loops).

The public internal entry point of the stage (for the tests, the CLI and the tools), each
name imported from its module on first use:

- `trace_function(fn, specs)`: the traced graph of a function at argument specs;
- `Tracer` and its `METHODS` (the ndarray methods that trace), and the module `tracer`
  itself, for a test that patches it where its code reads a name (`bound_site`);
- `FUNCTIONS`, `UFUNC_OPS`, `function_name`: the numpy functions and ufuncs that trace, by
  name (the op catalogue and the completeness tests read them), and `on_nodes`, the setup
  every numpy handler shares.
"""
from .._lazy import lazy_exports
from . import families  # noqa: E402,F401  (registers every function, method and operator)

__getattr__, __dir__, __all__ = lazy_exports(__name__, modules=("tracer",), names={
    "tracer": ("trace_function", "Tracer", "METHODS"),
    "numpy_api": ("FUNCTIONS", "UFUNC_OPS", "function_name", "on_nodes"),
})
