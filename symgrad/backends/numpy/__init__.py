"""The numpy backend: lowering to named numpy statements, printing (SymPy to numpy text),
buffer reuse, row blocking, einsum and BLAS speed rules, rendering through `templates/`, and
the exact load-time grammar of what it writes (`safety.py`, `grammar.py`).
"""
