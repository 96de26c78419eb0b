"""Stage 3, derivatives over the graph: reverse mode (`reverse.py`), the structural ops' VJP
rules, the transforms' graphs (`transforms.py`: grad, vjp, jvp as VJP transposed, hvp),
sg.vjp's residual split, derivative rules of loops, user rules (`custom.py`), and the batching
rules of sg.vmap.

The public internal entry point of the stage (for the tests, the CLI and the tools), each
name imported from its module on first use:

- `Transform`, `differentiate(graph, transform)`: what a transform asks for, and the graph
  that computes it (`transforms.py`);
- `VJP_RULES`: the structural ops' VJP rules, by op (`vjp_rules.py`);
- `MULTI_OUTPUT`: the loops' multi-output VJPs (`loop_rules.py`; importing it registers them);
- `rule_for(op)`, `NO_RULE_YET`, `NOT_BATCHED`: sg.vmap's batching rules (`batching.py`).
"""
from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, names={
    "transforms": ("Transform", "differentiate"),
    "vjp_rules": ("VJP_RULES",),
    "loop_rules": ("MULTI_OUTPUT",),
    "batching": ("rule_for", "NO_RULE_YET", "NOT_BATCHED"),
})
