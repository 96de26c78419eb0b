"""Oracle cases of numpy.linalg and the matrix constructors, part of the structural case table
(structural_cases.py appends them): each checked against central differences in float64,
PyTorch autograd, and float32 kept.

Matrices are made well conditioned inside the function (x + 3 I; x x^T + I for symmetric
positive definite ones); losses of eigenvectors and singular vectors are invariant to their
signs (squares, or products u @ vh), so that they are functions of the matrix.
"""
from __future__ import annotations

import numpy as np
import torch

from structural_cases import S, TS, case

I3, TI3 = np.eye(3), torch.eye(3, dtype=torch.float64)
W43 = np.arange(12.0).reshape(4, 3) / 6
TW43 = torch.tensor(W43)


def spd(x):  # a symmetric positive definite matrix (batched)
    return x @ np.swapaxes(x, -1, -2) + np.eye(x.shape[-1])


def tspd(x):
    return x @ x.mT + torch.eye(x.shape[-1], dtype=torch.float64)


case("linalg_solve_matrix", lambda a, b: S(np.linalg.solve(a + 3 * I3, b)),
     lambda a, b: TS(torch.linalg.solve(a + 3 * TI3, b)), (3, 3), (3, 2))
case("linalg_solve_vector_batched", lambda a, b: S(np.linalg.solve(a + 3 * I3, b)),
     lambda a, b: TS(torch.linalg.solve(a + 3 * TI3, b.expand(2, 3).unsqueeze(-1))[..., 0]),
     (2, 3, 3), (3,))
case("linalg_solve_broadcast", lambda a, b: S(np.linalg.solve(a + 3 * I3, b)),
     lambda a, b: TS(torch.linalg.solve(a + 3 * TI3, b)), (3, 3), (2, 3, 2))
case("linalg_inv", lambda a: S(np.linalg.inv(a + 3 * I3)),
     lambda a: TS(torch.linalg.inv(a + 3 * TI3)), (2, 3, 3))
case("linalg_det", lambda a: S(np.linalg.det(a)), lambda a: TS(torch.linalg.det(a)), (2, 3, 3))
case("linalg_slogdet", lambda a: S(np.linalg.slogdet(a)[1] * np.linalg.slogdet(a).sign),
     lambda a: TS(torch.linalg.slogdet(a)[1] * torch.linalg.slogdet(a)[0]), (2, 3, 3))
case("linalg_cholesky", lambda x: S(np.linalg.cholesky(spd(x))),
     lambda x: TS(torch.linalg.cholesky(tspd(x))), (2, 3, 3))
case("linalg_cholesky_upper", lambda x: S(np.linalg.cholesky(spd(x), upper=True)),
     lambda x: TS(torch.linalg.cholesky(tspd(x), upper=True)), (3, 3))
case("linalg_eigvalsh", lambda x: S(np.linalg.eigvalsh(x + x.T) * np.arange(3.0)),
     lambda x: TS(torch.linalg.eigvalsh(x + x.T) * torch.arange(3.0, dtype=torch.float64)),
     (3, 3))
case("linalg_eigh_vectors", lambda x: S(np.linalg.eigh(spd(x)).eigenvectors ** 2 * W43[:3]),
     lambda x: TS(torch.linalg.eigh(tspd(x))[1] ** 2 * TW43[:3]), (2, 3, 3))
case("linalg_eigh_upper", lambda x: S(np.linalg.eigh(spd(x), UPLO="U")[0]),
     lambda x: TS(torch.linalg.eigvalsh(tspd(x), UPLO="U")), (3, 3))
case("linalg_svd_values", lambda x: S(np.linalg.svd(x, compute_uv=False)),
     lambda x: TS(torch.linalg.svdvals(x)), (2, 4, 3))
case("linalg_svd_vectors", lambda x: S(np.linalg.svd(x, full_matrices=False)[0] ** 2 * W43)
     + S(np.linalg.svd(x, full_matrices=False)[2] ** 2 * W43[:3]),
     lambda x: TS(torch.linalg.svd(x, full_matrices=False)[0] ** 2 * TW43)
     + TS(torch.linalg.svd(x, full_matrices=False)[2] ** 2 * TW43[:3]), (4, 3))
case("linalg_svd_wide_polar", lambda x: S(np.matmul(*np.linalg.svd(x, full_matrices=False)[::2])
                                            * np.arange(15.0).reshape(3, 5)),
     lambda x: TS(torch.matmul(*torch.linalg.svd(x, full_matrices=False)[::2])
                  * torch.arange(15.0, dtype=torch.float64).reshape(3, 5)), (3, 5))
case("linalg_qr", lambda x: S(np.linalg.qr(x)[0] * W43) + S(np.linalg.qr(x).R),
     lambda x: TS(torch.linalg.qr(x)[0] * TW43) + TS(torch.linalg.qr(x)[1]), (2, 4, 3))
case("linalg_lstsq", lambda a, b: S(np.linalg.lstsq(a, b, rcond=None)[0]),
     lambda a, b: TS(torch.linalg.pinv(a) @ b), (5, 3), (5, 2))
case("linalg_lstsq_vector", lambda a, b: S(np.linalg.lstsq(a, b, rcond=None)[0])
     + np.sin(np.linalg.lstsq(a, b, rcond=None)[1][0]),
     lambda a, b: TS(torch.linalg.pinv(a) @ b)
     + torch.sin(torch.sum((b - a @ (torch.linalg.pinv(a) @ b)) ** 2)), (5, 3), (5,))
case("linalg_matrix_power", lambda a: S(np.linalg.matrix_power(a, 5))
     + S(np.linalg.matrix_power(a + 3 * I3, -2)),
     lambda a: TS(torch.linalg.matrix_power(a, 5))
     + TS(torch.linalg.matrix_power(a + 3 * TI3, -2)), (3, 3))
case("linalg_multi_dot", lambda a, b: S(np.linalg.multi_dot([a, b, a.T])),
     lambda a, b: TS(torch.linalg.multi_dot([a, b, a.T])), (2, 3), (3, 3))
case("linalg_norm_nuc_2", lambda a: np.sin(np.linalg.norm(a, "nuc"))
     + np.linalg.norm(a, 2) ** 2 + np.linalg.norm(a, -2),
     lambda a: torch.sin(torch.linalg.matrix_norm(a, "nuc"))
     + torch.linalg.matrix_norm(a, 2) ** 2 + torch.linalg.matrix_norm(a, -2), (4, 3))
case("triu_tril", lambda a: S(np.triu(a) * 2 + np.tril(a, -1) ** 2 + np.triu(a, 1) ** 3),
     lambda a: TS(torch.triu(a) * 2 + torch.tril(a, -1) ** 2 + torch.triu(a, 1) ** 3),
     (2, 3, 4))
case("diag", lambda v, a: S(np.diag(v) @ a + np.diag(v, 1)[:3, :3] + np.diag(a, -1).sum()),
     lambda v, a: TS(torch.diag(v) @ a + torch.diag(v, 1)[:3, :3] + torch.diag(a, -1).sum()),
     (3,), (3, 3))
case("diagflat", lambda v: S(np.diagflat(v, -1) * np.arange(5.0)),
     lambda v: TS(torch.diagflat(v, -1) * torch.arange(5.0, dtype=torch.float64)), (2, 2))
case("kron", lambda a, b: S(np.kron(a, b) * np.arange(12.0).reshape(2, 6))
     + S(np.kron(a, b[0])),
     lambda a, b: TS(torch.kron(a, b) * torch.arange(12.0, dtype=torch.float64).reshape(2, 6))
     + TS(torch.kron(a, b[0])), (1, 3), (2, 2))
case("cross", lambda a, b: S(np.cross(a, b) * np.arange(3.0)) + S(np.cross(a.T, b.T, axis=0)),
     lambda a, b: TS(torch.linalg.cross(a, b) * torch.arange(3.0, dtype=torch.float64))
     + TS(torch.linalg.cross(a.T, b.T, dim=0)), (4, 3), (4, 3))
