"""A zoo of composite models, each written twice: plain numpy and PyTorch.

Every record pairs
  * ``numpy_fn`` -- the model the way a user writes it in numpy.  It only uses
    the numpy subset that symgrad supports (elementwise ufuncs, reductions,
    matmul/einsum/tensordot/outer, reshape/transpose/..., slicing, integer
    array indexing, astype, zeros/ones/eye/arange) and returns a scalar loss;
  * ``torch_fn`` -- the same mathematics with torch ops, taking torch tensors
    with the same parameter names in the same order;
  * ``make_args(rng, dtype)`` -- a dict ``name -> np.ndarray`` of small random
    inputs, in the functions' positional order.  Floating arrays have ``dtype``;
    integer labels are int64 and masks are bool whatever ``dtype`` is;
  * ``wrt`` -- the arguments to differentiate with respect to;
  * ``nondiff`` -- the remaining arguments (data, targets, labels, masks,
    noise), never differentiated.

The table ``MODELS`` is the oracle for symgrad's gradient tests:
``torch_value_and_grad(model, args)`` gives the reference value and gradients.
``tests/test_models_zoo_pairs.py`` checks the pairs themselves (numpy value ==
torch value, torch gradient == finite differences of the numpy function).

Models that contain non-differentiable points (relu, abs, max, min, clip,
where-branches) have ``kinks=True``; their random inputs keep away from the
kinks with probability ~1, but a consumer doing finite differences with a big
step may want to know.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

try:  # torch is a test dependency; the numpy side of the table works without it
    import torch
except ImportError:  # pragma: no cover
    torch = None

__all__ = [
    "Model",
    "MODELS",
    "MODELS_BY_NAME",
    "numpy_value",
    "to_torch",
    "torch_value_and_grad",
]

LOG2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class Model:
    name: str
    numpy_fn: Callable[..., object]
    torch_fn: Callable[..., object]
    make_args: Callable[[np.random.Generator, type], dict]
    wrt: tuple[str, ...]
    nondiff: tuple[str, ...] = ()
    kinks: bool = False
    notes: str = field(default="", compare=False)

    def __repr__(self) -> str:  # short, so pytest ids / failure output stay readable
        return f"Model({self.name!r})"


# ---------------------------------------------------------------------------
# helpers for make_args
# ---------------------------------------------------------------------------

def _randn(rng, dtype, *shape, scale=1.0, loc=0.0):
    # np.asarray: with shape () numpy hands back a scalar, we want a 0-d array
    return np.asarray(loc + scale * rng.standard_normal(shape), dtype=dtype)


def _unif(rng, dtype, *shape, low=0.0, high=1.0):
    return np.asarray(rng.uniform(low, high, size=shape), dtype=dtype)


def _labels(rng, n, k):
    return rng.integers(0, k, size=n).astype(np.int64)


MODELS: list[Model] = []


def _register(name, numpy_fn, torch_fn, make_args, wrt, nondiff=(), kinks=False, notes=""):
    MODELS.append(Model(name, numpy_fn, torch_fn, make_args, tuple(wrt), tuple(nondiff), kinks, notes))


# ---------------------------------------------------------------------------
# 1. logistic regression, BCE with logits written stably
# ---------------------------------------------------------------------------

def logistic_regression_np(w, b, X, y):
    z = np.dot(X, w) + b
    loss = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    return np.mean(loss) + 0.01 * np.sum(w * w)


def logistic_regression_torch(w, b, X, y):
    z = X @ w + b
    loss = torch.clamp(z, min=0) - z * y + torch.log1p(torch.exp(-torch.abs(z)))
    return torch.mean(loss) + 0.01 * torch.sum(w * w)


def logistic_regression_args(rng, dtype):
    return {
        "w": _randn(rng, dtype, 5),
        "b": _randn(rng, dtype, scale=0.5),  # 0-d array
        "X": _randn(rng, dtype, 12, 5),
        "y": rng.integers(0, 2, size=12).astype(dtype),
    }


_register("logistic_regression", logistic_regression_np, logistic_regression_torch,
          logistic_regression_args, wrt=("w", "b"), nondiff=("X", "y"), kinks=True,
          notes="0-d bias; np.dot; maximum/log1p/exp/abs")


# ---------------------------------------------------------------------------
# 2. MLP with tanh and softmax cross-entropy on integer labels
# ---------------------------------------------------------------------------

def mlp_tanh_softmax_ce_np(W1, b1, W2, b2, X, labels):
    h = np.tanh(X @ W1 + b1)
    logits = h @ W2 + b2
    m = np.max(logits, axis=-1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(logits - m), axis=-1, keepdims=True))
    logp = logits - lse
    n = X.shape[0]
    return -np.mean(logp[np.arange(n), labels])


def mlp_tanh_softmax_ce_torch(W1, b1, W2, b2, X, labels):
    h = torch.tanh(X @ W1 + b1)
    logits = h @ W2 + b2
    m = torch.amax(logits, dim=-1, keepdim=True)
    lse = m + torch.log(torch.sum(torch.exp(logits - m), dim=-1, keepdim=True))
    logp = logits - lse
    n = X.shape[0]
    return -torch.mean(logp[torch.arange(n), labels])


def mlp_tanh_softmax_ce_args(rng, dtype):
    return {
        "W1": _randn(rng, dtype, 6, 8, scale=0.5),
        "b1": _randn(rng, dtype, 8, scale=0.1),
        "W2": _randn(rng, dtype, 8, 4, scale=0.5),
        "b2": _randn(rng, dtype, 4, scale=0.1),
        "X": _randn(rng, dtype, 10, 6),
        "labels": _labels(rng, 10, 4),
    }


_register("mlp_tanh_softmax_ce", mlp_tanh_softmax_ce_np, mlp_tanh_softmax_ce_torch,
          mlp_tanh_softmax_ce_args, wrt=("W1", "b1", "W2", "b2"), nondiff=("X", "labels"),
          notes="logsumexp with max shift; logp[np.arange(n), labels]")


# ---------------------------------------------------------------------------
# 3. MLP with relu (np.maximum(h, 0)) and MSE
# ---------------------------------------------------------------------------

def mlp_relu_mse_np(W1, b1, W2, b2, W3, X, Y):
    h1 = np.maximum(X @ W1 + b1, 0)
    h2 = np.maximum(h1 @ W2 + b2, 0)
    out = h2 @ W3
    return np.mean((out - Y) ** 2)


def mlp_relu_mse_torch(W1, b1, W2, b2, W3, X, Y):
    h1 = torch.relu(X @ W1 + b1)
    h2 = torch.relu(h1 @ W2 + b2)
    out = h2 @ W3
    return torch.mean((out - Y) ** 2)


def mlp_relu_mse_args(rng, dtype):
    return {
        "W1": _randn(rng, dtype, 5, 16, scale=0.5),
        "b1": _randn(rng, dtype, 16, scale=0.1),
        "W2": _randn(rng, dtype, 16, 8, scale=0.3),
        "b2": _randn(rng, dtype, 8, scale=0.1),
        "W3": _randn(rng, dtype, 8, 3, scale=0.3),
        "X": _randn(rng, dtype, 12, 5),
        "Y": _randn(rng, dtype, 12, 3),
    }


_register("mlp_relu_mse", mlp_relu_mse_np, mlp_relu_mse_torch, mlp_relu_mse_args,
          wrt=("W1", "b1", "W2", "b2", "W3"), nondiff=("X", "Y"), kinks=True)


# ---------------------------------------------------------------------------
# 4. layer norm
# ---------------------------------------------------------------------------

def layer_norm_np(x, gain, bias, T):
    eps = 1e-5
    mu = np.mean(x, axis=-1, keepdims=True)
    var = np.mean((x - mu) ** 2, axis=-1, keepdims=True)
    xhat = (x - mu) / np.sqrt(var + eps)
    y = gain * xhat + bias
    return np.sum(y * T) + 0.1 * np.sum(np.tanh(y) ** 2)


def layer_norm_torch(x, gain, bias, T):
    eps = 1e-5
    mu = torch.mean(x, dim=-1, keepdim=True)
    var = torch.mean((x - mu) ** 2, dim=-1, keepdim=True)
    xhat = (x - mu) / torch.sqrt(var + eps)
    y = gain * xhat + bias
    return torch.sum(y * T) + 0.1 * torch.sum(torch.tanh(y) ** 2)


def layer_norm_args(rng, dtype):
    return {
        "x": _randn(rng, dtype, 6, 8, scale=2.0, loc=0.5),
        "gain": _randn(rng, dtype, 8, scale=0.2, loc=1.0),
        "bias": _randn(rng, dtype, 8, scale=0.1),
        "T": _randn(rng, dtype, 6, 8),
    }


_register("layer_norm", layer_norm_np, layer_norm_torch, layer_norm_args,
          wrt=("x", "gain", "bias"), nondiff=("T",))


# ---------------------------------------------------------------------------
# 5. single-head attention
# ---------------------------------------------------------------------------

def single_head_attention_np(X, Wq, Wk, Wv, target):
    Q = X @ Wq
    K = X @ Wk
    V = X @ Wv
    scores = Q @ K.T / np.sqrt(Q.shape[-1])
    e = np.exp(scores - np.max(scores, axis=-1, keepdims=True))
    A = e / np.sum(e, axis=-1, keepdims=True)
    out = A @ V
    return np.sum((out - target) ** 2)


def single_head_attention_torch(X, Wq, Wk, Wv, target):
    Q = X @ Wq
    K = X @ Wk
    V = X @ Wv
    scores = Q @ K.T / math.sqrt(Q.shape[-1])
    e = torch.exp(scores - torch.amax(scores, dim=-1, keepdim=True))
    A = e / torch.sum(e, dim=-1, keepdim=True)
    out = A @ V
    return torch.sum((out - target) ** 2)


def single_head_attention_args(rng, dtype):
    return {
        "X": _randn(rng, dtype, 6, 8),
        "Wq": _randn(rng, dtype, 8, 4, scale=0.4),
        "Wk": _randn(rng, dtype, 8, 4, scale=0.4),
        "Wv": _randn(rng, dtype, 8, 4, scale=0.4),
        "target": _randn(rng, dtype, 6, 4),
    }


_register("single_head_attention", single_head_attention_np, single_head_attention_torch,
          single_head_attention_args, wrt=("X", "Wq", "Wk", "Wv"), nondiff=("target",),
          notes="K.T; softmax with max shift; np.sqrt of a python int")


# ---------------------------------------------------------------------------
# 6. causal single-head attention with a boolean mask argument
# ---------------------------------------------------------------------------

def causal_attention_np(X, Wq, Wk, Wv, mask):
    Q = X @ Wq
    K = X @ Wk
    V = X @ Wv
    scores = Q @ np.swapaxes(K, 0, 1) * 0.5
    scores = np.where(mask, scores, -1e9)
    e = np.exp(scores - np.max(scores, axis=-1, keepdims=True))
    A = e / np.sum(e, axis=-1, keepdims=True)
    out = A @ V
    return np.mean(np.tanh(out) ** 2)


def causal_attention_torch(X, Wq, Wk, Wv, mask):
    Q = X @ Wq
    K = X @ Wk
    V = X @ Wv
    scores = Q @ torch.swapaxes(K, 0, 1) * 0.5
    scores = torch.where(mask, scores, torch.full_like(scores, -1e9))
    e = torch.exp(scores - torch.amax(scores, dim=-1, keepdim=True))
    A = e / torch.sum(e, dim=-1, keepdim=True)
    out = A @ V
    return torch.mean(torch.tanh(out) ** 2)


def causal_attention_args(rng, dtype):
    T = 7
    return {
        "X": _randn(rng, dtype, T, 6),
        "Wq": _randn(rng, dtype, 6, 4, scale=0.5),
        "Wk": _randn(rng, dtype, 6, 4, scale=0.5),
        "Wv": _randn(rng, dtype, 6, 4, scale=0.5),
        "mask": np.arange(T)[:, None] >= np.arange(T)[None, :],
    }


_register("causal_attention", causal_attention_np, causal_attention_torch, causal_attention_args,
          wrt=("X", "Wq", "Wk", "Wv"), nondiff=("mask",),
          notes="bool mask argument; np.where(mask, s, -1e9); np.swapaxes")


# ---------------------------------------------------------------------------
# 7. multi-head attention with reshape / transpose
# ---------------------------------------------------------------------------

def multi_head_attention_np(X, Wq, Wk, Wv, Wo, Y):
    B, T, D = X.shape
    H = 2
    dh = D // H

    def split(Z):
        return np.transpose(Z.reshape(B, T, H, dh), (0, 2, 1, 3))

    q = split(X @ Wq)
    k = split(X @ Wk)
    v = split(X @ Wv)
    s = q @ np.swapaxes(k, -1, -2) / math.sqrt(dh)
    e = np.exp(s - np.max(s, axis=-1, keepdims=True))
    a = e / np.sum(e, axis=-1, keepdims=True)
    o = (a @ v).transpose(0, 2, 1, 3).reshape(B, T, D)
    out = X + o @ Wo
    return np.sum((out - Y) ** 2) / B


def multi_head_attention_torch(X, Wq, Wk, Wv, Wo, Y):
    B, T, D = X.shape
    H = 2
    dh = D // H

    def split(Z):
        return Z.reshape(B, T, H, dh).permute(0, 2, 1, 3)

    q = split(X @ Wq)
    k = split(X @ Wk)
    v = split(X @ Wv)
    s = q @ k.transpose(-1, -2) / math.sqrt(dh)
    e = torch.exp(s - torch.amax(s, dim=-1, keepdim=True))
    a = e / torch.sum(e, dim=-1, keepdim=True)
    o = (a @ v).permute(0, 2, 1, 3).reshape(B, T, D)
    out = X + o @ Wo
    return torch.sum((out - Y) ** 2) / B


def multi_head_attention_args(rng, dtype):
    return {
        "X": _randn(rng, dtype, 2, 5, 8),
        "Wq": _randn(rng, dtype, 8, 8, scale=0.35),
        "Wk": _randn(rng, dtype, 8, 8, scale=0.35),
        "Wv": _randn(rng, dtype, 8, 8, scale=0.35),
        "Wo": _randn(rng, dtype, 8, 8, scale=0.35),
        "Y": _randn(rng, dtype, 2, 5, 8),
    }


_register("multi_head_attention", multi_head_attention_np, multi_head_attention_torch,
          multi_head_attention_args, wrt=("X", "Wq", "Wk", "Wv", "Wo"), nondiff=("Y",),
          notes="batched 4-d matmul; reshape/np.transpose/.transpose/swapaxes; residual")


# ---------------------------------------------------------------------------
# 8. RNN unrolled over 4 steps
# ---------------------------------------------------------------------------

def rnn_unrolled_np(x, Wx, Wh, b, Wout, y):
    B, T, _ = x.shape
    h = np.zeros((B, Wh.shape[0]), dtype=x.dtype)
    for t in range(T):
        h = np.tanh(x[:, t] @ Wx + h @ Wh + b)
    out = h @ Wout
    return np.mean((out - y) ** 2)


def rnn_unrolled_torch(x, Wx, Wh, b, Wout, y):
    B, T, _ = x.shape
    h = torch.zeros((B, Wh.shape[0]), dtype=x.dtype)
    for t in range(T):
        h = torch.tanh(x[:, t] @ Wx + h @ Wh + b)
    out = h @ Wout
    return torch.mean((out - y) ** 2)


def rnn_unrolled_args(rng, dtype):
    return {
        "x": _randn(rng, dtype, 3, 4, 5),
        "Wx": _randn(rng, dtype, 5, 6, scale=0.4),
        "Wh": _randn(rng, dtype, 6, 6, scale=0.4),
        "b": _randn(rng, dtype, 6, scale=0.1),
        "Wout": _randn(rng, dtype, 6, 2, scale=0.5),
        "y": _randn(rng, dtype, 3, 2),
    }


_register("rnn_unrolled", rnn_unrolled_np, rnn_unrolled_torch, rnn_unrolled_args,
          wrt=("x", "Wx", "Wh", "b", "Wout"), nondiff=("y",),
          notes="python loop over T=4; x[:, t] slicing; np.zeros(dtype=x.dtype)")


# ---------------------------------------------------------------------------
# 9. GRU cell
# ---------------------------------------------------------------------------

def _sigmoid_np(z):
    return 1.0 / (1.0 + np.exp(-z))


def _sigmoid_torch(z):
    return 1.0 / (1.0 + torch.exp(-z))


def gru_cell_np(x, h, Wz, Uz, bz, Wr, Ur, br, Wn, Un, bn, y):
    z = _sigmoid_np(x @ Wz + h @ Uz + bz)
    r = _sigmoid_np(x @ Wr + h @ Ur + br)
    n = np.tanh(x @ Wn + (r * h) @ Un + bn)
    h_new = (1 - z) * n + z * h
    return np.mean((h_new - y) ** 2)


def gru_cell_torch(x, h, Wz, Uz, bz, Wr, Ur, br, Wn, Un, bn, y):
    z = _sigmoid_torch(x @ Wz + h @ Uz + bz)
    r = _sigmoid_torch(x @ Wr + h @ Ur + br)
    n = torch.tanh(x @ Wn + (r * h) @ Un + bn)
    h_new = (1 - z) * n + z * h
    return torch.mean((h_new - y) ** 2)


def gru_cell_args(rng, dtype):
    d, k, B = 5, 6, 4
    args = {"x": _randn(rng, dtype, B, d), "h": _randn(rng, dtype, B, k, scale=0.5)}
    for g in "zrn":
        args["W" + g] = _randn(rng, dtype, d, k, scale=0.4)
        args["U" + g] = _randn(rng, dtype, k, k, scale=0.4)
        args["b" + g] = _randn(rng, dtype, k, scale=0.1)
    args = {name: args[name] for name in ("x", "h", "Wz", "Uz", "bz", "Wr", "Ur", "br", "Wn", "Un", "bn")}
    args["y"] = _randn(rng, dtype, B, k, scale=0.5)
    return args


_register("gru_cell", gru_cell_np, gru_cell_torch, gru_cell_args,
          wrt=("h", "Wz", "Uz", "bz", "Wr", "Ur", "br", "Wn", "Un", "bn"), nondiff=("x", "y"),
          notes="sigmoid as 1/(1+exp(-z)) in a helper function")


# ---------------------------------------------------------------------------
# 10. Gaussian negative log-likelihood (mean and log-std parameters)
# ---------------------------------------------------------------------------

def gaussian_nll_np(W, b, log_std, X, y):
    mu = X @ W + b
    z = (y - mu) * np.exp(-log_std)
    return np.mean(log_std + 0.5 * z ** 2 + 0.5 * LOG2PI)


def gaussian_nll_torch(W, b, log_std, X, y):
    mu = X @ W + b
    z = (y - mu) * torch.exp(-log_std)
    return torch.mean(log_std + 0.5 * z ** 2 + 0.5 * LOG2PI)


def gaussian_nll_args(rng, dtype):
    return {
        "W": _randn(rng, dtype, 3, 2, scale=0.5),
        "b": _randn(rng, dtype, 2, scale=0.1),
        "log_std": _randn(rng, dtype, 2, scale=0.3),
        "X": _randn(rng, dtype, 10, 3),
        "y": _randn(rng, dtype, 10, 2),
    }


_register("gaussian_nll", gaussian_nll_np, gaussian_nll_torch, gaussian_nll_args,
          wrt=("W", "b", "log_std"), nondiff=("X", "y"))


# ---------------------------------------------------------------------------
# 11. Huber loss via np.where
# ---------------------------------------------------------------------------

def huber_regression_np(w, X, y):
    delta = 1.0
    r = X @ w - y
    a = np.abs(r)
    return np.mean(np.where(a <= delta, 0.5 * r ** 2, delta * (a - 0.5 * delta)))


def huber_regression_torch(w, X, y):
    delta = 1.0
    r = X @ w - y
    a = torch.abs(r)
    return torch.mean(torch.where(a <= delta, 0.5 * r ** 2, delta * (a - 0.5 * delta)))


def huber_regression_args(rng, dtype):
    return {
        "w": _randn(rng, dtype, 4, scale=0.5),
        "X": _randn(rng, dtype, 14, 4),
        "y": _randn(rng, dtype, 14, scale=2.0),  # both branches are taken
    }


_register("huber_regression", huber_regression_np, huber_regression_torch, huber_regression_args,
          wrt=("w",), nondiff=("X", "y"), kinks=True)


# ---------------------------------------------------------------------------
# 12. smooth L1
# ---------------------------------------------------------------------------

def smooth_l1_np(W, b, X, target):
    beta = 0.5
    r = X @ W + b - target
    a = np.abs(r)
    return np.sum(np.where(a < beta, 0.5 * r * r / beta, a - 0.5 * beta)) / X.shape[0]


def smooth_l1_torch(W, b, X, target):
    beta = 0.5
    r = X @ W + b - target
    a = torch.abs(r)
    return torch.sum(torch.where(a < beta, 0.5 * r * r / beta, a - 0.5 * beta)) / X.shape[0]


def smooth_l1_args(rng, dtype):
    return {
        "W": _randn(rng, dtype, 4, 2, scale=0.5),
        "b": _randn(rng, dtype, 2, scale=0.1),
        "X": _randn(rng, dtype, 10, 4),
        "target": _randn(rng, dtype, 10, 2),
    }


_register("smooth_l1", smooth_l1_np, smooth_l1_torch, smooth_l1_args,
          wrt=("W", "b"), nondiff=("X", "target"), kinks=True)


# ---------------------------------------------------------------------------
# 13. hinge loss (linear SVM)
# ---------------------------------------------------------------------------

def hinge_svm_np(w, b, X, y):
    lam = 0.1
    margin = y * (X @ w + b)
    return np.mean(np.maximum(0, 1 - margin)) + 0.5 * lam * np.sum(w ** 2)


def hinge_svm_torch(w, b, X, y):
    lam = 0.1
    margin = y * (X @ w + b)
    return torch.mean(torch.clamp(1 - margin, min=0)) + 0.5 * lam * torch.sum(w ** 2)


def hinge_svm_args(rng, dtype):
    return {
        "w": _randn(rng, dtype, 5, scale=0.5),
        "b": _randn(rng, dtype, scale=0.1),
        "X": _randn(rng, dtype, 16, 5),
        "y": (2 * rng.integers(0, 2, size=16) - 1).astype(dtype),
    }


_register("hinge_svm", hinge_svm_np, hinge_svm_torch, hinge_svm_args,
          wrt=("w", "b"), nondiff=("X", "y"), kinks=True, notes="np.maximum(0, ...) scalar first")


# ---------------------------------------------------------------------------
# 14. Poisson negative log-likelihood (log link)
# ---------------------------------------------------------------------------

def poisson_nll_np(w, b, X, y):
    eta = X @ w + b
    return np.mean(np.exp(eta) - y * eta)


def poisson_nll_torch(w, b, X, y):
    eta = X @ w + b
    return torch.mean(torch.exp(eta) - y * eta)


def poisson_nll_args(rng, dtype):
    return {
        "w": _randn(rng, dtype, 4, scale=0.3),
        "b": _randn(rng, dtype, scale=0.2, loc=0.5),
        "X": _randn(rng, dtype, 12, 4),
        "y": rng.poisson(2.0, size=12).astype(dtype),
    }


_register("poisson_nll", poisson_nll_np, poisson_nll_torch, poisson_nll_args,
          wrt=("w", "b"), nondiff=("X", "y"))


# ---------------------------------------------------------------------------
# 15. KL divergence between two softmaxes
# ---------------------------------------------------------------------------

def _log_softmax_np(z):
    m = np.max(z, axis=-1, keepdims=True)
    return z - m - np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True))


def _log_softmax_torch(z):
    m = torch.amax(z, dim=-1, keepdim=True)
    return z - m - torch.log(torch.sum(torch.exp(z - m), dim=-1, keepdim=True))


def kl_softmax_np(p_logits, q_logits):
    logp = _log_softmax_np(p_logits)
    logq = _log_softmax_np(q_logits)
    return np.sum(np.exp(logp) * (logp - logq)) / p_logits.shape[0]


def kl_softmax_torch(p_logits, q_logits):
    logp = _log_softmax_torch(p_logits)
    logq = _log_softmax_torch(q_logits)
    return torch.sum(torch.exp(logp) * (logp - logq)) / p_logits.shape[0]


def kl_softmax_args(rng, dtype):
    return {"p_logits": _randn(rng, dtype, 6, 5), "q_logits": _randn(rng, dtype, 6, 5)}


_register("kl_softmax", kl_softmax_np, kl_softmax_torch, kl_softmax_args,
          wrt=("p_logits", "q_logits"))


# ---------------------------------------------------------------------------
# 16. spring-mass energy (pairwise distances, diagonal handled via + eye)
# ---------------------------------------------------------------------------

def spring_mass_energy_np(x, k, rest, mass):
    n = x.shape[0]
    d = x[:, None, :] - x[None, :, :]
    eye = np.eye(n, dtype=x.dtype)
    r = np.sqrt(np.sum(d * d, -1) + eye)  # +eye keeps sqrt away from 0 on the diagonal
    springs = 0.25 * np.sum((1 - eye) * k * (r - rest) ** 2)
    gravity = 9.81 * np.sum(mass * x[:, 2])
    return springs + gravity


def spring_mass_energy_torch(x, k, rest, mass):
    n = x.shape[0]
    d = x[:, None, :] - x[None, :, :]
    eye = torch.eye(n, dtype=x.dtype)
    r = torch.sqrt(torch.sum(d * d, -1) + eye)
    springs = 0.25 * torch.sum((1 - eye) * k * (r - rest) ** 2)
    gravity = 9.81 * torch.sum(mass * x[:, 2])
    return springs + gravity


def spring_mass_energy_args(rng, dtype):
    n = 6
    k = rng.uniform(0.5, 2.0, size=(n, n))
    rest = rng.uniform(0.8, 1.5, size=(n, n))
    return {
        "x": _randn(rng, dtype, n, 3),
        "k": ((k + k.T) / 2).astype(dtype),
        "rest": ((rest + rest.T) / 2).astype(dtype),
        "mass": _unif(rng, dtype, n, low=0.5, high=1.5),
    }


_register("spring_mass_energy", spring_mass_energy_np, spring_mass_energy_torch,
          spring_mass_energy_args, wrt=("x", "k"), nondiff=("rest", "mass"),
          notes="x[:, None, :] - x[None, :, :]; sqrt(sum(d*d) + eye)")


# ---------------------------------------------------------------------------
# 17. Lennard-Jones energy with a safe mask
# ---------------------------------------------------------------------------

def lennard_jones_np(x, sigma):
    n = x.shape[0]
    diag = np.eye(n).astype(bool)
    d = x[:, None, :] - x[None, :, :]
    r2 = np.sum(d * d, axis=-1)
    r2_safe = np.where(diag, 1.0, r2)  # never divide by the zero diagonal
    s6 = (sigma ** 2 / r2_safe) ** 3
    e = np.where(diag, 0.0, 4.0 * (s6 * s6 - s6))
    return 0.5 * np.sum(e)


def lennard_jones_torch(x, sigma):
    n = x.shape[0]
    diag = torch.eye(n).to(torch.bool)
    d = x[:, None, :] - x[None, :, :]
    r2 = torch.sum(d * d, dim=-1)
    r2_safe = torch.where(diag, torch.ones_like(r2), r2)
    s6 = (sigma ** 2 / r2_safe) ** 3
    e = torch.where(diag, torch.zeros_like(s6), 4.0 * (s6 * s6 - s6))
    return 0.5 * torch.sum(e)


def lennard_jones_args(rng, dtype):
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=np.float64)
    x = 1.12 * corners + 0.05 * rng.standard_normal(corners.shape)
    return {"x": x.astype(dtype), "sigma": np.asarray(rng.uniform(0.95, 1.05), dtype=dtype)}


_register("lennard_jones", lennard_jones_np, lennard_jones_torch, lennard_jones_args,
          wrt=("x", "sigma"), notes="np.eye(n).astype(bool) mask; double where trick; 0-d sigma")


# ---------------------------------------------------------------------------
# 18. double pendulum energy (sin/cos)
# ---------------------------------------------------------------------------

def double_pendulum_energy_np(theta, omega, lengths, masses):
    g = 9.81
    l1, l2 = lengths[0], lengths[1]
    m1, m2 = masses[0], masses[1]
    t1, t2 = theta[:, 0], theta[:, 1]
    w1, w2 = omega[:, 0], omega[:, 1]
    y1 = -l1 * np.cos(t1)
    y2 = y1 - l2 * np.cos(t2)
    vx1 = l1 * np.cos(t1) * w1
    vy1 = l1 * np.sin(t1) * w1
    vx2 = vx1 + l2 * np.cos(t2) * w2
    vy2 = vy1 + l2 * np.sin(t2) * w2
    kinetic = 0.5 * m1 * (vx1 ** 2 + vy1 ** 2) + 0.5 * m2 * (vx2 ** 2 + vy2 ** 2)
    potential = g * (m1 * y1 + m2 * y2)
    return np.sum(kinetic + potential)


def double_pendulum_energy_torch(theta, omega, lengths, masses):
    g = 9.81
    l1, l2 = lengths[0], lengths[1]
    m1, m2 = masses[0], masses[1]
    t1, t2 = theta[:, 0], theta[:, 1]
    w1, w2 = omega[:, 0], omega[:, 1]
    y1 = -l1 * torch.cos(t1)
    y2 = y1 - l2 * torch.cos(t2)
    vx1 = l1 * torch.cos(t1) * w1
    vy1 = l1 * torch.sin(t1) * w1
    vx2 = vx1 + l2 * torch.cos(t2) * w2
    vy2 = vy1 + l2 * torch.sin(t2) * w2
    kinetic = 0.5 * m1 * (vx1 ** 2 + vy1 ** 2) + 0.5 * m2 * (vx2 ** 2 + vy2 ** 2)
    potential = g * (m1 * y1 + m2 * y2)
    return torch.sum(kinetic + potential)


def double_pendulum_energy_args(rng, dtype):
    return {
        "theta": _unif(rng, dtype, 8, 2, low=-1.5, high=1.5),
        "omega": _randn(rng, dtype, 8, 2),
        "lengths": _unif(rng, dtype, 2, low=0.5, high=1.5),
        "masses": _unif(rng, dtype, 2, low=0.5, high=2.0),
    }


_register("double_pendulum_energy", double_pendulum_energy_np, double_pendulum_energy_torch,
          double_pendulum_energy_args, wrt=("theta", "omega", "lengths"), nondiff=("masses",),
          notes="scalar indexing lengths[0]; column slices theta[:, 0]")


# ---------------------------------------------------------------------------
# 19. ridge regression with np.linalg.norm
# ---------------------------------------------------------------------------

def ridge_regression_np(w, X, y):
    lam = 0.3
    n = X.shape[0]
    return np.linalg.norm(X @ w - y) ** 2 / n + lam * np.linalg.norm(w) ** 2


def ridge_regression_torch(w, X, y):
    lam = 0.3
    n = X.shape[0]
    return torch.linalg.norm(X @ w - y) ** 2 / n + lam * torch.linalg.norm(w) ** 2


def ridge_regression_args(rng, dtype):
    return {"w": _randn(rng, dtype, 5), "X": _randn(rng, dtype, 12, 5), "y": _randn(rng, dtype, 12)}


_register("ridge_regression", ridge_regression_np, ridge_regression_torch, ridge_regression_args,
          wrt=("w",), nondiff=("X", "y"))


# ---------------------------------------------------------------------------
# 20. polynomial via **
# ---------------------------------------------------------------------------

def polynomial_np(c, x):
    p = c[0] + c[1] * x + c[2] * x ** 2 + c[3] * x ** 3
    return np.sum(p ** 2) + np.sum((x ** 2 + 1.0) ** 1.5) + np.sum(c ** 4)


def polynomial_torch(c, x):
    p = c[0] + c[1] * x + c[2] * x ** 2 + c[3] * x ** 3
    return torch.sum(p ** 2) + torch.sum((x ** 2 + 1.0) ** 1.5) + torch.sum(c ** 4)


def polynomial_args(rng, dtype):
    return {"c": _randn(rng, dtype, 4, scale=0.7), "x": _unif(rng, dtype, 10, low=-1.5, high=1.5)}


_register("polynomial", polynomial_np, polynomial_torch, polynomial_args, wrt=("c", "x"),
          notes="integer and fractional ** exponents")


# ---------------------------------------------------------------------------
# 21. Rosenbrock
# ---------------------------------------------------------------------------

def rosenbrock_np(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def rosenbrock_torch(x):
    return torch.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def rosenbrock_args(rng, dtype):
    return {"x": _unif(rng, dtype, 8, low=-1.2, high=1.2)}


_register("rosenbrock", rosenbrock_np, rosenbrock_torch, rosenbrock_args, wrt=("x",),
          notes="overlapping slices x[1:], x[:-1]")


# ---------------------------------------------------------------------------
# 22. log-sum-exp pooling over time
# ---------------------------------------------------------------------------

def logsumexp_pooling_np(H, W, v):
    r = 2.0
    z = np.tanh(H @ W)  # (B, T, k)
    m = np.max(z, axis=1, keepdims=True)
    pooled = m + np.log(np.sum(np.exp(r * (z - m)), axis=1, keepdims=True)) / r
    pooled = np.squeeze(pooled, axis=1)  # (B, k)
    return np.sum(np.tanh(pooled @ v))


def logsumexp_pooling_torch(H, W, v):
    r = 2.0
    z = torch.tanh(H @ W)
    m = torch.amax(z, dim=1, keepdim=True)
    pooled = m + torch.log(torch.sum(torch.exp(r * (z - m)), dim=1, keepdim=True)) / r
    pooled = torch.squeeze(pooled, dim=1)
    return torch.sum(torch.tanh(pooled @ v))


def logsumexp_pooling_args(rng, dtype):
    return {
        "H": _randn(rng, dtype, 4, 6, 5),
        "W": _randn(rng, dtype, 5, 3, scale=0.5),
        "v": _randn(rng, dtype, 3),
    }


_register("logsumexp_pooling", logsumexp_pooling_np, logsumexp_pooling_torch,
          logsumexp_pooling_args, wrt=("H", "W", "v"), notes="max over a middle axis; np.squeeze")


# ---------------------------------------------------------------------------
# 23. cosine similarity
# ---------------------------------------------------------------------------

def cosine_similarity_np(a, b):
    dots = np.sum(a * b, axis=-1)
    cos = dots / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.mean(1.0 - cos)


def cosine_similarity_torch(a, b):
    dots = torch.sum(a * b, dim=-1)
    cos = dots / (torch.linalg.norm(a, dim=-1) * torch.linalg.norm(b, dim=-1))
    return torch.mean(1.0 - cos)


def cosine_similarity_args(rng, dtype):
    return {"a": _randn(rng, dtype, 8, 6), "b": _randn(rng, dtype, 8, 6)}


_register("cosine_similarity", cosine_similarity_np, cosine_similarity_torch,
          cosine_similarity_args, wrt=("a", "b"), notes="np.linalg.norm(axis=-1)")


# ---------------------------------------------------------------------------
# 24. einsum bilinear form with a logistic loss via logaddexp
# ---------------------------------------------------------------------------

def bilinear_einsum_np(x, W, y, t):
    s = np.einsum("nd,de,ne->n", x, W, y)
    return np.mean(np.logaddexp(0.0, -t * s))


def bilinear_einsum_torch(x, W, y, t):
    s = torch.einsum("nd,de,ne->n", x, W, y)
    return torch.mean(torch.logaddexp(torch.zeros_like(s), -t * s))


def bilinear_einsum_args(rng, dtype):
    return {
        "x": _randn(rng, dtype, 7, 4),
        "W": _randn(rng, dtype, 4, 5, scale=0.5),
        "y": _randn(rng, dtype, 7, 5),
        "t": (2 * rng.integers(0, 2, size=7) - 1).astype(dtype),
    }


_register("bilinear_einsum", bilinear_einsum_np, bilinear_einsum_torch, bilinear_einsum_args,
          wrt=("x", "W", "y"), nondiff=("t",), notes="three-operand einsum; np.logaddexp(0.0, .)")


# ---------------------------------------------------------------------------
# 25. conv-like model: zero padding with concatenate, windows with stack, max-pool
# ---------------------------------------------------------------------------

def conv1d_maxpool_np(x, kernel, bias, target):
    B, L = x.shape
    K = kernel.shape[0]
    pad = np.zeros((B, 1), dtype=x.dtype)
    xp = np.concatenate([pad, x, pad], axis=1)
    windows = np.stack([xp[:, k:k + L] for k in range(K)], axis=-1)  # (B, L, K)
    h = np.tanh(windows @ kernel + bias)  # (B, L)
    pooled = np.max(h.reshape(B, L // 2, 2), axis=-1)
    return np.sum(pooled * target)


def conv1d_maxpool_torch(x, kernel, bias, target):
    B, L = x.shape
    K = kernel.shape[0]
    pad = torch.zeros((B, 1), dtype=x.dtype)
    xp = torch.cat([pad, x, pad], dim=1)
    windows = torch.stack([xp[:, k:k + L] for k in range(K)], dim=-1)
    h = torch.tanh(windows @ kernel + bias)
    pooled = torch.amax(h.reshape(B, L // 2, 2), dim=-1)
    return torch.sum(pooled * target)


def conv1d_maxpool_args(rng, dtype):
    return {
        "x": _randn(rng, dtype, 3, 12),
        "kernel": _randn(rng, dtype, 3, scale=0.6),
        "bias": _randn(rng, dtype, scale=0.1),
        "target": _randn(rng, dtype, 3, 6),
    }


_register("conv1d_maxpool", conv1d_maxpool_np, conv1d_maxpool_torch, conv1d_maxpool_args,
          wrt=("x", "kernel", "bias"), nondiff=("target",), kinks=True,
          notes="np.concatenate padding; np.stack of slices; max over reshaped axis")


# ---------------------------------------------------------------------------
# 26. batch-norm-style normalisation with np.var(ddof=0) and np.std
# ---------------------------------------------------------------------------

def batch_norm_np(x, gamma, beta, T):
    eps = 1e-5
    mu = np.mean(x, axis=0)
    var = np.var(x, axis=0, ddof=0)
    xhat = (x - mu) / np.sqrt(var + eps)
    y = gamma * xhat + beta
    spread = np.std(y, axis=1)
    return np.sum(y * T) + 0.1 * np.sum(spread)


def batch_norm_torch(x, gamma, beta, T):
    eps = 1e-5
    mu = torch.mean(x, dim=0)
    var = torch.var(x, dim=0, correction=0)
    xhat = (x - mu) / torch.sqrt(var + eps)
    y = gamma * xhat + beta
    spread = torch.std(y, dim=1, correction=0)
    return torch.sum(y * T) + 0.1 * torch.sum(spread)


def batch_norm_args(rng, dtype):
    return {
        "x": _randn(rng, dtype, 10, 4, scale=1.5, loc=0.3),
        "gamma": _randn(rng, dtype, 4, scale=0.3, loc=1.0),
        "beta": _randn(rng, dtype, 4, scale=0.3),
        "T": _randn(rng, dtype, 10, 4),
    }


_register("batch_norm", batch_norm_np, batch_norm_torch, batch_norm_args,
          wrt=("x", "gamma", "beta"), nondiff=("T",), notes="np.var(ddof=0), np.std(axis=1)")


# ---------------------------------------------------------------------------
# 27. mixture of Gaussians log-likelihood, logaddexp reduction over components
# ---------------------------------------------------------------------------

def gmm_loglik_np(means, log_sigma, logits, x):
    n, d = x.shape
    K = means.shape[0]
    m = np.max(logits)
    logw = logits - m - np.log(np.sum(np.exp(logits - m)))
    diff = np.expand_dims(x, 1) - np.expand_dims(means, 0)  # (n, K, d)
    sq = np.sum(diff ** 2, axis=-1)
    comp = -0.5 * sq * np.exp(-2.0 * log_sigma) - d * log_sigma - 0.5 * d * LOG2PI + logw
    ll = comp[:, 0]
    for k in range(1, K):
        ll = np.logaddexp(ll, comp[:, k])
    return -np.mean(ll)


def gmm_loglik_torch(means, log_sigma, logits, x):
    n, d = x.shape
    K = means.shape[0]
    m = torch.amax(logits)
    logw = logits - m - torch.log(torch.sum(torch.exp(logits - m)))
    diff = torch.unsqueeze(x, 1) - torch.unsqueeze(means, 0)
    sq = torch.sum(diff ** 2, dim=-1)
    comp = -0.5 * sq * torch.exp(-2.0 * log_sigma) - d * log_sigma - 0.5 * d * LOG2PI + logw
    ll = comp[:, 0]
    for k in range(1, K):
        ll = torch.logaddexp(ll, comp[:, k])
    return -torch.mean(ll)


def gmm_loglik_args(rng, dtype):
    return {
        "means": _randn(rng, dtype, 3, 2, scale=1.5),
        "log_sigma": _randn(rng, dtype, 3, scale=0.2),
        "logits": _randn(rng, dtype, 3, scale=0.5),
        "x": _randn(rng, dtype, 10, 2, scale=1.5),
    }


_register("gmm_loglik", gmm_loglik_np, gmm_loglik_torch, gmm_loglik_args,
          wrt=("means", "log_sigma", "logits"), nondiff=("x",),
          notes="np.expand_dims broadcasting; loop of np.logaddexp; full np.max of 1-d logits")


# ---------------------------------------------------------------------------
# 28. PPO clipped surrogate (exp, clip, minimum, integer indexing)
# ---------------------------------------------------------------------------

def ppo_clip_np(W, X, actions, logp_old, adv):
    logp_all = _log_softmax_np(X @ W)
    logp = logp_all[np.arange(X.shape[0]), actions]
    ratio = np.exp(logp - logp_old)
    surr = np.minimum(ratio * adv, np.clip(ratio, 0.8, 1.2) * adv)
    return -np.mean(surr)


def ppo_clip_torch(W, X, actions, logp_old, adv):
    logp_all = _log_softmax_torch(X @ W)
    logp = logp_all[torch.arange(X.shape[0]), actions]
    ratio = torch.exp(logp - logp_old)
    surr = torch.minimum(ratio * adv, torch.clamp(ratio, 0.8, 1.2) * adv)
    return -torch.mean(surr)


def ppo_clip_args(rng, dtype):
    n = 16
    W = rng.standard_normal((4, 3)) * 0.5
    X = rng.standard_normal((n, 4))
    actions = _labels(rng, n, 3)
    logp = _log_softmax_np(X @ W)[np.arange(n), actions]
    logp_old = logp + 0.3 * rng.standard_normal(n)  # ratios straddle the clip range
    return {
        "W": W.astype(dtype),
        "X": X.astype(dtype),
        "actions": actions,
        "logp_old": logp_old.astype(dtype),
        "adv": _randn(rng, dtype, n),
    }


_register("ppo_clip", ppo_clip_np, ppo_clip_torch, ppo_clip_args,
          wrt=("W",), nondiff=("X", "actions", "logp_old", "adv"), kinks=True,
          notes="np.clip with scalar bounds; np.minimum")


# ---------------------------------------------------------------------------
# 29. value rescaling h(z) = sign(z)(sqrt(|z|+1)-1) + eps z  (R2D2 / MuZero)
# ---------------------------------------------------------------------------

def value_rescale_np(w, X, target):
    z = X @ w
    h = np.sign(z) * (np.sqrt(np.abs(z) + 1.0) - 1.0) + 1e-3 * z
    return np.mean((h - target) ** 2)


def value_rescale_torch(w, X, target):
    z = X @ w
    h = torch.sign(z) * (torch.sqrt(torch.abs(z) + 1.0) - 1.0) + 1e-3 * z
    return torch.mean((h - target) ** 2)


def value_rescale_args(rng, dtype):
    return {
        "w": _randn(rng, dtype, 5, scale=2.0),
        "X": _randn(rng, dtype, 12, 5),
        "target": _randn(rng, dtype, 12),
    }


_register("value_rescale", value_rescale_np, value_rescale_torch, value_rescale_args,
          wrt=("w",), nondiff=("X", "target"), kinks=True, notes="np.sign (zero derivative)")


# ---------------------------------------------------------------------------
# 30. pseudo-Huber + arctan penalty (hypot, arctan)
# ---------------------------------------------------------------------------

def pseudo_huber_np(w, X, y):
    delta = 0.7
    r = X @ w - y
    return np.mean(np.hypot(r, delta) - delta) + 0.1 * np.mean(np.arctan(r) ** 2)


def pseudo_huber_torch(w, X, y):
    delta = 0.7
    r = X @ w - y
    return (torch.mean(torch.hypot(r, torch.full_like(r, delta)) - delta)
            + 0.1 * torch.mean(torch.arctan(r) ** 2))


def pseudo_huber_args(rng, dtype):
    return {"w": _randn(rng, dtype, 4), "X": _randn(rng, dtype, 12, 4), "y": _randn(rng, dtype, 12)}


_register("pseudo_huber", pseudo_huber_np, pseudo_huber_torch, pseudo_huber_args,
          wrt=("w",), nondiff=("X", "y"), notes="np.hypot with a python scalar; np.arctan")


# ---------------------------------------------------------------------------
# 31. ELU MLP (np.where + expm1) with np.square loss
# ---------------------------------------------------------------------------

def elu_mlp_np(W1, b1, W2, X, Y):
    z = X @ W1 + b1
    h = np.where(z > 0, z, np.expm1(z))
    out = h @ W2
    return np.mean(np.square(out - Y))


def elu_mlp_torch(W1, b1, W2, X, Y):
    z = X @ W1 + b1
    h = torch.where(z > 0, z, torch.expm1(z))
    out = h @ W2
    return torch.mean(torch.square(out - Y))


def elu_mlp_args(rng, dtype):
    return {
        "W1": _randn(rng, dtype, 4, 8, scale=0.6),
        "b1": _randn(rng, dtype, 8, scale=0.1),
        "W2": _randn(rng, dtype, 8, 2, scale=0.5),
        "X": _randn(rng, dtype, 10, 4),
        "Y": _randn(rng, dtype, 10, 2),
    }


_register("elu_mlp", elu_mlp_np, elu_mlp_torch, elu_mlp_args,
          wrt=("W1", "b1", "W2"), nondiff=("X", "Y"), kinks=True,
          notes="ELU is C1 but not C2 at 0")


# ---------------------------------------------------------------------------
# 32. discrete-time survival model with cumsum of hazards
# ---------------------------------------------------------------------------

def survival_cumsum_np(w, b, X, events):
    log_h = X @ w + b
    cum_hazard = np.cumsum(np.exp(log_h))
    return np.sum(cum_hazard - events * log_h)


def survival_cumsum_torch(w, b, X, events):
    log_h = X @ w + b
    cum_hazard = torch.cumsum(torch.exp(log_h), dim=0)
    return torch.sum(cum_hazard - events * log_h)


def survival_cumsum_args(rng, dtype):
    return {
        "w": _randn(rng, dtype, 3, scale=0.3),
        "b": _randn(rng, dtype, scale=0.2, loc=-1.0),
        "X": _randn(rng, dtype, 10, 3),
        "events": rng.integers(0, 2, size=10).astype(dtype),
    }


_register("survival_cumsum", survival_cumsum_np, survival_cumsum_torch, survival_cumsum_args,
          wrt=("w", "b"), nondiff=("X", "events"), notes="np.cumsum of a 1-d array")


# ---------------------------------------------------------------------------
# 33. noisy-OR classifier (np.prod)
# ---------------------------------------------------------------------------

def noisy_or_np(W, b, X, y):
    p = _sigmoid_np(X @ W + b)  # (n, K) per-cause probabilities
    p_or = 1.0 - np.prod(1.0 - p, axis=-1)
    return -np.mean(y * np.log(p_or) + (1.0 - y) * np.log(1.0 - p_or))


def noisy_or_torch(W, b, X, y):
    p = _sigmoid_torch(X @ W + b)
    p_or = 1.0 - torch.prod(1.0 - p, dim=-1)
    return -torch.mean(y * torch.log(p_or) + (1.0 - y) * torch.log(1.0 - p_or))


def noisy_or_args(rng, dtype):
    return {
        "W": _randn(rng, dtype, 4, 3, scale=0.4),
        "b": _randn(rng, dtype, 3, scale=0.2, loc=-1.0),
        "X": _randn(rng, dtype, 12, 4),
        "y": rng.integers(0, 2, size=12).astype(dtype),
    }


_register("noisy_or", noisy_or_np, noisy_or_torch, noisy_or_args,
          wrt=("W", "b"), nondiff=("X", "y"), notes="np.prod over the last axis")


# ---------------------------------------------------------------------------
# 34. matrix factorisation: tensordot, outer, broadcast_to, Frobenius norm, mask
# ---------------------------------------------------------------------------

def matrix_factorization_np(U, V, a, c, R, M):
    lam = 0.05
    n, m = R.shape
    pred = np.tensordot(U, V, axes=([1], [1])) + np.outer(a, np.ones(m)) + np.broadcast_to(c, (n, m))
    fit = np.sum(M * (pred - R) ** 2)
    return fit + lam * (np.linalg.norm(U) ** 2 + np.linalg.norm(V) ** 2)


def matrix_factorization_torch(U, V, a, c, R, M):
    lam = 0.05
    n, m = R.shape
    pred = (torch.tensordot(U, V, dims=([1], [1])) + torch.outer(a, torch.ones(m, dtype=a.dtype))
            + torch.broadcast_to(c, (n, m)))
    fit = torch.sum(M * (pred - R) ** 2)
    return fit + lam * (torch.linalg.norm(U) ** 2 + torch.linalg.norm(V) ** 2)


def matrix_factorization_args(rng, dtype):
    return {
        "U": _randn(rng, dtype, 6, 3, scale=0.5),
        "V": _randn(rng, dtype, 5, 3, scale=0.5),
        "a": _randn(rng, dtype, 6, scale=0.3),
        "c": _randn(rng, dtype, 5, scale=0.3),
        "R": _randn(rng, dtype, 6, 5),
        "M": (rng.uniform(size=(6, 5)) < 0.7).astype(dtype),
    }


_register("matrix_factorization", matrix_factorization_np, matrix_factorization_torch,
          matrix_factorization_args, wrt=("U", "V", "a", "c"), nondiff=("R", "M"),
          notes="np.tensordot axes=([1],[1]); np.outer; np.broadcast_to; Frobenius norm of a matrix")


# ---------------------------------------------------------------------------
# 35. InfoNCE contrastive loss (normalised embeddings, labels = arange)
# ---------------------------------------------------------------------------

def infonce_np(za, zb):
    tau = 0.5
    n = za.shape[0]
    za_n = za / np.linalg.norm(za, axis=-1, keepdims=True)
    zb_n = zb / np.linalg.norm(zb, axis=-1, keepdims=True)
    sim = za_n @ zb_n.T / tau
    logp = _log_softmax_np(sim)
    idx = np.arange(n)
    return -np.mean(logp[idx, idx])


def infonce_torch(za, zb):
    tau = 0.5
    n = za.shape[0]
    za_n = za / torch.linalg.norm(za, dim=-1, keepdim=True)
    zb_n = zb / torch.linalg.norm(zb, dim=-1, keepdim=True)
    sim = za_n @ zb_n.T / tau
    logp = _log_softmax_torch(sim)
    idx = torch.arange(n)
    return -torch.mean(logp[idx, idx])


def infonce_args(rng, dtype):
    za = rng.standard_normal((8, 6))
    return {"za": za.astype(dtype), "zb": (za + 0.8 * rng.standard_normal((8, 6))).astype(dtype)}


_register("infonce", infonce_np, infonce_torch, infonce_args, wrt=("za", "zb"),
          notes="norm(keepdims=True); diagonal picked with logp[idx, idx]")


# ---------------------------------------------------------------------------
# 36. label-smoothed cross-entropy (one-hot via np.eye(k)[labels])
# ---------------------------------------------------------------------------

def label_smoothing_ce_np(W, b, X, labels):
    alpha = 0.1
    logits = X @ W + b
    k = logits.shape[-1]
    onehot = np.eye(k)[labels]
    target = (1.0 - alpha) * onehot + alpha / k
    return -np.mean(np.sum(target * _log_softmax_np(logits), axis=-1))


def label_smoothing_ce_torch(W, b, X, labels):
    alpha = 0.1
    logits = X @ W + b
    k = logits.shape[-1]
    onehot = torch.eye(k, dtype=logits.dtype)[labels]
    target = (1.0 - alpha) * onehot + alpha / k
    return -torch.mean(torch.sum(target * _log_softmax_torch(logits), dim=-1))


def label_smoothing_ce_args(rng, dtype):
    return {
        "W": _randn(rng, dtype, 6, 5, scale=0.5),
        "b": _randn(rng, dtype, 5, scale=0.1),
        "X": _randn(rng, dtype, 8, 6),
        "labels": _labels(rng, 8, 5),
    }


_register("label_smoothing_ce", label_smoothing_ce_np, label_smoothing_ce_torch,
          label_smoothing_ce_args, wrt=("W", "b"), nondiff=("X", "labels"),
          notes="integer-array indexing of a constant np.eye")


# ---------------------------------------------------------------------------
# 37. VAE ELBO with the reparameterisation trick
# ---------------------------------------------------------------------------

def vae_elbo_np(W_mu, W_lv, W_dec, b_dec, x, noise):
    n = x.shape[0]
    mu = x @ W_mu
    logvar = x @ W_lv
    z = mu + np.exp(0.5 * logvar) * noise
    x_rec = z @ W_dec + b_dec
    recon = 0.5 * np.sum((x - x_rec) ** 2) / n
    kl = -0.5 * np.sum(1.0 + logvar - mu ** 2 - np.exp(logvar)) / n
    return recon + kl


def vae_elbo_torch(W_mu, W_lv, W_dec, b_dec, x, noise):
    n = x.shape[0]
    mu = x @ W_mu
    logvar = x @ W_lv
    z = mu + torch.exp(0.5 * logvar) * noise
    x_rec = z @ W_dec + b_dec
    recon = 0.5 * torch.sum((x - x_rec) ** 2) / n
    kl = -0.5 * torch.sum(1.0 + logvar - mu ** 2 - torch.exp(logvar)) / n
    return recon + kl


def vae_elbo_args(rng, dtype):
    return {
        "W_mu": _randn(rng, dtype, 5, 2, scale=0.4),
        "W_lv": _randn(rng, dtype, 5, 2, scale=0.2),
        "W_dec": _randn(rng, dtype, 2, 5, scale=0.5),
        "b_dec": _randn(rng, dtype, 5, scale=0.1),
        "x": _randn(rng, dtype, 6, 5),
        "noise": _randn(rng, dtype, 6, 2),
    }


_register("vae_elbo", vae_elbo_np, vae_elbo_torch, vae_elbo_args,
          wrt=("W_mu", "W_lv", "W_dec", "b_dec"), nondiff=("x", "noise"))


# ---------------------------------------------------------------------------
# 38. Chamfer distance between point clouds (np.min reductions)
# ---------------------------------------------------------------------------

def chamfer_distance_np(P, Q):
    D = np.sum((P[:, None, :] - Q[None, :, :]) ** 2, axis=-1)
    return np.mean(np.min(D, axis=1)) + np.mean(np.min(D, axis=0))


def chamfer_distance_torch(P, Q):
    D = torch.sum((P[:, None, :] - Q[None, :, :]) ** 2, dim=-1)
    return torch.mean(torch.amin(D, dim=1)) + torch.mean(torch.amin(D, dim=0))


def chamfer_distance_args(rng, dtype):
    return {"P": _randn(rng, dtype, 6, 3), "Q": _randn(rng, dtype, 5, 3)}


_register("chamfer_distance", chamfer_distance_np, chamfer_distance_torch, chamfer_distance_args,
          wrt=("P", "Q"), kinks=True, notes="np.min over either axis")


# ---------------------------------------------------------------------------
# 39. projectile trajectory fit (tan, cos)
# ---------------------------------------------------------------------------

def projectile_np(angle, speed, dist, height):
    g = 9.81
    y = dist * np.tan(angle) - g * dist ** 2 / (2.0 * speed ** 2 * np.cos(angle) ** 2)
    return np.mean((y - height) ** 2)


def projectile_torch(angle, speed, dist, height):
    g = 9.81
    y = dist * torch.tan(angle) - g * dist ** 2 / (2.0 * speed ** 2 * torch.cos(angle) ** 2)
    return torch.mean((y - height) ** 2)


def projectile_args(rng, dtype):
    return {
        "angle": _unif(rng, dtype, 8, low=0.3, high=1.0),
        "speed": _unif(rng, dtype, 8, low=8.0, high=15.0),
        "dist": _unif(rng, dtype, 8, low=2.0, high=10.0),
        "height": _unif(rng, dtype, 8, low=0.0, high=3.0),
    }


_register("projectile", projectile_np, projectile_torch, projectile_args,
          wrt=("angle", "speed"), nondiff=("dist", "height"), notes="np.tan; division by a power")


# ---------------------------------------------------------------------------
# 40. softplus Poisson-ish regression head with minimum / clip on inputs
#     (gradient clipping-like "clamped log" used in RL critics)
# ---------------------------------------------------------------------------

def clamped_log_loss_np(w, X, y):
    p = _sigmoid_np(X @ w)
    p = np.clip(p, 1e-3, 1.0 - 1e-3)
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)) + 0.01 * np.sum(np.minimum(w, 1.0) ** 2)


def clamped_log_loss_torch(w, X, y):
    p = _sigmoid_torch(X @ w)
    p = torch.clamp(p, 1e-3, 1.0 - 1e-3)
    return (-torch.mean(y * torch.log(p) + (1.0 - y) * torch.log(1.0 - p))
            + 0.01 * torch.sum(torch.clamp(w, max=1.0) ** 2))


def clamped_log_loss_args(rng, dtype):
    return {
        # offsets put some weights above the np.minimum cap of 1.0
        "w": np.asarray(rng.standard_normal(5) * 0.3 + [1.6, -0.8, 0.0, 1.3, 0.4], dtype=dtype),
        "X": _randn(rng, dtype, 14, 5, scale=2.0),  # some probabilities hit the clip
        "y": rng.integers(0, 2, size=14).astype(dtype),
    }


_register("clamped_log_loss", clamped_log_loss_np, clamped_log_loss_torch, clamped_log_loss_args,
          wrt=("w",), nondiff=("X", "y"), kinks=True,
          notes="np.clip of probabilities (zero gradient where clipped); np.minimum with a scalar")


MODELS_BY_NAME: dict[str, Model] = {m.name: m for m in MODELS}
assert len(MODELS_BY_NAME) == len(MODELS), "duplicate model names"


# ---------------------------------------------------------------------------
# evaluation helpers
# ---------------------------------------------------------------------------

def numpy_value(model: Model, args: Mapping[str, np.ndarray]):
    """Evaluate the numpy version on the given arrays (keyword call)."""
    return model.numpy_fn(**args)


def to_torch(args: Mapping[str, np.ndarray], requires_grad=()):
    """Convert numpy args: floats -> float64 tensors, integers -> int64, bools stay bool."""
    out = {}
    for name, a in args.items():
        a = np.asarray(a)
        if a.dtype == np.bool_:
            t = torch.from_numpy(a.copy())
        elif np.issubdtype(a.dtype, np.integer):
            t = torch.from_numpy(a.astype(np.int64))
        else:
            t = torch.tensor(a.astype(np.float64), dtype=torch.float64)
            if name in requires_grad:
                t.requires_grad_(True)
        out[name] = t
    return out


def torch_value_and_grad(model: Model, args: Mapping[str, np.ndarray]):
    """Reference value and gradients from the torch version (float64).

    Returns ``(value, {name: grad})`` where ``value`` is a numpy float64 scalar and
    each grad is a float64 numpy array with the shape of ``args[name]``, for every
    name in ``model.wrt``.
    """
    if torch is None:  # pragma: no cover
        raise RuntimeError("torch is required for torch_value_and_grad")
    targs = to_torch(args, requires_grad=model.wrt)
    value = model.torch_fn(**targs)
    if value.ndim != 0:
        raise ValueError(f"{model.name}: torch function returned shape {tuple(value.shape)}")
    value.backward()
    grads = {}
    for name in model.wrt:
        g = targs[name].grad
        grads[name] = (np.zeros(np.shape(args[name])) if g is None
                       else g.detach().numpy().astype(np.float64, copy=True))
    return np.float64(value.detach().item()), grads
