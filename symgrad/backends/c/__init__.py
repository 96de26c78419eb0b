"""The fused C backend: kernels from the shared kernel IR printed as C, compiled with the
system compiler, loaded through a rendered ctypes launcher checked by its own grammar.
"""
