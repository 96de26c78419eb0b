"""Stage 2, the graph: nodes, the op table (`ops.py`, every per-op fact), and the
constructors that check shapes and dtypes (`primitives.py` and one module per op family).

The public internal entry point of the stage (for the tests, the CLI and the tools), each
name imported from its module on first use:

- `OPS`, `Group`, `Memory`, `Result`: the op table and the kinds of its facts (`ops.py`);
- `Node`, a graph's node, and `topological_order(outputs)`: a graph's nodes, inputs first
  (`graph.py`);
- `NORMALISERS`: the reductions written out in simpler ops before printing (`reduce.py`).
"""
from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, names={
    "ops": ("OPS", "Group", "Memory", "Result"),
    "graph": ("Node", "topological_order"),
    "reduce": ("NORMALISERS",),
})
