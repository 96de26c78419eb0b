"""Stage 3, derivatives over the graph: reverse mode (`reverse.py`), the structural ops' VJP
rules, the transforms' graphs (`transforms.py`: grad, vjp, jvp as VJP transposed, hvp),
sg.vjp's residual split, derivative rules of loops, user rules (`custom.py`), and the batching
rules of sg.vmap.
"""
