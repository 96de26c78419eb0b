"""numpy.linalg beyond the oracle case table (tests/linalg_cases.py): second derivatives
against torch.autograd.functional.hessian, the conventions at degenerate points
(docs/conventions.md, "Linear algebra"), composite models, batching, errors and the printed
numpy calls."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import symgrad as sg
from gradcheck import central_difference, convention_rows, torch_gradients
from symgrad.errors import GradientError, ShapeError, UnsupportedFunctionError

T64 = torch.float64


def spd(x):
    return x @ x.T + np.eye(x.shape[0])


def tspd(x):
    return x @ x.T + torch.eye(x.shape[0], dtype=T64)


# ---------------------------------------------------------------------------------------------
# Second derivatives: every VJP rule is itself differentiable
# ---------------------------------------------------------------------------------------------
W = np.arange(9.0).reshape(3, 3) / 4
TW = torch.tensor(W)
HESSIAN_CASES = [
    ("solve", lambda x: np.sum(np.linalg.solve(x + 3 * np.eye(3), W) ** 2),
     lambda t: torch.sum(torch.linalg.solve(t + 3 * torch.eye(3, dtype=T64), TW) ** 2)),
    ("inv", lambda x: np.sum(np.sin(np.linalg.inv(x + 3 * np.eye(3)))),
     lambda t: torch.sum(torch.sin(torch.linalg.inv(t + 3 * torch.eye(3, dtype=T64))))),
    ("det", lambda x: np.linalg.det(x) ** 2, lambda t: torch.linalg.det(t) ** 2),
    ("slogdet", lambda x: np.linalg.slogdet(spd(x))[1],
     lambda t: torch.linalg.slogdet(tspd(t))[1]),
    ("cholesky", lambda x: np.sum(np.sin(np.linalg.cholesky(spd(x)))),
     lambda t: torch.sum(torch.sin(torch.linalg.cholesky(tspd(t))))),
    ("eigvalsh", lambda x: np.sum(np.linalg.eigvalsh(x + x.T) ** 3),
     lambda t: torch.sum(torch.linalg.eigvalsh(t + t.T) ** 3)),
    ("eigh_vectors", lambda x: np.sum(np.linalg.eigh(spd(x))[1] ** 2 * W),
     lambda t: torch.sum(torch.linalg.eigh(tspd(t))[1] ** 2 * TW)),
    ("svd_values", lambda x: np.sum(np.linalg.svd(x, compute_uv=False) ** 3),
     lambda t: torch.sum(torch.linalg.svdvals(t) ** 3)),
    ("svd_vectors", lambda x: np.sum(np.linalg.svd(x)[0] ** 2 * W + np.linalg.svd(x)[2] ** 2),
     lambda t: torch.sum(torch.linalg.svd(t)[0] ** 2 * TW + torch.linalg.svd(t)[2] ** 2)),
    ("qr", lambda x: np.sum(np.sin(np.linalg.qr(x)[0]) + np.linalg.qr(x)[1] ** 2),
     lambda t: torch.sum(torch.sin(torch.linalg.qr(t)[0]) + torch.linalg.qr(t)[1] ** 2)),
    ("lstsq", lambda x: np.sum(np.linalg.lstsq(np.vstack([x, W]), np.arange(6.0),
                                               rcond=None)[0] ** 2),
     lambda t: torch.sum((torch.linalg.pinv(torch.vstack([t, TW]))
                          @ torch.arange(6.0, dtype=T64)) ** 2)),
    ("triu_tril", lambda x: np.sum(np.triu(x) ** 3 + np.tril(x, -1) * np.triu(x, 1).T),
     lambda t: torch.sum(torch.triu(t) ** 3 + torch.tril(t, -1) * torch.triu(t, 1).T)),
    ("kron_cross_diag", lambda x: np.sum(np.kron(x, x) ** 2) + np.sum(np.cross(x, x ** 2) ** 2)
     + np.sum(np.diag(np.diag(x)) @ x ** 2),
     lambda t: torch.sum(torch.kron(t, t) ** 2) + torch.sum(torch.linalg.cross(t, t ** 2) ** 2)
     + torch.sum(torch.diag(torch.diag(t)) @ t ** 2)),
    ("nuclear_norm", lambda x: np.linalg.norm(x, "nuc") ** 2,
     lambda t: torch.linalg.matrix_norm(t, "nuc") ** 2),
]


@pytest.mark.parametrize("name, f, torch_f", HESSIAN_CASES, ids=[c[0] for c in HESSIAN_CASES])
def test_hessian_matches_torch(name, f, torch_f):
    x = np.random.default_rng(4).normal(size=(3, 3))
    hessian = sg.hessian(f)(x)
    expected = torch.autograd.functional.hessian(torch_f, torch.tensor(x)).numpy()
    np.testing.assert_allclose(hessian, expected, rtol=1e-7, atol=1e-8)


# ---------------------------------------------------------------------------------------------
# Degenerate points (docs/conventions.md, "Linear algebra")
# ---------------------------------------------------------------------------------------------
def test_convention_det_singular():
    a = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])  # rank 2
    grad = sg.grad(lambda x: np.linalg.det(x))(a)
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, central_difference(np.linalg.det, [a], 0), atol=1e-8)
    cofactor = np.array([[4.0, 4.0, -4.0], [-2.0, -2.0, 2.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(grad, cofactor, atol=1e-12)
    rank_one = np.outer([1.0, 2.0, 3.0], [1.0, -1.0, 2.0])  # every cofactor is 0
    np.testing.assert_allclose(sg.grad(lambda x: np.linalg.det(x))(rank_one), 0, atol=1e-12)


def test_convention_eigenvectors_repeated():
    # The projector onto a whole repeated eigenspace is differentiable: the tie terms are 0
    # and the answer is right; the generated code cannot know the loss, so it warns.
    def projector(x):
        v = np.linalg.eigh(x)[1]
        return np.sum((v[:, :2] @ v[:, :2].T) * W)

    a = np.diag([1.0, 1.0, 3.0]) + 0.0
    with pytest.warns(RuntimeWarning, match="repeated eigenvalues"):
        grad = sg.grad(projector)(a)
    assert np.isfinite(grad).all()
    direction = np.random.default_rng(3).normal(size=(3, 3))
    direction = direction + direction.T
    step = 1e-6
    expected = (projector(a + step * direction) - projector(a - step * direction)) / (2 * step)
    np.testing.assert_allclose(np.sum(grad * direction), expected, rtol=1e-6)
    torch_grad = torch_gradients(lambda t: torch.sum(
        torch.linalg.eigh(t)[1][:, :2] @ torch.linalg.eigh(t)[1][:, :2].T * TW), [a], (0,))[1][0]
    assert not np.isfinite(torch_grad).all()  # PyTorch: NaN (1/(w_j - w_i) = inf)


def test_distinct_eigenvalues_do_not_warn():
    a = np.diag([1.0, 2.0, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sg.grad(lambda x: np.sum(np.linalg.eigh(x)[1] ** 2 * W))(a)


def test_convention_eigenvalues_repeated():
    a = np.diag([1.0, 1.0, 3.0])
    grad = sg.grad(lambda x: np.sum(np.linalg.eigvalsh(x) ** 2))(a)
    np.testing.assert_allclose(grad, 2 * a, atol=1e-12)


def test_convention_eigenvalues_repeated_nuclear_norm():
    # the nuclear norm of a full-rank matrix is differentiable even with repeated singular
    # values: its gradient is U V^T (the orthogonal polar factor)
    q = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
    a = 2.0 * q  # all singular values equal
    grad = sg.grad(lambda x: np.linalg.norm(x, "nuc"))(a)
    np.testing.assert_allclose(grad, q, atol=1e-12)


def test_convention_singular_value_zero():
    # the leading singular pair of a rank-1 matrix is differentiable; the zero singular values
    # (repeated, too) give 1/s and 1/(s_j^2 - s_i^2) terms that are left out
    low_rank = np.outer([1.0, 2.0, 0.5], [1.0, 0.0, -1.0])

    def leading(x):
        u, s, vh = np.linalg.svd(x)
        return np.sum(u[:, :1] @ vh[:1] * W)

    for a in (low_rank, np.diag([2.0, 0.0, 0.0])):  # zeros computed ~1e-17, and exact
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # exact zeros tie: it warns
            grad = sg.grad(leading)(a)
        assert np.isfinite(grad).all()
        np.testing.assert_allclose(grad, central_difference(leading, [a], 0), atol=1e-7)


def test_convention_symmetric_inputs():
    # numpy's cholesky and eigh read one triangle; the gradient is the symmetric one
    x = spd(np.random.default_rng(1).normal(size=(3, 3)))
    for f in (lambda a: np.sum(np.sin(np.linalg.cholesky(a))),
              lambda a: np.sum(np.linalg.eigvalsh(a) ** 3),
              lambda a: np.sum(np.linalg.eigh(a)[1] ** 2 * W)):
        grad = sg.grad(f)(x)
        np.testing.assert_allclose(grad, grad.T, atol=1e-12)
        direction = np.random.default_rng(2).normal(size=(3, 3))
        direction = direction + direction.T  # a symmetric perturbation: numpy's own change
        step = 1e-6
        expected = (f(x + step * direction) - f(x - step * direction)) / (2 * step)
        np.testing.assert_allclose(np.sum(grad * direction), expected, rtol=1e-6, atol=1e-8)


def test_convention_full_svd_vectors():
    with pytest.raises(GradientError, match="full_matrices=False"):
        sg.grad(lambda x: np.sum(np.linalg.svd(x)[0] ** 2))(np.ones((4, 3)))


def test_convention_qr_wide():
    with pytest.raises(GradientError, match="wide"):
        sg.grad(lambda x: np.sum(np.linalg.qr(x)[1]))(np.ones((2, 3)))


def test_convention_lstsq_full_rank():
    a, b = np.random.default_rng(9).normal(size=(5, 2)), np.arange(5.0)
    grad = sg.grad(lambda a, b: np.sum(np.linalg.lstsq(a, b, rcond=None)[0] ** 2))(a, b)
    np.testing.assert_allclose(grad, central_difference(
        lambda a, b: np.sum(np.linalg.lstsq(a, b, rcond=None)[0] ** 2), [a, b], 0), rtol=1e-6)
    with pytest.raises(GradientError, match="underdetermined"):
        sg.grad(lambda a, b: np.sum(np.linalg.lstsq(a, b, rcond=None)[0]))(a.T, b[:2])


def test_every_linear_algebra_convention_is_tested():
    rows = convention_rows("Linear algebra")
    assert len(rows) >= 8
    for row in rows:
        assert f"test_convention_{row.replace('-', '_')}" in globals(), row


# ---------------------------------------------------------------------------------------------
# Composite models
# ---------------------------------------------------------------------------------------------
def test_gaussian_process_marginal_likelihood():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(6, 2)), rng.normal(size=6)

    def nll(log_length, log_noise, x, y):
        d2 = np.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1)
        k = np.exp(-0.5 * d2 / np.exp(2 * log_length)) + np.exp(2 * log_noise) * np.eye(6)
        chol = np.linalg.cholesky(k)
        alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, y))
        return 0.5 * y @ alpha + np.sum(np.log(np.diag(chol))) + 3 * np.log(2 * np.pi)

    def torch_nll(log_length, log_noise, x, y):
        d2 = torch.sum((x[:, None, :] - x[None, :, :]) ** 2, -1)
        k = torch.exp(-0.5 * d2 / torch.exp(2 * log_length)) + torch.exp(
            2 * log_noise) * torch.eye(6, dtype=T64)
        chol = torch.linalg.cholesky(k)
        alpha = torch.cholesky_solve(y[:, None], chol)[:, 0]
        return 0.5 * y @ alpha + torch.sum(torch.log(torch.diag(chol))) + 3 * np.log(2 * np.pi)

    args = [np.array(0.3), np.array(-1.0), x, y]
    value, grads = sg.value_and_grad(nll, wrt=(0, 1, 2))(*args)
    torch_value, torch_grads = torch_gradients(torch_nll, args, (0, 1, 2))
    np.testing.assert_allclose(value, torch_value, rtol=1e-12)
    for ours, theirs, i in zip(grads, torch_grads, (0, 1, 2)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ours, central_difference(nll, args, i), rtol=1e-6, atol=1e-8)


def test_ridge_regression_by_solve():
    rng = np.random.default_rng(6)
    x, y, x_test = rng.normal(size=(8, 3)), rng.normal(size=8), rng.normal(size=(4, 3))

    def validation_loss(log_lam, x, y):
        w = np.linalg.solve(x.T @ x + np.exp(log_lam) * np.eye(3), x.T @ y)
        return np.mean((x_test @ w - 1.0) ** 2)

    args = [np.array(0.5), x, y]
    grads = sg.grad(validation_loss, wrt=(0, 1, 2))(*args)
    for g, i in zip(grads, (0, 1, 2)):
        np.testing.assert_allclose(g, central_difference(validation_loss, args, i), rtol=1e-6,
                                   atol=1e-9)
    hessian = sg.hessian(validation_loss, wrt=0)(*args)
    step = 1e-5
    expected = (sg.grad(validation_loss, wrt=0)(np.array(0.5 + step), x, y)
                - sg.grad(validation_loss, wrt=0)(np.array(0.5 - step), x, y)) / (2 * step)
    np.testing.assert_allclose(hessian, expected, rtol=1e-6)


def test_gaussian_log_density_by_slogdet_and_inv_batched():
    rng = np.random.default_rng(7)
    a, z = rng.normal(size=(4, 3, 3)), rng.normal(size=(4, 3))

    def log_density(a, z):
        cov = a @ np.swapaxes(a, -1, -2) + np.eye(3)
        sign, logdet = np.linalg.slogdet(cov)
        quad = np.einsum("bi,bij,bj->b", z, np.linalg.inv(cov), z)
        return np.sum(-0.5 * (quad + logdet))

    def torch_log_density(a, z):
        cov = a @ a.mT + torch.eye(3, dtype=T64)
        quad = torch.einsum("bi,bij,bj->b", z, torch.linalg.inv(cov), z)
        return torch.sum(-0.5 * (quad + torch.linalg.slogdet(cov)[1]))

    grads = sg.grad(log_density, wrt=(0, 1))(a, z)
    torch_grads = torch_gradients(torch_log_density, [a, z], (0, 1))[1]
    for ours, theirs in zip(grads, torch_grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_float32_stays_float32_through_decompositions():
    x = np.random.default_rng(8).normal(size=(3, 3)).astype(np.float32)

    def loss(x):
        a = x @ x.T + np.eye(3, dtype=np.float32)
        return np.sum(np.linalg.cholesky(a)) + np.linalg.det(a) + np.sum(np.linalg.eigvalsh(a))

    value, grad = sg.value_and_grad(loss)(x)
    assert np.asarray(value).dtype == np.float32 and grad.dtype == np.float32
    reference = sg.grad(loss)(x.astype(np.float64))
    np.testing.assert_allclose(grad, reference, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# Errors and printed code
# ---------------------------------------------------------------------------------------------
def test_non_square_matrix_is_a_clear_error():
    with pytest.raises(ShapeError, match=r"linalg.inv: operands with shapes \(2, 3\).*"
                                         r"test_linalg.py.*square"):
        sg.grad(lambda x: np.sum(np.linalg.inv(x)))(np.ones((2, 3)))
    with pytest.raises(ShapeError, match="linalg.solve.*rows"):
        sg.grad(lambda x, b: np.sum(np.linalg.solve(x, b)))(np.eye(3), np.ones(2))


def test_unsupported_linalg_function_is_named():
    with pytest.raises(UnsupportedFunctionError, match="numpy.linalg.eig'"):
        sg.grad(lambda x: np.sum(np.linalg.eig(x)[0]))(np.eye(2))


def test_generated_code_calls_numpy_linalg():
    def loss(a, b):
        chol = np.linalg.cholesky(a @ a.T + np.eye(3))
        return np.sum(np.linalg.solve(chol, b)) + np.linalg.det(a)

    source = sg.value_and_grad(loss, wrt=(0, 1)).lower(np.eye(3), np.ones(3)).source
    assert "np.linalg.cholesky(" in source and "np.linalg.solve(" in source
    assert "np.linalg.det(a)" in source and "_adjugate(a)" in source
    assert "np.linalg.inv" not in source  # the gradient of solve solves again
