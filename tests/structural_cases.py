"""The oracle case table for structural ops: each case is a numpy function, the same function
in PyTorch, and its argument specs. tests/test_structural_oracle.py checks every case against
central differences (float64) and PyTorch autograd, and that float32 stays float32; its
completeness test checks that every structural op of the op table appears here.

Functions end in `np.sum(np.sin(...))` (or a weighted sum) so that gradients are not constant.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

import symgrad as sg


@dataclass(frozen=True)
class Float:
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Int:
    """A non-differentiable integer argument (labels, indices) in [0, high)."""

    shape: tuple[int, ...]
    high: int


@dataclass(frozen=True)
class Case:
    name: str
    f: Callable
    torch_f: Callable
    args: tuple
    domain: str = "any"  # "any": normal; "positive": in [0.5, 2]
    finite_differences: bool = True  # False where numpy cannot see a stop_gradient

    def make_args(self, seed: int = 0, dtype: type = np.float64) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        out = []
        for spec in self.args:
            if isinstance(spec, Int):
                out.append(rng.integers(0, spec.high, size=spec.shape).astype(np.int64))
            elif self.domain == "positive":
                out.append(rng.uniform(0.5, 2.0, size=spec.shape).astype(dtype))
            else:
                out.append(np.asarray(rng.normal(size=spec.shape), dtype=dtype))
        return out

    @property
    def wrt(self) -> tuple[int, ...]:
        return tuple(i for i, spec in enumerate(self.args) if isinstance(spec, Float))


CASES: list[Case] = []


def case(name: str, f: Callable, torch_f: Callable, *args: object, domain: str = "any",
         finite_differences: bool = True) -> None:
    CASES.append(Case(name, f, torch_f, tuple(Float(a) if isinstance(a, tuple) else a
                                              for a in args), domain, finite_differences))


def S(y):  # noqa: N802  (a loss that makes every gradient entry different)
    return np.sum(np.sin(y))


def TS(y):  # noqa: N802
    return torch.sum(torch.sin(y))


# ---------------------------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------------------------
case("sum_axis_none", lambda x: np.sin(np.sum(x)), lambda x: torch.sin(torch.sum(x)), (3, 4))
case("sum_method_axis", lambda x: S(x.sum(1)), lambda x: TS(x.sum(1)), (3, 4, 2))
case("sum_tuple_keepdims", lambda x: S(x * np.sum(x, axis=(0, 2), keepdims=True)),
     lambda x: TS(x * x.sum((0, 2), keepdim=True)), (3, 4, 2))
case("mean_tuple", lambda x: S(np.mean(x, axis=(0, -1))), lambda x: TS(x.mean((0, 2))),
     (3, 4, 2))
case("mean_method_keepdims", lambda x: S(x - x.mean(1, keepdims=True)),
     lambda x: TS(x - x.mean(1, keepdim=True)), (3, 4))
case("prod_axis", lambda x: S(np.prod(x, axis=1)), lambda x: TS(x.prod(1)), (3, 4))
case("prod_method_all", lambda x: np.sin(x.prod()), lambda x: torch.sin(x.prod()), (2, 3))
case("prod_tuple_keepdims", lambda x: S(x * np.prod(x, axis=(0, 2), keepdims=True)),
     lambda x: TS(x * x.prod(2, keepdim=True).prod(0, keepdim=True)), (2, 3, 2))
case("max_axis", lambda x: S(np.max(x, axis=1)), lambda x: TS(torch.amax(x, 1)), (3, 4))
case("max_method_all", lambda x: np.sin(x.max()), lambda x: torch.sin(torch.amax(x)), (3, 4))
case("amax_tuple_keepdims", lambda x: S(x * np.amax(x, axis=(0, 2), keepdims=True)),
     lambda x: TS(x * torch.amax(x, (0, 2), keepdim=True)), (3, 4, 2))
case("min_axis_negative", lambda x: S(np.min(x, axis=-1)), lambda x: TS(torch.amin(x, -1)),
     (3, 4))
case("min_method_axis", lambda x: S(x.min(0)), lambda x: TS(torch.amin(x, 0)), (3, 4))
case("min_tuple_keepdims", lambda x: S(x * np.min(x, axis=(1, 2), keepdims=True)),
     lambda x: TS(x * torch.amin(x, (1, 2), keepdim=True)), (2, 3, 2))
case("prod_negative_axis_method", lambda x: S(x.prod(axis=-1, keepdims=True) * x),
     lambda x: TS(x.prod(-1, keepdim=True) * x), (3, 2))
case("amin_all", lambda x: np.sin(np.amin(x)), lambda x: torch.sin(torch.amin(x)), (5,))
case("stable_softmax_keepdims",
     lambda x: S(np.exp(x - np.max(x, axis=-1, keepdims=True))
                 / np.sum(np.exp(x - np.max(x, axis=-1, keepdims=True)), axis=-1,
                          keepdims=True) * np.arange(4.0)),
     lambda x: TS(torch.softmax(x, -1) * torch.arange(4.0, dtype=torch.float64)), (3, 4))
case("var_all", lambda x: np.sin(np.var(x)), lambda x: torch.sin(torch.var(x, correction=0)),
     (3, 4))
case("var_axis_ddof", lambda x: S(np.var(x, axis=0, ddof=1)),
     lambda x: TS(torch.var(x, 0, correction=1)), (3, 4))
case("var_method_keepdims", lambda x: S(x * x.var(1, keepdims=True)),
     lambda x: TS(x * torch.var(x, 1, correction=0, keepdim=True)), (3, 4))
case("std_tuple", lambda x: S(np.std(x, axis=(0, 1))),
     lambda x: TS(torch.std(x, (0, 1), correction=0)), (3, 4, 2))
case("std_three_of_four_axes", lambda x: S(np.std(x, axis=(0, 1, 3), keepdims=True) * x),
     lambda x: TS(torch.std(x, (0, 1, 3), correction=0, keepdim=True) * x), (2, 2, 3, 2))
case("std_method_ddof", lambda x: np.sin(x.std(ddof=1)),
     lambda x: torch.sin(torch.std(x, correction=1)), (3, 4))
case("norm_vector", lambda x: np.sin(np.linalg.norm(x)),
     lambda x: torch.sin(torch.linalg.norm(x)), (5,))
case("norm_flattened", lambda x: np.sin(np.linalg.norm(x)),
     lambda x: torch.sin(torch.linalg.vector_norm(x)), (2, 3, 2))
case("norm_axis_keepdims", lambda x: S(x / np.linalg.norm(x, axis=-1, keepdims=True)),
     lambda x: TS(x / torch.linalg.norm(x, dim=-1, keepdim=True)), (3, 4))
case("norm_ord1", lambda x: np.sin(np.linalg.norm(x, 1)),
     lambda x: torch.sin(torch.linalg.vector_norm(x, 1)), (5,))
case("norm_ord_inf_axis", lambda x: S(np.linalg.norm(x, np.inf, axis=1)),
     lambda x: TS(torch.linalg.vector_norm(x, float("inf"), dim=1)), (3, 4))
case("norm_ord_minus_inf", lambda x: np.sin(np.linalg.norm(x, -np.inf)),
     lambda x: torch.sin(torch.linalg.vector_norm(x, float("-inf"))), (5,))
case("norm_ord3", lambda x: np.sin(np.linalg.norm(x, 3)),
     lambda x: torch.sin(torch.linalg.vector_norm(x, 3)), (5,))
case("norm_frobenius", lambda x: np.sin(np.linalg.norm(x, "fro")),
     lambda x: torch.sin(torch.linalg.matrix_norm(x, "fro")), (3, 4))
case("norm_matrix_ord1", lambda x: np.sin(np.linalg.norm(x, 1)),
     lambda x: torch.sin(torch.linalg.matrix_norm(x, 1)), (3, 4))
case("norm_matrix_inf_axes", lambda x: S(np.linalg.norm(x, np.inf, axis=(1, 2))),
     lambda x: TS(torch.linalg.matrix_norm(x, float("inf"), dim=(1, 2))), (2, 3, 4))
case("sqrt_sum_squares", lambda x: np.sin(np.sqrt(np.sum(x * x))),
     lambda x: torch.sin(torch.sqrt(torch.sum(x * x))), (4,))
case("cumsum_flat", lambda x: S(np.cumsum(x)), lambda x: TS(torch.cumsum(x.reshape(-1), 0)),
     (3, 4))
case("cumsum_axis", lambda x: S(np.cumsum(x, axis=1)), lambda x: TS(torch.cumsum(x, 1)), (3, 4))
case("cumprod_method", lambda x: S(x.cumprod(0)), lambda x: TS(torch.cumprod(x, 0)), (4, 3))
case("cumprod_flat", lambda x: S(np.cumprod(x)), lambda x: TS(torch.cumprod(x.reshape(-1), 0)),
     (2, 3))
case("logsumexp_unshifted", lambda x: S(np.log(np.sum(np.exp(x), axis=1))),
     lambda x: TS(torch.logsumexp(x, 1)), (3, 4))
case("softmax_unshifted",
     lambda x: S(np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True) * np.arange(4.0)),
     lambda x: TS(torch.softmax(x, -1) * torch.arange(4.0, dtype=torch.float64)), (3, 4))
case("softmax_two_axes",
     lambda x: S(np.exp(x) / np.sum(np.exp(x), axis=(0, 2), keepdims=True) * np.arange(2.0)),
     lambda x: TS(torch.exp(x) / torch.sum(torch.exp(x), (0, 2), keepdim=True)
                  * torch.arange(2.0, dtype=torch.float64)), (2, 3, 2))
case("softmax_row_sum_indexed",
     lambda x: S(np.exp(x) / np.exp(x).sum(-1)[:, None] * np.arange(4.0)),
     lambda x: TS(torch.softmax(x, -1) * torch.arange(4.0, dtype=torch.float64)), (3, 4))
case("log_softmax_axis0",
     lambda x: S(x - np.log(np.sum(np.exp(x), axis=0, keepdims=True))),
     lambda x: TS(torch.log_softmax(x, 0)), (3, 4))
case("log_softmax_stable_by_hand",
     lambda x: S((x - np.max(x, axis=-1, keepdims=True))
                 - np.log(np.sum(np.exp(x - np.max(x, axis=-1, keepdims=True)), axis=-1,
                                 keepdims=True))),
     lambda x: TS(torch.log_softmax(x, -1)), (3, 4))
case("argmax_gather", lambda x: S(x[np.arange(3), np.argmax(x, axis=1)] * 2),
     lambda x: TS(x[torch.arange(3), torch.argmax(x, 1)] * 2), (3, 4))
case("argmin_method", lambda x: S(x.ravel()[x.argmin()] * x),
     lambda x: TS(x.reshape(-1)[torch.argmin(x)] * x), (3, 4))

# ---------------------------------------------------------------------------------------------
# Linear algebra
# ---------------------------------------------------------------------------------------------
case("matmul_transposed", lambda x, w: S(x @ w.T), lambda x, w: TS(x @ w.T), (3, 4), (2, 4))
case("dot_matrices", lambda a, b: S(np.dot(a, b)), lambda a, b: TS(a @ b), (3, 4), (4, 2))
case("dot_vectors_method", lambda a, b: np.sin(a.dot(b)), lambda a, b: torch.sin(a @ b), (4,),
     (4,))
case("dot_nd", lambda a, b: S(np.dot(a, b)),
     lambda a, b: TS(torch.tensordot(a, b, dims=([2], [1]))), (2, 3, 4), (3, 4, 2))
case("dot_scalar", lambda a, b: S(np.dot(a, b)), lambda a, b: TS(a * b), (), (3,))
case("vdot", lambda a, b: np.sin(np.vdot(a, b)),
     lambda a, b: torch.sin(torch.vdot(a.reshape(-1), b.reshape(-1))), (2, 3), (2, 3))
case("inner", lambda a, b: S(np.inner(a, b)), lambda a, b: TS(torch.inner(a, b)), (2, 3, 4),
     (5, 4))
case("outer", lambda a, b: S(np.outer(a, b)), lambda a, b: TS(torch.outer(a.reshape(-1), b)),
     (2, 2), (3,))
case("tensordot_int", lambda a, b: S(np.tensordot(a, b, axes=2)),
     lambda a, b: TS(torch.tensordot(a, b, dims=2)), (2, 3, 4), (3, 4, 2))
case("tensordot_lists", lambda a, b: S(np.tensordot(a, b, axes=([1, 0], [0, 2]))),
     lambda a, b: TS(torch.tensordot(a, b, dims=([1, 0], [0, 2]))), (3, 2, 4), (2, 5, 3))
case("einsum_matmul", lambda a, b: S(np.einsum("ij,jk->ik", a, b)),
     lambda a, b: TS(torch.einsum("ij,jk->ik", a, b)), (3, 4), (4, 2))
case("einsum_implicit", lambda a, b: S(np.einsum("ij,kj", a, b)),
     lambda a, b: TS(torch.einsum("ij,kj", a, b)), (3, 4), (2, 4))
case("einsum_ellipsis_broadcast", lambda a, b: S(np.einsum("...i,...i->...", a, b)),
     lambda a, b: TS(torch.einsum("...i,...i->...", a, b)), (2, 1, 3), (4, 3))
case("einsum_batched", lambda a, b: S(np.einsum("bij,bjk->bik", a, b)),
     lambda a, b: TS(torch.einsum("bij,bjk->bik", a, b)), (2, 3, 4), (2, 4, 2))
case("einsum_three_operands", lambda x, w, y: S(np.einsum("nd,de,ne->n", x, w, y)),
     lambda x, w, y: TS(torch.einsum("nd,de,ne->n", x, w, y)), (3, 4), (4, 2), (3, 2))
case("einsum_trace", lambda a: np.sin(np.einsum("ii", a)),
     lambda a: torch.sin(torch.einsum("ii", a)), (3, 3))
case("einsum_diagonal_3d", lambda a: S(np.einsum("iij->ji", a)),
     lambda a: TS(torch.einsum("iij->ji", a)), (3, 3, 2))
case("einsum_sum_transpose", lambda a: S(np.einsum("ijk->kj", a)),
     lambda a: TS(torch.einsum("ijk->kj", a)), (2, 3, 4))
case("einsum_outer_product", lambda a, b: S(np.einsum("i,jk->ijk", a, b)),
     lambda a, b: TS(torch.einsum("i,jk->ijk", a, b)), (2,), (3, 2))
case("trace", lambda a: np.sin(np.trace(a)), lambda a: torch.sin(torch.trace(a)), (3, 3))
case("trace_offset_method", lambda a: np.sin(a.trace(1)),
     lambda a: torch.sin(torch.diagonal(a, 1).sum()), (3, 4))
case("diagonal", lambda a: S(np.diagonal(a)), lambda a: TS(torch.diagonal(a)), (3, 4))
case("diagonal_offset_axes", lambda a: S(np.diagonal(a, -1, 2, 0)),
     lambda a: TS(torch.diagonal(a, -1, 2, 0)), (3, 2, 4))

# ---------------------------------------------------------------------------------------------
# Shape
# ---------------------------------------------------------------------------------------------
W34 = np.arange(12.0).reshape(3, 4) / 7


def TW34():  # noqa: N802
    return torch.tensor(W34)


case("reshape_minus_one", lambda x: S(x.reshape(-1, 2) * np.arange(2.0)),
     lambda x: TS(x.reshape(-1, 2) * torch.arange(2.0, dtype=torch.float64)), (3, 4))
case("ravel_flatten", lambda x: S(np.ravel(x) * x.flatten()[::-1]),
     lambda x: TS(x.reshape(-1) * x.reshape(-1).flip(0)), (3, 4))
case("transpose_axes", lambda x: S(np.transpose(x, (2, 0, 1)) * np.arange(3.0)),
     lambda x: TS(x.permute(2, 0, 1) * torch.arange(3.0, dtype=torch.float64)), (2, 3, 4))
case("transpose_method_T", lambda x: S(x.transpose(1, 0) * W34.T + x.T * 2),
     lambda x: TS(x.T * TW34().T + x.T * 2), (3, 4))
case("swapaxes_moveaxis", lambda x: S(np.swapaxes(x, 0, 2) * np.arange(2.0))
     + S(np.moveaxis(x, 0, -1) * np.arange(2.0)),
     lambda x: TS(torch.swapaxes(x, 0, 2) * torch.arange(2.0, dtype=torch.float64))
     + TS(torch.movedim(x, 0, -1) * torch.arange(2.0, dtype=torch.float64)), (2, 3, 2))
case("expand_dims_squeeze", lambda x: S(np.expand_dims(x, (0, 2)) * np.squeeze(x[:, None]) +
                                        np.squeeze(x[None, :, 1:2], axis=0)),
     lambda x: TS(x[None, :, None] * x + x[:, 1:2]), (3, 4))
case("broadcast_to", lambda x: S(np.broadcast_to(x, (2, 3, 4)) * np.arange(4.0)),
     lambda x: TS(torch.broadcast_to(x, (2, 3, 4)) * torch.arange(4.0, dtype=torch.float64)),
     (3, 1))
case("concatenate", lambda a, b: S(np.concatenate([a, 2 * b, a], axis=1) * np.arange(9.0)),
     lambda a, b: TS(torch.cat([a, 2 * b, a], 1) * torch.arange(9.0, dtype=torch.float64)),
     (2, 3), (2, 3))
case("concatenate_axis_none", lambda a, b: S(np.concatenate((a, b), axis=None) * np.arange(10.)),
     lambda a, b: TS(torch.cat([a.reshape(-1), b.reshape(-1)]) * torch.arange(
         10.0, dtype=torch.float64)), (2, 3), (4,))
case("stack", lambda a, b: S(np.stack([a, b * 2], axis=-1) * np.arange(2.0)),
     lambda a, b: TS(torch.stack([a, b * 2], -1) * torch.arange(2.0, dtype=torch.float64)),
     (2, 3), (2, 3))
case("hstack_vstack", lambda a, b: S(np.hstack([a, b]) * 3) + S(np.vstack([a, b]) ** 2 / 2),
     lambda a, b: TS(torch.hstack([a, b]) * 3) + TS(torch.vstack([a, b]) ** 2 / 2), (3,), (3,))
case("column_stack", lambda a, b: S(np.column_stack([a, b]) * W34[:, :3].T[:3, :2]),
     lambda a, b: TS(torch.column_stack([a, b]) * TW34()[:, :3].T[:3, :2]), (3,), (3, 1))
case("split", lambda x: sum(S(p * (i + 1)) for i, p in enumerate(np.split(x, [1, 3], axis=1))),
     lambda x: sum(TS(p * (i + 1)) for i, p in enumerate((x[:, :1], x[:, 1:3], x[:, 3:]))),
     (2, 5))
case("array_split", lambda x: sum(S(p * (i + 1)) for i, p in enumerate(np.array_split(x, 3))),
     lambda x: sum(TS(p * (i + 1)) for i, p in enumerate(torch.tensor_split(x, 3))), (7,))
case("tile", lambda x: S(np.tile(x, (2, 1, 3)) * np.arange(6.0)),
     lambda x: TS(torch.tile(x, (2, 1, 3)) * torch.arange(6.0, dtype=torch.float64)), (3, 2))
case("repeat_scalar", lambda x: S(np.repeat(x, 2, axis=1) * np.arange(8.0)),
     lambda x: TS(torch.repeat_interleave(x, 2, 1) * torch.arange(8.0, dtype=torch.float64)),
     (3, 4))
case("repeat_counts_flat", lambda x: S(x.repeat([1, 0, 3, 2, 1, 1]) * np.arange(8.0)),
     lambda x: TS(torch.repeat_interleave(x.reshape(-1), torch.tensor([1, 0, 3, 2, 1, 1]))
                  * torch.arange(8.0, dtype=torch.float64)), (2, 3))
case("flip", lambda x: S(np.flip(x) * W34 + np.fliplr(x) * np.flipud(x)),
     lambda x: TS(x.flip((0, 1)) * TW34() + x.flip(1) * x.flip(0)), (3, 4))
case("roll", lambda x: S(np.roll(x, 1, axis=0) * W34 + np.roll(x, -5) * 2),
     lambda x: TS(torch.roll(x, 1, 0) * TW34() + torch.roll(x, -5) * 2), (3, 4))
case("diff", lambda x: S(np.diff(x) * 3) + S(np.diff(x, 2, axis=0)),
     lambda x: TS(torch.diff(x) * 3) + TS(torch.diff(x, 2, 0)), (4, 5))
case("pad_constant", lambda x: S(np.pad(x, ((1, 0), (2, 1)), constant_values=0.5) * 2),
     lambda x: TS(F.pad(x, (2, 1, 1, 0), value=0.5) * 2), (3, 4))
case("astype", lambda x: S(x.astype(np.float64) * np.int64(3)), lambda x: TS(x * 3), (4,))
case("like_constants", lambda x: S(x * np.ones_like(x) + np.zeros_like(x) + np.full_like(x, 2.0)
                                   * x + np.zeros((3, 4), dtype=x.dtype)),
     lambda x: TS(x + 2.0 * x), (3, 4))
case("creation_constants", lambda x: S(x @ np.eye(4) + np.arange(4.0) * x + np.full(4, 0.5)),
     lambda x: TS(x + torch.arange(4.0, dtype=torch.float64) * x + 0.5), (3, 4))
case("stop_gradient_matmul", lambda x, w: S(sg.stop_gradient(x) @ w * x[:, :2]),
     lambda x, w: TS(x.detach() @ w * x[:, :2]), (3, 4), (4, 2), finite_differences=False)
case("array_of_tracers", lambda x: np.sum(np.array([x.sum(), x.max(), 2.0]) * np.arange(3.0))
     + S(np.asarray([[x[0, 0], 1.0], [x[1, 1], x[0, 1]]]) ** 2),
     lambda x: torch.sum(torch.stack([x.sum(), x.max(), torch.tensor(2.0, dtype=torch.float64)])
                         * torch.arange(3.0, dtype=torch.float64))
     + TS(torch.stack([torch.stack([x[0, 0], torch.tensor(1.0, dtype=torch.float64)]),
                       torch.stack([x[1, 1], x[0, 1]])]) ** 2), (2, 3))
case("asarray_passthrough", lambda x: S(np.asarray(x) * np.asarray(W34)),
     lambda x: TS(x * TW34()), (3, 4))
case("atleast_2d", lambda x: S(np.atleast_2d(x) * W34[:1, :]),
     lambda x: TS(x[None] * TW34()[:1, :]), (4,))

# ---------------------------------------------------------------------------------------------
# Indexing
# ---------------------------------------------------------------------------------------------
case("slices_steps_negative", lambda x: S(x[::-2, 1:-1]) + S(x[-1, ::3] * 2),
     lambda x: TS(x.flip(0)[::2, 1:-1]) + TS(x[-1, ::3] * 2), (5, 4))
case("ellipsis_none", lambda x: S(x[..., None, 1] * x[None, ..., 0]),
     lambda x: TS(x[..., None, 1] * x[None, ..., 0]), (3, 3, 2))
case("python_loop_rows", lambda x: sum(np.sin(x[i]) * i for i in range(len(x))).sum(),
     lambda x: sum(torch.sin(x[i]) * i for i in range(len(x))).sum(), (4, 3))
case("iterate_rows", lambda x: S(np.stack([row * k for k, row in enumerate(x)])),
     lambda x: TS(torch.stack([row * k for k, row in enumerate(x)])), (3, 2))
case("shape_len_ndim", lambda x: S(x.reshape(len(x), x.shape[1] * x.ndim // 2) / x.size),
     lambda x: TS(x / 12), (3, 4))
case("gather_labels", lambda x, labels: S(x[np.arange(4), labels] * np.arange(4.0)),
     lambda x, labels: TS(x[torch.arange(4), labels] * torch.arange(4.0, dtype=torch.float64)),
     (4, 3), Int((4,), 3))
case("gather_repeated_constant", lambda x: S(x[[0, 2, 2, 0, 2]] * np.arange(5.0)[:, None]),
     lambda x: TS(x[[0, 2, 2, 0, 2]] * torch.arange(5.0, dtype=torch.float64)[:, None]),
     (3, 2))
case("gather_rows_by_labels", lambda x, labels: S(x[labels] * 2),
     lambda x, labels: TS(x[labels] * 2), (3, 4), Int((2, 5), 3))
case("gather_columns", lambda x: S(x[:, np.array([3, 0, 3])] * np.arange(3.0)),
     lambda x: TS(x[:, [3, 0, 3]] * torch.arange(3.0, dtype=torch.float64)), (2, 4))
case("gather_non_adjacent", lambda x, idx: S(x[0, :, idx] * 2),
     lambda x, idx: TS(x[0, :, idx] * 2), (2, 3, 4), Int((5,), 4))
case("boolean_mask_constant", lambda x: S(x[np.array([[True, False, True], [False, True,
                                                                             True]])] * 2),
     lambda x: TS(x[torch.tensor([[True, False, True], [False, True, True]])] * 2), (2, 3))
case("take", lambda x, idx: S(np.take(x, idx, axis=1)) + S(np.take(x, [5, 0]) ** 2),
     lambda x, idx: TS(x[:, idx]) + TS(x.reshape(-1)[[5, 0]] ** 2), (2, 3), Int((4,), 3))
case("take_along_axis", lambda x, idx: S(np.take_along_axis(x, idx, axis=1) * 2),
     lambda x, idx: TS(torch.take_along_dim(x, idx, 1) * 2), (3, 4), Int((3, 2), 4))
case("eye_labels_one_hot", lambda x, labels: S(np.eye(3)[labels] * x * 2 + x),
     lambda x, labels: TS(F.one_hot(labels, 3).double() * x * 2 + x), (4, 3), Int((4,), 3))
case("log_softmax_nll", lambda x, labels: -np.mean(
        (x - x.max(-1, keepdims=True) - np.log(np.sum(np.exp(x - x.max(-1, keepdims=True)), -1,
                                                      keepdims=True)))[np.arange(5), labels]),
     lambda x, labels: F.cross_entropy(x, labels), (5, 3), Int((5,), 3))

# numpy.linalg and the matrix constructors
import linalg_cases  # noqa: E402, F401  (appends its cases to CASES)
import sort_cases  # noqa: E402, F401
import update_cases  # noqa: E402, F401
import fft_cases  # noqa: E402, F401

# A user's derivative rule (custom.py): the rule here is the true derivative, so every oracle
# applies; tests/test_custom_rules.py checks rules that differ from it.
@sg.custom_jvp
def _softplus(x):
    return np.log1p(np.exp(x))


@_softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return _softplus(x), t / (1 + np.exp(-x))


case("custom_jvp_softplus", lambda x: S(_softplus(x) * x),
     lambda x: TS(F.softplus(x) * x), (3, 2))
