"""Review of issue 12's numpy backend (in-place steps as data, the schedule stage, vmap's
out_axes=None): buffer reuse must never overwrite an array that a later step still reads,
whatever was compiled before in the process and however the array is reached (views, aliases,
inlined structural code); results are fresh, writable arrays. Every case checks numbers."""
import numpy as np
import pytest

import symgrad as sg

RNG = np.random.default_rng(12)
N = 300  # (300, 300) float64 is 720 KB: buffer reuse fires from 128 KiB


def _operand_is_a_parameter(h, w, x):
    s = np.exp(np.sin(x) * 3.0) + np.tanh(h @ w)
    return s * x


def _operand_is_computed(x, w):
    h = np.sin(x) * 3.0
    s = np.exp(h) + np.tanh(h @ w)  # `np.exp(h, out=h)` first would change what h @ w reads
    return s * x


def test_what_inlined_code_reads_does_not_come_from_an_earlier_compilation():
    # Both inline `h @ w` as the same lifted value (v4) into the same `tanh(...)`: SymPy's
    # cache of tanh(...) hands back the first one's inlined code, with what *it* read (the
    # parameters h and w); the second's `h` is the array that buffer reuse would overwrite.
    x, w, h = (RNG.normal(size=(N, N)) * 0.1 for _ in range(3))
    np.testing.assert_allclose(sg.jit(_operand_is_a_parameter)(h, w, x),
                               _operand_is_a_parameter(h, w, x), rtol=1e-12)
    np.testing.assert_allclose(sg.jit(_operand_is_computed)(x, w), _operand_is_computed(x, w),
                               rtol=1e-12)
