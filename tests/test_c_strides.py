"""backend="c" reads views in place: transposed, sliced (step 2, reversed), broadcast
(stride 0) and byte-swapped inputs give what the numpy backend gives, through the kernels'
strided variants (index arithmetic with the input's strides), and contiguous inputs take
the flat kernels."""
from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from symgrad.backends.c import backend as c_backend
from symgrad.errors import CompilerError

try:
    c_backend.toolchain()
except CompilerError as error:  # pragma: no cover - CI installs gcc
    pytest.skip(f"no C compiler: {error}", allow_module_level=True)

RNG = np.random.default_rng(13)


def loss(x, y, b):
    return np.sum(np.log1p(np.exp(np.sin(x) * y)) + np.sqrt(x * x + b)) + np.sum(np.tanh(y))


def compare(args, dtype=np.float64):
    c = sg.value_and_grad(loss, wrt=(0, 1, 2), backend="c")(*args)
    n = sg.value_and_grad(loss, wrt=(0, 1, 2))(*args)
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(c[0], n[0], rtol=rtol)
    for got, want in zip(c[1], n[1]):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.max(np.abs(want)))
    return c


def views(dtype):
    x = RNG.standard_normal((6, 8)).astype(dtype)
    y = RNG.standard_normal(8).astype(dtype)
    b = np.abs(RNG.standard_normal((6, 1))).astype(dtype)
    return {
        "contiguous": (x, y, b),
        "transposed": (np.ascontiguousarray(x.T).T, y, b),
        "sliced step 2": (RNG.standard_normal((12, 8)).astype(dtype)[::2],
                          RNG.standard_normal(16).astype(dtype)[::2], b),
        "reversed": (x[::-1, ::-1], y[::-1], b[::-1]),
        "broadcast (stride 0)": (np.broadcast_to(y, (6, 8)), y, np.broadcast_to(b[:1], (6, 1))),
        "column of a matrix": (x, RNG.standard_normal((8, 3)).astype(dtype)[:, 1],
                               RNG.standard_normal((6, 2)).astype(dtype)[:, :1] ** 2),
        "byte-swapped": (x.astype(x.dtype.newbyteorder(">")), y, b),
    }


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", list(views(np.float64)))
def test_views_match_numpy_backend(case, dtype):
    args = views(dtype)[case]
    if case not in ("contiguous", "byte-swapped"):
        assert not all(a.flags.c_contiguous for a in args)
    compare(args, dtype)


def test_views_of_three_axes_with_broadcasting():
    def f(a, w):
        return np.sum(np.exp(a * w) * a)

    base = RNG.standard_normal((5, 4, 6))
    for a, w in [(base.transpose(2, 0, 1), RNG.standard_normal((1, 4))[:, ::-1]),
                 (base[:, ::2, ::3], RNG.standard_normal((5, 1, 2))),
                 (np.broadcast_to(RNG.standard_normal(6), (3, 5, 6))[:, ::-1], np.ones((5, 6)))]:
        c = sg.value_and_grad(f, wrt=(0, 1), backend="c")(a, w)
        n = sg.value_and_grad(f, wrt=(0, 1))(a, w)
        np.testing.assert_allclose(c[0], n[0], rtol=1e-12)
        for got, want in zip(c[1], n[1]):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_the_strided_variant_reads_views_in_place(monkeypatch, tmp_path):
    """A view is not copied: the strided kernel runs, with the view's own strides."""
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))
    x = RNG.standard_normal((6, 8))
    compiled = sg.value_and_grad(loss, wrt=(0, 1, 2), backend="c")
    low = compiled.lower(x, x[0], x[:, :1] ** 2)
    c_text = low.path.with_suffix(".c").read_text()
    assert "int kernel_0_strided(" in c_text and "x_strides[1]" in c_text
    module = compiled._signatures[next(iter(compiled._signatures))].module
    calls = []
    original = module._launch_strided

    def spy(general, arrays, strided):
        calls.append([arrays[k].strides for k in strided])
        return original(general, arrays, strided)

    monkeypatch.setattr(module, "_launch_strided", spy)
    view = np.ascontiguousarray(x.T).T
    compiled(x, x[0], x[:, :1] ** 2)
    assert calls == []  # contiguous: the flat kernels
    compiled(view, x[0], x[:, :1] ** 2)
    assert calls and calls[0][0] == view.strides
