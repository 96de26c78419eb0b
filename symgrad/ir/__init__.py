"""Stage 2, the graph: nodes, the op table (`ops.py`, every per-op fact), and the
constructors that check shapes and dtypes (`primitives.py` and one module per op family).
"""
