"""Review of issue 12's numpy backend (in-place steps as data, the schedule stage, vmap's
out_axes=None): buffer reuse must never overwrite an array that a later step still reads,
whatever was compiled before in the process and however the array is reached (views, aliases,
inlined structural code); results are fresh, writable arrays. Every case checks numbers."""
import numpy as np
import pytest
import torch

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


def _sum_sin(f):
    def loss(*args):
        results = f(*args)
        results = results if isinstance(results, tuple) else (results,)
        return sum(np.sum(np.sin(r)) for r in results)

    loss.__name__ = f"{f.__name__}_loss"
    return loss


# Arrays that die inside a statement which reads them again later through a view, an alias,
# a mask or inlined structural code: each name below is a way back to the reused array.
# (Each has its torch twin, the gradient oracle: masks and kinks defeat central differences.)
def _through_views(x):
    a = np.sin(x) * 3.0
    b = a.reshape(-1).reshape(N, N)[::-1].T
    return 2.0 * np.exp(a) + b - np.swapaxes(a, 0, 1)


def _through_views_torch(x):
    a = torch.sin(x) * 3.0
    return 2.0 * torch.exp(a) + a.flip(0).T - a.T


def _through_an_alias(x):
    a = np.tanh(x) * 2.0
    b = a
    return np.exp(a) * 3.0 - b[:, ::-1] + np.einsum("ij->ji", b)


def _through_an_alias_torch(x):
    a = torch.tanh(x) * 2.0
    return torch.exp(a) * 3.0 - a.flip(1) + a.T


def _through_masks(x):
    a = np.exp(x * 0.1)
    return a + np.where(x > 0, a.T, 0.0) + np.where(x < -0.5, 2.0 * a.T, 0.0)


def _through_masks_torch(x):
    a, zero = torch.exp(x * 0.1), torch.zeros(())
    return a + torch.where(x > 0, a.T, zero) + torch.where(x < -0.5, 2.0 * a.T, zero)


def _through_a_product(x, w):
    h = np.tanh(x @ w)
    return np.exp(h * 0.5) * h.T + (h.T @ h) * 0.01 - np.maximum(h, 0.0)[::-1]


def _through_a_product_torch(x, w):
    h = torch.tanh(x @ w)
    return torch.exp(h * 0.5) * h.T + (h.T @ h) * 0.01 - torch.clamp(h, min=0.0).flip(0)


def _through_a_broadcast(x, r):
    a = np.sin(x) + 1.0
    b = np.broadcast_to(np.exp(r), (N, N))
    return np.exp(a) * b + b.T * a.T


def _through_a_broadcast_torch(x, r):
    a, b = torch.sin(x) + 1.0, torch.exp(r).expand(N, N)
    return torch.exp(a) * b + b.T * a.T


def _results_that_view_each_other(x, r):
    a = np.sin(x) * 2.0
    b = np.exp(a) + 1.0
    return a, a.T, b, b[::-1], x, x.T, np.broadcast_to(r, (N, N)), np.einsum("ii->i", b)


def _results_that_view_each_other_torch(x, r):
    a = torch.sin(x) * 2.0
    b = torch.exp(a) + 1.0
    return a, a.T, b, b.flip(0), x, x.T, r.expand(N, N), torch.diagonal(b)


ADVERSARIAL = [(_through_views, _through_views_torch, 1),
               (_through_an_alias, _through_an_alias_torch, 1),
               (_through_masks, _through_masks_torch, 1),
               (_through_a_product, _through_a_product_torch, 2),
               (_through_a_broadcast, _through_a_broadcast_torch, "row"),
               (_results_that_view_each_other, _results_that_view_each_other_torch, "row")]
IDS = [f.__name__ for f, _, _ in ADVERSARIAL]


def _arguments(kind, dtype):
    x = RNG.normal(size=(N, N)).astype(dtype)
    if kind == "row":
        return [x, RNG.normal(size=(1, N)).astype(dtype)]
    return [x] + [(RNG.normal(size=(N, N)) * 0.05).astype(dtype) for _ in range(kind - 1)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("f, twin, kind", ADVERSARIAL, ids=IDS)
def test_reused_arrays_are_never_read_after_they_are_overwritten(f, twin, kind, dtype):
    args = _arguments(kind, dtype)
    got = sg.jit(f)(*args)
    want = twin(*[torch.tensor(a) for a in args])
    got, want = (got, want) if isinstance(got, tuple) else ((got,), (want,))
    tolerance = 1e-12 if dtype == "float64" else 1e-5
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w.numpy(), rtol=tolerance, atol=tolerance)
        assert g.dtype == dtype and g.flags.writeable
        assert not any(np.shares_memory(g, a) for a in args)
    for i in range(len(got)):
        assert not any(np.shares_memory(got[i], got[j]) for j in range(i + 1, len(got)))


@pytest.mark.parametrize("f, twin, kind", ADVERSARIAL, ids=IDS)
def test_gradients_through_the_reused_arrays_match_torch(f, twin, kind):
    args = _arguments(kind, "float64")
    value, grads = sg.value_and_grad(_sum_sin(f), wrt=tuple(range(len(args))))(*args)
    tensors = [torch.tensor(a, requires_grad=True) for a in args]
    results = twin(*tensors)
    results = results if isinstance(results, tuple) else (results,)
    expected = sum(torch.sin(r).sum() for r in results)
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-12)
    for g, t, a in zip(grads, tensors, args):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-10, atol=1e-10)
        assert g.flags.writeable and not any(np.shares_memory(g, b) for b in args)


W, U = RNG.normal(size=(8, 8)) * 0.4, RNG.normal(size=(4, 8)) * 0.5


def _names_like_the_generated_ones(W, U, xs):
    def cell(h, x):
        cell_loop = np.tanh(h @ W + x @ U)  # named like the loop's driver
        _names_like_the_generated_ones_value_and_grad = cell_loop * 2.0  # like the function
        return cell_loop, np.sum(_names_like_the_generated_ones_value_and_grad ** 2)

    cell_loop = np.zeros(8) + np.sum(W) * 0.01  # the driver's and the body's names, outside
    cell_vjp_loop = U * 1.0
    h, cell_results = sg.scan(cell, cell_loop, xs)
    cell = np.sum(cell_results) + np.sum(h * cell_vjp_loop[0])
    return cell


def _names_like_the_generated_ones_torch(W, U, xs):
    h, total = torch.zeros(8, dtype=torch.float64) + torch.sum(W) * 0.01, 0.0
    for x in xs:
        h = torch.tanh(h @ W + x @ U)
        total = total + torch.sum((h * 2.0) ** 2)
    return total + torch.sum(h * U[0])


def test_user_names_like_the_loop_functions_keep_their_meaning():
    xs = RNG.normal(size=(6, 4))
    value, (gW, gU) = sg.value_and_grad(_names_like_the_generated_ones, wrt=("W", "U"))(W, U, xs)
    tW, tU = torch.tensor(W, requires_grad=True), torch.tensor(U, requires_grad=True)
    expected = _names_like_the_generated_ones_torch(tW, tU, torch.tensor(xs))
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(gW, tW.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gU, tU.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert sg.jit(_names_like_the_generated_ones)(W, U, xs) == pytest.approx(value, rel=1e-12)
