"""The performance transformations of the generated code keep results what they were:
blocked regions (row blocks on threads) against whole-array code, evaluation forms of the
stable primitives against their definitions, float32 kept float32."""
from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.special

import symgrad as sg
from symgrad.backends.numpy import blocking, buffers, evaluation_forms

N = (1 << 19) + 1000  # above the blocking threshold, not a multiple of the block size
RNG = np.random.default_rng(7)
X = RNG.standard_normal(N)
Y = RNG.standard_normal(N)
M = RNG.standard_normal((1100, 500))
COLUMN = RNG.standard_normal((1100, 1))
ROW = RNG.standard_normal(500)


def w4(x, y):
    return np.sum(np.log1p(np.exp(np.sin(x) * y)) + np.sqrt(x * x + y * y + 1))


def broadcast_2d(m, c, r):
    return np.sum(np.tanh(m * c + r) ** 2 * m)


def with_where(x, y):
    return np.sum(np.where(x > 0, np.sqrt(np.abs(x)), x ** 2) * y)


def centred(x):
    s = np.sin(x)
    return np.sum((s - np.mean(s)) ** 2 * x)


def elementwise_only(x, y):
    return np.sin(x) * np.cos(y) + x


CASES = [
    ("w4", lambda: sg.value_and_grad(w4, wrt=("x", "y")), (X, Y)),
    ("w4_f32", lambda: sg.value_and_grad(w4, wrt=("x", "y")),
     (np.resize(X, 2 * N).astype(np.float32), np.resize(Y, 2 * N).astype(np.float32))),
    ("broadcast_2d", lambda: sg.value_and_grad(broadcast_2d, wrt=(0, 1, 2)), (M, COLUMN, ROW)),
    ("where", lambda: sg.value_and_grad(with_where, wrt=(0, 1)), (X, Y)),
    ("centred", lambda: sg.value_and_grad(centred), (X,)),
    ("jit", lambda: sg.jit(elementwise_only), (X, Y)),
    ("vjp", lambda: sg.CompiledFunction(elementwise_only, "vjp", wrt=(0, 1)), (X, Y, Y)),
]


def _leaves(result):
    if isinstance(result, (tuple, list)):
        return [leaf for item in result for leaf in _leaves(item)]
    return [np.asarray(result)]


def _compile_and_run(make, args, cache, monkeypatch, min_bytes, reuse_min_bytes=1 << 62):
    monkeypatch.setattr(blocking, "BLOCKING_MIN_BYTES", min_bytes)
    monkeypatch.setattr(buffers, "REUSE_MIN_BYTES", reuse_min_bytes)
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(cache))
    fn = make()
    return fn, fn(*args)


@pytest.mark.parametrize("name,make,args", CASES, ids=[c[0] for c in CASES])
def test_blocked_equals_whole_array_code(name, make, args, tmp_path, monkeypatch):
    blocked_fn, blocked = _compile_and_run(make, args, tmp_path / "blocked", monkeypatch,
                                           blocking.BLOCKING_MIN_BYTES)
    assert "_in_blocks(" in blocked_fn.lower(*args).source
    whole_fn, whole = _compile_and_run(make, args, tmp_path / "whole", monkeypatch, 1 << 62)
    assert "_in_blocks(" not in whole_fn.lower(*args).source
    for got, want in zip(_leaves(blocked), _leaves(whole), strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        if got.ndim and name != "centred":  # the same ufunc calls on every element
            np.testing.assert_array_equal(got, want)
        else:  # a full sum adds its terms in another order (and `centred` reads one)
            rtol = 1e-5 if got.dtype == np.float32 else 1e-12
            np.testing.assert_allclose(got, want, rtol=rtol)


def test_results_do_not_depend_on_the_thread_count(monkeypatch):
    fn = sg.value_and_grad(w4, wrt=("x", "y"))
    fn(X, Y)
    generated = next(iter(fn._signatures.values())).function
    results = []
    for threads in (1, 2, 5):
        monkeypatch.setitem(generated.__globals__, "_THREADS", threads)
        results.append(_leaves(fn(X, Y)))
    for other in results[1:]:
        for got, want in zip(other, results[0]):
            np.testing.assert_array_equal(got, want)  # partial sums are added in block order


def test_errors_and_errstate_reach_the_block_threads(monkeypatch):
    fn = sg.value_and_grad(lambda x: np.sum(np.log(x) * np.sin(x)))
    x = np.abs(X) + 1
    fn(x)
    generated = next(iter(fn._signatures.values())).function
    monkeypatch.setitem(generated.__globals__, "_THREADS", 2)
    x[-5] = -1.0  # the last block: a helper thread or the caller's, whichever claims it
    with np.errstate(invalid="raise"):
        with pytest.raises(FloatingPointError):
            fn(x)
    with np.errstate(invalid="ignore"):
        value, grad = fn(x)
    assert np.isnan(value) and np.isfinite(grad[0])


# ---------------------------------------------------------------------------------------------
# Evaluation forms of softplus and sigmoid (backends/numpy/evaluation_forms.py)
# ---------------------------------------------------------------------------------------------
EXTREMES = np.array([-np.inf, -1e308, -1000.0, -40.0, -1.5, -1e-300, 0.0, 1e-300, 0.3, 40.0,
                     1000.0, 1e308, np.inf])


def _generated_code(source: str) -> str:
    """The generated function's statements, without the helpers and the comments (which
    quote the user's source)."""
    lines = source.split("\ndef ")[-1].splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def _assert_matches_torch(compiled, torch_fn, args, atol):
    """`compiled` (value_and_grad with respect to every argument) against PyTorch, float64."""
    import torch

    value, grads = compiled(*args)
    tensors = [torch.tensor(a, requires_grad=True) for a in args]
    expected = torch_fn(*tensors)
    expected.backward()
    np.testing.assert_allclose(value, expected.item(), rtol=1e-12)
    for g, t in zip(grads, tensors):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-10, atol=atol)


def _softplus_reference(z):
    return np.logaddexp(0, z)


@pytest.mark.parametrize("size", [len(EXTREMES), evaluation_forms.LARGE_ELEMENTWISE + 7])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softplus_and_sigmoid_forms_exact_at_extremes(size, dtype):
    with np.errstate(over="ignore"):  # +-1e308 is +-inf in float32
        z = np.resize(EXTREMES, size).astype(dtype)
    softplus = sg.jit(lambda z: np.log1p(np.exp(z)))
    sigmoid = sg.grad(lambda z: np.sum(np.log1p(np.exp(z))))
    bce = sg.value_and_grad(lambda z: np.sum(np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))))
    with np.errstate(over="ignore"):
        want_softplus = _softplus_reference(z)
        want_sigmoid = scipy.special.expit(z)
    got_softplus = softplus(z)
    got_sigmoid = sigmoid(z)
    value, got_bce_grad = bce(z)
    for got in (got_softplus, got_sigmoid, got_bce_grad):
        assert got.dtype == dtype
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(got_softplus, want_softplus, rtol=rtol, atol=0)
    np.testing.assert_allclose(got_sigmoid, want_sigmoid, rtol=rtol, atol=0)
    # softplus(z) and its derivative sigmoid(z) share exp(-|z|) on large arrays
    np.testing.assert_allclose(value, np.sum(want_softplus), rtol=rtol)
    np.testing.assert_allclose(got_bce_grad, want_sigmoid, rtol=rtol, atol=0)
    # np.logaddexp(0, z) is a softplus: the same forms, with no scalar logaddexp loop
    logaddexp = sg.value_and_grad(lambda z: np.sum(np.logaddexp(0, z)))
    value, grad = logaddexp(z)
    np.testing.assert_allclose(value, np.sum(want_softplus), rtol=rtol)
    np.testing.assert_allclose(grad, want_sigmoid, rtol=rtol, atol=0)
    large = size >= evaluation_forms.LARGE_ELEMENTWISE
    assert ("np.logaddexp" in _generated_code(logaddexp.lower(z).source)) == (not large)


@pytest.mark.parametrize("size", [len(EXTREMES), evaluation_forms.LARGE_ELEMENTWISE + 7])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_derivative_exact_at_extremes_with_one_exponential(size, dtype):
    with np.errstate(over="ignore"):  # +-1e308 is +-inf in float32
        z = np.resize(EXTREMES, size).astype(dtype)
    derivative = sg.grad(lambda z: np.sum(1 / (1 + np.exp(-z))))
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(z.astype(np.float64)))
    want = e / (1 + e) ** 2  # sigmoid(z) * sigmoid(-z), without cancellation
    got = derivative(z)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want.astype(dtype), rtol=1e-6 if dtype == np.float32
                               else 1e-14, atol=0)
    code = _generated_code(derivative.lower(z).source)
    assert code.count("np.exp(") == (1 if size >= evaluation_forms.LARGE_ELEMENTWISE else 0)


def test_large_arrays_use_the_shared_exponential():
    z = np.linspace(-5, 5, evaluation_forms.LARGE_ELEMENTWISE)
    source = sg.value_and_grad(
        lambda z: np.mean(np.maximum(z, 0) - z * 0.3 + np.log1p(np.exp(-np.abs(z))))).lower(
        z).source
    assert "np.logaddexp" not in source and "_sigmoid" not in source
    assert source.count("np.exp(-np.abs(z))") == 1


def test_square_root_computed_once_beside_its_reciprocal():
    source = sg.value_and_grad(lambda x: np.sum(np.sqrt(x * x + 1)) * 2).lower(
        np.ones(3)).source
    assert _generated_code(source).count("np.sqrt(") == 1


# ---------------------------------------------------------------------------------------------
# float32 stays float32
# ---------------------------------------------------------------------------------------------
def bce(x, y, w, b):
    z = x @ w + b
    return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))


@pytest.mark.parametrize("n", [3, 4096])
def test_float32_stays_float32(n):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, 8)).astype(np.float32)
    y = (rng.random(n) > 0.5).astype(np.float32)
    w = rng.standard_normal(8).astype(np.float32)
    b = np.float32(0.1) * np.ones((), np.float32)
    fn = sg.value_and_grad(bce, wrt=("w", "b"))
    value, (gw, gb) = fn(x, y, w, b)
    assert np.asarray(value).dtype == gw.dtype == gb.dtype == np.float32
    reference = sg.value_and_grad(bce, wrt=("w", "b"))(*(a.astype(np.float64)
                                                          for a in (x, y, w, b)))
    np.testing.assert_allclose(gw, reference[1][0], rtol=1e-4, atol=1e-6)
    source = fn.lower(x, y, w, b).source
    assert "float64" not in source and "astype" not in source


# ---------------------------------------------------------------------------------------------
# Buffer reuse: results written into arrays no longer read (buffers.py, inplace.py)
# ---------------------------------------------------------------------------------------------
def attention(x, wq, wk, wv):
    q, k, v = x @ wq, x @ wk, x @ wv
    s = q @ k.transpose(0, 2, 1) / 8.0
    s = s - np.max(s, axis=-1, keepdims=True)
    e = np.exp(s)
    p = e / np.sum(e, axis=-1, keepdims=True)
    return np.mean((p @ v) ** 2)


def views_and_reuse(a, b):
    t = np.exp(a * 0.1)            # read again through views after other large temporaries
    u = t.T * b                    # a transposed view of t
    v = np.tanh(u) * t[::-1]       # a reversed view of t
    w = (v @ b) / 100.0            # a matrix product whose array may be reused
    return np.sum(w * np.sin(t) + np.reshape(u, (-1,))[: w.size].reshape(w.shape))


def mlp(x, w1, b1, w2):
    h = np.tanh(x @ w1 + b1)
    z = h @ w2
    z = z - np.max(z, axis=1, keepdims=True)
    return np.mean(np.log(np.sum(np.exp(z), axis=1)) - z[:, 0])


def multi_head_attention(x, wq, wk, wv):
    """Heads as reshape-then-transpose views of the projections, read after later products
    were written into reused arrays (a view of a view, inlined into its reader)."""
    b, t, d = x.shape
    q, k, v = ((x @ w).reshape(b, t, 4, d // 4).transpose(0, 2, 1, 3) for w in (wq, wk, wv))
    s = q @ k.transpose(0, 1, 3, 2) / (d // 4) ** 0.5  # a Python float: float32 stays
    e = np.exp(s - np.max(s, axis=-1, keepdims=True))
    o = (e / np.sum(e, axis=-1, keepdims=True)) @ v
    return np.mean(o.transpose(0, 2, 1, 3).reshape(b, t, d) ** 2)


R = np.random.default_rng(3)
REUSE_CASES = [
    ("multi_head_attention", multi_head_attention, (R.standard_normal((2, 64, 128)),) + tuple(
        R.standard_normal((128, 128)) / 11 for _ in range(3)), (1, 2, 3)),
    ("attention", attention, (R.standard_normal((4, 96, 32)),) + tuple(
        R.standard_normal((32, 32)) / 6 for _ in range(3)), (1, 2, 3)),
    ("views", views_and_reuse, (R.standard_normal((200, 200)), R.standard_normal((200, 200))),
     (0, 1)),
    ("mlp", mlp, (R.random((300, 150)), R.standard_normal((150, 200)) / 12,
                  R.standard_normal(200), R.standard_normal((200, 10)) / 14), (1, 2, 3)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,fn,args,wrt", REUSE_CASES, ids=[c[0] for c in REUSE_CASES])
def test_buffer_reuse_never_clobbers_a_live_value(name, fn, args, wrt, dtype, tmp_path,
                                                  monkeypatch):
    args = tuple(a.astype(dtype) for a in args)
    originals = [a.copy() for a in args]
    make = lambda: sg.value_and_grad(fn, wrt=wrt)  # noqa: E731
    reused_fn, reused = _compile_and_run(make, args, tmp_path / "reuse", monkeypatch,
                                         1 << 62, reuse_min_bytes=buffers.REUSE_MIN_BYTES)
    assert "out=" in reused_fn.lower(*args).source
    _, fresh = _compile_and_run(make, args, tmp_path / "fresh", monkeypatch, 1 << 62)
    rtol = 2e-5 if dtype == np.float32 else 1e-12  # operations regrouped: rounding only
    for got, want in zip(_leaves(reused), _leaves(fresh), strict=True):
        assert got.dtype == want.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.max(np.abs(want)))
    for arg, original in zip(args, originals):
        np.testing.assert_array_equal(arg, original)  # inputs are never written
    again = reused_fn(*args)
    for got, want in zip(_leaves(again), _leaves(reused)):
        np.testing.assert_array_equal(got, want)
    grads = _leaves(reused)[1:]
    for i, g in enumerate(grads):  # every result is an array of its own
        assert not any(np.shares_memory(g, h) for h in grads[i + 1:])


def test_inplace_steps_print_exactly():
    import sympy as sp

    from symgrad.backends.numpy import InplaceWriter, NumpyExpressionPrinter

    a, b, c, m = sp.symbols("a b c m", real=True)
    shapes = {"a": (8, 4), "b": (8, 4), "c": (8, 1), "m": (8, 4)}
    writer = InplaceWriter(NumpyExpressionPrinter({}), lambda e: np.broadcast_shapes(
        *[shapes[s.name] for s in e.free_symbols]) if e.free_symbols else ())
    assert writer.steps(-a * b / c**2, "t", "buf") == [
        "t = np.multiply(a, b, out=buf)", "t /= -c**2"]
    assert writer.steps(sp.exp(a * b + c), "t", "buf") == [
        "t = np.multiply(a, b, out=buf)", "t += c", "np.exp(t, out=t)"]
    assert writer.steps(a + sp.Piecewise((c, sp.Gt(m, 0)), (0, True)), "t", "a") == [
        "t = a", "np.add(t, c, out=t, where=(m > 0))"]
    assert writer.steps(a / 4, "t", "buf") == ["t = np.divide(a, 4, out=buf)"]
    assert writer.steps((1 - m**2) * b, "t", "buf") == [  # tanh's derivative: no negation
        "t = np.square(m, out=buf)", "np.subtract(1, t, out=t)", "t *= b"]
    assert writer.steps(a, "t", "buf") is None  # nothing to compute: an alias


# ---------------------------------------------------------------------------------------------
# Reductions over many short rows (einsum sums, moved maxima, fused row dot products)
# ---------------------------------------------------------------------------------------------
def row_reductions(x, w):
    return (np.sum(np.sum(x * w, axis=-1) ** 2)              # a row-wise dot product
            + np.sum(np.max(x, axis=-1, keepdims=True) * x)  # a moved maximum, kept
            + np.sum(np.min(x, axis=-1) ** 3)                # a moved minimum
            + np.sum(np.sum(np.tanh(x), axis=-1, keepdims=True) * w))  # an einsum sum


def row_reductions_torch(x, w):
    import torch
    return (torch.sum(torch.sum(x * w, -1) ** 2) + torch.sum(torch.amax(x, -1, keepdim=True) * x)
            + torch.sum(torch.amin(x, -1) ** 3)
            + torch.sum(torch.sum(torch.tanh(x), -1, keepdim=True) * w))


@pytest.mark.parametrize("shape", [(100, 3), (4, 50, 7), (70, 32), (3, 5), (80, 2)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_row_reductions_match_torch_in_every_printed_form(shape, dtype):
    import torch
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape).astype(dtype)
    x[..., 1] = x[..., 0]  # ties for the maximum and minimum in every row
    w = rng.standard_normal(shape).astype(dtype)
    f = sg.value_and_grad(row_reductions, wrt=(0, 1))
    value, grads = f(x, w)
    tx, tw = (torch.tensor(a.astype(np.float64), requires_grad=True) for a in (x, w))
    expected = row_reductions_torch(tx, tw)
    expected.backward()
    rtol = 1e-12 if dtype == np.float64 else 1e-4
    assert value.dtype == dtype and all(g.dtype == dtype for g in grads)
    np.testing.assert_allclose(value, expected.item(), rtol=rtol)
    for g, t in zip(grads, (tx.grad, tw.grad)):
        np.testing.assert_allclose(g, t.numpy(), rtol=rtol, atol=rtol)
    lowered = f.lower(x, w)
    source = lowered.source
    many_rows = np.prod(shape[:-1]) >= 64
    # the fast forms say what they compute, above them and in the math view
    assert ("over all rows at once" in source) == (many_rows and shape[-1] <= 32)
    assert "moveaxis" not in lowered.math() and "np.einsum('ij->i'" not in lowered.math()
    tiny = shape[-1] <= 4  # a sum of its columns: x[..., 0] + x[..., 1] + ...
    assert ("np.einsum('ij,ij->i'" in source or "np.einsum('ijk,ijk->ij'" in source) == (
        many_rows and not tiny)
    assert ("[..., 0] + " in source) == (many_rows and tiny)
    assert ("np.moveaxis(x, -1, 0).copy()" in source) == (many_rows and shape[-1] <= 32)


def _plain_forms_run(source: str) -> tuple[str, int]:
    """The generated source with each statement under an `..., over all rows at once` comment
    replaced by the plain statement that comment shows, and how many were replaced."""
    lines, out, replaced = source.splitlines(), [], 0
    for k, line in enumerate(lines):
        previous = lines[k - 1].strip() if k else ""
        if previous.startswith("# ") and previous.endswith(", over all rows at once"):
            indent = line[:len(line) - len(line.lstrip())]
            line = indent + previous[2:-len(", over all rows at once")]
            replaced += 1
        out.append(line)
    return "\n".join(out) + "\n", replaced


@pytest.mark.parametrize("shape", [(100, 3), (70, 32)])
def test_fast_row_forms_keep_their_plain_form_in_the_comment(shape):
    """Every statement holding a fast form of a reduction (the columns of a short row added, a
    moved maximum, an einsum sum, a row-wise dot product as an einsum), alone or inside a larger expression, has the same statement
    in plain numpy in the comment above it; run instead of the fast one, it gives the same
    numbers."""
    rng = np.random.default_rng(12)
    x, w = rng.standard_normal(shape), rng.standard_normal(shape)
    f = sg.value_and_grad(row_reductions, wrt=(0, 1))
    source = f.lower(x, w).source
    fast = ("[..., 0] + ", "np.moveaxis(", "np.einsum('ij->i'", "np.einsum('ij,ij->i'")
    statements = [line for line in source.splitlines()
                  if not line.lstrip().startswith("#") and any(f in line for f in fast)]
    # alone (`t1 = np.einsum('ij->i', t0)`) and inside an expression (`x_bar = ...`)
    assert len(statements) > 1 and any(re.match(r"\s*x_bar = ", s) for s in statements), source
    plain, replaced = _plain_forms_run(source)
    assert replaced == len(statements), source
    assert not any(f in line for line in plain.splitlines() for f in fast
                   if not line.lstrip().startswith("#")), plain
    spaces = [{}, {}]
    for space, text in zip(spaces, (source, plain)):
        exec(compile(text, "<generated>", "exec"), space)
    expected = spaces[0]["row_reductions_value_and_grad"](x, w)
    value, grads = spaces[1]["row_reductions_value_and_grad"](x, w)
    np.testing.assert_allclose(value, expected[0], rtol=1e-12)
    for g, e in zip(grads, expected[1]):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14)


def test_row_reductions_propagate_nan_as_torch_and_keep_integer_sums():
    import torch

    def f(x, mask):
        return np.sum(np.max(x, axis=1) + np.sum(mask, axis=1) * np.sum(x, axis=1))

    x = np.ones((80, 4))
    x[3, 2] = np.nan
    mask = np.ones((80, 4), dtype=bool)
    value, grad = sg.value_and_grad(f)(x, mask)
    t = torch.tensor(x, requires_grad=True)
    expected = torch.sum(torch.amax(t, 1) + torch.sum(torch.tensor(mask), 1) * torch.sum(t, 1))
    expected.backward()
    assert np.isnan(value) and np.isnan(expected.item())
    # the count of a bool mask, not its OR (the row holding the NaN: torch gives NaN, we 4)
    np.testing.assert_array_equal(np.delete(grad, 3, 0), np.delete(t.grad.numpy(), 3, 0))


# ---------------------------------------------------------------------------------------------
# An expression around a large matrix product computed in the product's own array
# ---------------------------------------------------------------------------------------------
PRODUCT_FORMS = {
    "bias_tanh": lambda x, w, b, c: np.tanh(x @ w + b),
    "product_read_late": lambda x, w, b, c: np.exp(c) * (x @ w),  # exp(c) would go first
    "product_times_bias": lambda x, w, b, c: np.exp(b) * (x @ w + b),
    "scaled_shifted": lambda x, w, b, c: 2.5 * (x @ w) - b,
    "squared_root": lambda x, w, b, c: np.sqrt(1 + (x @ w) ** 2),
    "divided": lambda x, w, b, c: b / (x @ w + 3),
}


@pytest.mark.parametrize("name", sorted(PRODUCT_FORMS))
def test_expressions_of_a_product_computed_in_its_array_keep_their_values(name):
    form = PRODUCT_FORMS[name]

    def f(x, w, b, c):
        return form(x, w, b, c)

    rng = np.random.default_rng(2)
    args = rng.random((256, 64)), rng.random((64, 128)) / 8, rng.random(128), rng.random((256, 128))
    compiled = sg.jit(f)
    np.testing.assert_allclose(compiled(*args), form(*args), rtol=1e-13)
    source = compiled.lower(*args).source
    assert ("computed in the array of the product" in source) == (name != "product_read_late")


@pytest.mark.parametrize("size", [8, 4096])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_maximum_step_is_branch_free_on_large_arrays_with_the_same_values(size, dtype):
    """d/dz max(z, 0) is 1/2 at ties as torch.maximum, in both printed forms."""
    import torch

    def relu_energy(z, w):
        return np.sum(np.maximum(z, 0) * w)

    z = np.resize(np.array([-2.0, 0.0, -0.0, 3.0, np.inf, -np.inf, 1e-300, -1e-300]), size)
    w = np.linspace(0.5, 2.0, size)
    z, w = z.astype(dtype), w.astype(dtype)
    compiled = sg.grad(relu_energy)
    grad = compiled(z, w)
    t = torch.tensor(z.astype(np.float64), requires_grad=True)
    torch.sum(torch.maximum(t, torch.zeros(())) * torch.tensor(w.astype(np.float64))).backward()
    assert grad.dtype == dtype
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-6)
    assert ("np.heaviside" in compiled.lower(z, w).source) == (size < evaluation_forms.LARGE_ELEMENTWISE)


def test_whole_number_factors_made_by_constant_arithmetic_are_not_printed():
    """0.5*a**2 differentiates to 1.0*a in SymPy floats: printed as a, with no pass for 1.0."""
    def huber(r):
        a = np.abs(r)
        return np.sum(np.where(a < 1.0, 0.5 * a ** 2, a - 0.5))

    r = np.linspace(-3, 3, 11)
    compiled = sg.value_and_grad(huber)
    _, grad = compiled(r)
    np.testing.assert_allclose(grad, np.clip(r, -1, 1), rtol=1e-15)
    assert "1.0*" not in compiled.lower(r).source


def test_a_sum_divides_by_a_common_factor_only_when_every_term_has_it():
    def centring(x):
        return np.sum(np.tanh(x - np.mean(x, axis=1, keepdims=True)))

    def averaging(a, b):
        return np.sum(np.sin(a / 2 + b / 2))

    x = np.ones((4, 8))
    source = sg.grad(centring).lower(x).source
    assert "x.sum(axis=1, keepdims=True)/8 - x" in source and "8*x" not in source
    assert "(a + b)/2" in sg.grad(averaging).lower(x, x).source


def test_products_with_one_term_per_element_are_broadcast_multiplications():
    """g[:, None] @ w.T (a single-output layer's gradient) and batched outer products."""
    import torch

    def single_output_layer(x, w, v):
        h = np.tanh(x @ w)            # (n, k)
        return np.sum((h @ v) ** 2)   # v (k, 1): the backward has (n, 1) @ (1, k)

    def batched_outer(a, b):
        return np.sum(np.sin(a[..., None] @ b[:, None, :]))  # (2, 3, 1) @ (2, 1, 4)

    rng = np.random.default_rng(9)
    for fn, args, torch_fn in [
        (single_output_layer, (rng.normal(size=(6, 3)), rng.normal(size=(3, 4)),
                               rng.normal(size=(4, 1))),
         lambda x, w, v: torch.sum((torch.tanh(x @ w) @ v) ** 2)),
        (batched_outer, (rng.normal(size=(2, 3)), rng.normal(size=(2, 4))),
         lambda a, b: torch.sum(torch.sin(a[..., None] @ b[:, None, :]))),
    ]:
        compiled = sg.value_and_grad(fn, wrt=tuple(range(len(args))))
        _assert_matches_torch(compiled, torch_fn, args, atol=1e-13)
        code = _generated_code(compiled.lower(*args).source)
        assert code.count(" @ ") == (5 if fn is single_output_layer else 0), code
        assert "@ v.T" not in code


def test_a_sum_of_a_broadcast_is_a_multiplication_not_an_array_of_ones():
    import torch

    def nested(x):
        return np.sum(np.sin(x) * np.sum(x * x, axis=(1, 2), keepdims=True)
                      + np.max(x, axis=2)[..., None] * np.sum(np.cos(x), axis=(1, 2))[:, None, None])

    def nested_torch(t):
        return torch.sum(torch.sin(t) * torch.sum(t * t, (1, 2), keepdim=True)
                         + torch.amax(t, 2)[..., None] * torch.sum(torch.cos(t), (1, 2))[:, None, None])

    x = np.random.default_rng(1).normal(size=(100, 3, 4))
    compiled = sg.value_and_grad(nested)
    value, grad = compiled(x)
    t = torch.tensor(x, requires_grad=True)
    expected = nested_torch(t)
    expected.backward()
    np.testing.assert_allclose(value, expected.item(), rtol=1e-13)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-12, atol=1e-13)
    code = _generated_code(compiled.lower(x).source)
    assert "np.ones" not in code and "np.full" not in code


def test_broadcasts_into_a_short_last_axis_are_computed_column_by_column():
    """(n, k, 2) differences of broadcast operands: numpy's inner loop would be 2 long."""
    import torch

    def mixture(x, means, scale):
        d = x[:, None, :] - means[None, :, :]
        return np.sum(np.log1p(np.sum(d * d, axis=-1) * scale) + np.tanh(d * means).sum())

    def mixture_torch(x, means, scale):
        d = x[:, None, :] - means[None, :, :]
        return torch.sum(torch.log1p(torch.sum(d * d, -1) * scale) + torch.tanh(d * means).sum())

    rng = np.random.default_rng(12)
    args = rng.normal(size=(4096, 2)), rng.normal(size=(8, 2)), rng.random(8)
    compiled = sg.value_and_grad(mixture, wrt=(0, 1, 2))
    _assert_matches_torch(compiled, mixture_torch, args, atol=1e-10)
    source = compiled.lower(*args).source
    assert "one column of the last axis at a time" in source
    assert "[..., 1] = " in source
