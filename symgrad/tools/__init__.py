"""Reading what was made: explain (cache misses), export, the op catalogue, the API docs,
pictures, LaTeX display, progress lines.
"""
