"""Statements built as data (issue 12): what an in-place step reads, whether a result is a
read-only view or already a copy, are facts of the data the numpy backend builds, not read back
from the text it printed. Each case checks the numbers and the code that computes them."""
import numpy as np
import pytest

import symgrad as sg

RNG = np.random.default_rng(7)
X = RNG.normal(size=(300, 300))  # large enough for buffer reuse (128 KiB)


def _body(fn, *args):
    source = fn.lower(*args).source
    return [line.strip() for line in source.split("def ", 1)[1].splitlines()[1:]
            if line.strip() and not line.strip().startswith("#")]


def only_first_step_reads(x):
    a = np.sin(x) * 3.0
    return 2 * np.exp(a) + 1.0  # a's array is dead: the result is computed into it


@pytest.mark.parametrize("view", [lambda a: a.T, lambda a: a[::-1], lambda a: a.reshape(-1)
                                  .reshape(a.shape)[:, ::-1]])
def test_a_later_step_reading_the_reused_array_through_a_view_keeps_its_own_array(view):
    def later_step_reads(x):
        a = np.sin(x) * 3.0
        return 2 * np.exp(a) + view(a)  # `t += a.T` after `np.exp(a, out=a)` would be wrong

    reused = sg.jit(only_first_step_reads)
    assert "value = np.exp(a, out=a)" in _body(reused, X)
    np.testing.assert_allclose(reused(X), only_first_step_reads(X), rtol=1e-15)

    kept = sg.jit(later_step_reads)
    assert not any("out=a" in line for line in _body(kept, X))
    np.testing.assert_allclose(kept(X), later_step_reads(X), rtol=1e-15)


def test_a_broadcast_result_is_copied_once_and_is_writable():
    def spread(x):
        return np.broadcast_to(np.sin(x), (3, 4)) * 1.0

    x = np.linspace(-1.0, 1.0, 4)
    fn = sg.jit(spread)
    body = _body(fn, x)
    assert body == ["value = np.broadcast_to(np.sin(x), (3, 4)).copy()", "return value"]
    result = fn(x)
    np.testing.assert_array_equal(result, spread(x))
    assert result.flags.writeable and not np.shares_memory(result, x)


def test_a_diagonal_result_is_a_fresh_writable_array():
    def diagonal(x):
        return np.einsum("ii->i", x * 2.0), np.einsum("ii->i", x)

    x = RNG.normal(size=(5, 5))
    fn = sg.jit(diagonal)
    results = fn(x)
    for got, want in zip(results, diagonal(x)):
        np.testing.assert_array_equal(got, want)
        assert got.flags.writeable and not np.shares_memory(got, x)
    assert not np.shares_memory(results[0], results[1])


def test_a_result_beside_a_copied_result_of_the_same_base_is_copied_once():
    def views(x):
        return np.broadcast_to(x, (3, 4)), np.einsum("ii->i", np.ones((4, 4)) * x), x.T, x

    x = np.linspace(0.5, 2.0, 4)
    fn = sg.jit(views)
    body = _body(fn, x)
    assert sum(line.count(".copy()") for line in body) == 4  # one copy a result, no more
    # the diagonal copied where it is made, not again after (`out1_copy = out1.copy()`)
    assert "out1 = np.diagonal(t0).copy()" in body and len(body) == 6
    results = fn(x)
    for got, want in zip(results, views(x)):
        np.testing.assert_array_equal(got, want)
        assert got.flags.writeable and not np.shares_memory(got, x)
    for i, a in enumerate(results):
        assert not any(np.shares_memory(a, b) for b in results[i + 1:])
