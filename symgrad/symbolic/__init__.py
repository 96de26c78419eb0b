"""Stage 4, SymPy: elementwise regions lifted to expressions (`lift.py`), the stable forms every
backend runs (`stability.py`, `graph_rewrites.py`), exact folding (`exact.py`), simplification
and the SymPy helper functions.
"""
