"""The oracle models of the CUDA backend's tests (host shim here, a real GPU in
benchmarks/gpu_check.py): sizes chosen so that every kernel shape of the `.cu` runs --
grid-stride loops longer than the host grid, reductions over more chunks than blocks, partial
reductions along leading and trailing axes, broadcasting by index arithmetic, matrix products
between kernels, maxima, selects and the stable primitives."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from models_zoo import MODELS
from test_c_backend import assert_same as assert_close  # the C backend's tolerances

ZOO_MODELS = ("logistic_regression", "mlp_tanh_softmax_ce", "layer_norm",
              "single_head_attention", "gaussian_nll", "huber_regression")


@dataclass
class Case:
    name: str
    fn: Callable
    make_args: Callable[[np.random.Generator, Any], dict]
    wrt: tuple


def _softplus_sum(x, y):  # W4's shape: one fused pass, a full reduction over 3 chunks
    return np.sum(np.log1p(np.exp(np.sin(x) * y)) + np.sqrt(x * x + y * y + 1))


def _rows_and_columns(a, b, c):  # partial reductions along both axes, broadcasting, max
    t = np.tanh(a * b[None, :] + c[:, None])
    return np.sum(np.max(t, axis=1) ** 2) + np.sum(np.mean(t, axis=0) * b) + np.min(a)


def _where_logaddexp(x, y):
    z = np.where(x > 0.3, np.logaddexp(x, y), np.expm1(y) * 0.5)
    return np.mean(z * z) + np.sum(1.0 / (1.0 + np.exp(-x)))


def _matmul_between(x, w, v):  # products through the library between kernels
    h = np.maximum(x @ w, 0.0)
    return np.sum((h @ v - 1.0) ** 2) / x.shape[0]


CASES = [
    Case("softplus_sum", _softplus_sum,
         lambda rng, dt: {"x": rng.normal(size=(100, 90)).astype(dt),
                          "y": rng.normal(size=90).astype(dt)}, ("x", "y")),
    Case("rows_and_columns", _rows_and_columns,
         lambda rng, dt: {"a": rng.normal(size=(70, 130)).astype(dt),
                          "b": rng.normal(size=130).astype(dt),
                          "c": rng.normal(size=70).astype(dt)}, ("a", "b", "c")),
    Case("where_logaddexp", _where_logaddexp,
         lambda rng, dt: {"x": rng.normal(size=(9, 1100)).astype(dt),
                          "y": rng.normal(size=(1100,)).astype(dt)}, ("x", "y")),
    Case("matmul_between", _matmul_between,
         lambda rng, dt: {"x": rng.normal(size=(600, 8)).astype(dt),
                          "w": rng.normal(size=(8, 16)).astype(dt),
                          "v": rng.normal(size=(16, 3)).astype(dt)}, ("w", "v")),
]
for _model in MODELS:
    if _model.name in ZOO_MODELS:
        CASES.append(Case(_model.name, _model.numpy_fn, _model.make_args, _model.wrt))
CASE_IDS = [c.name for c in CASES]
__all__ = ["CASES", "CASE_IDS", "Case", "assert_close"]
