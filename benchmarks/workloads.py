"""Benchmark workloads: one small record per workload.

Each record holds, for one problem:

* ``make_args(dtype)``  -> dict name -> numpy array, in the user function's
  parameter order (deterministic: fixed seed);
* ``numpy_fn``          -> the plain numpy function a user would write; this is
  what symgrad traces;
* ``hand_vg``           -> a careful hand-written numpy value-and-gradient (the
  derivative worked out on paper), returning ``(value, (g1, g2, ...))`` in
  ``wrt`` order;
* ``torch_fn(torch, *args)`` / ``jax_fn(jnp, *args)`` -> the same program
  written op-for-op in torch / jax.numpy.  The framework module is passed in as
  the first argument so that importing this module (for example in the
  fresh-process time-to-first-gradient child) only imports numpy.

The torch and jax versions deliberately mirror the numpy formula instead of
calling fused library helpers (``F.cross_entropy`` and friends): the benchmark
compares differentiation systems on the same program.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

SEED = 20240601


@dataclass(frozen=True)
class Workload:
    id: str                      # e.g. "W2/f32"; --only matches on this
    title: str
    dtype: type                  # floating dtype of the data
    shapes: str                  # human-readable description for the table header
    make_args: Callable[[type], dict]
    wrt: tuple                   # names of the parameters we differentiate
    numpy_fn: Callable
    hand_vg: Callable
    torch_fn: Callable
    jax_fn: Callable

    def args(self) -> dict:
        return self.make_args(self.dtype)

    def wrt_index(self, arg_names) -> tuple:
        names = list(arg_names)
        return tuple(names.index(n) for n in self.wrt)


def _rng() -> np.random.Generator:
    return np.random.default_rng(SEED)


# ---------------------------------------------------------------------------
# W1 / W2: binary cross-entropy with logits
# ---------------------------------------------------------------------------

def bce_loss(x, y, w, b):
    z = x @ w + b
    return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))


def _bce_dz(z, y):
    """Value of the mean BCE-with-logits and dL/dz = (sigmoid(z) - y) / n."""
    e = np.exp(-np.abs(z))                        # in (0, 1]: never overflows
    value = np.mean(np.maximum(z, 0) - z * y + np.log1p(e))
    # stable sigmoid from the same e: 1/(1+e) for z >= 0, e/(1+e) for z < 0
    sig = np.where(z >= 0, 1.0, e) / (1.0 + e)
    dz = (sig - y) / z.size
    return value, dz


def bce_hand_vector(x, y, w, b):
    """W1: x (d,), w (d, k), b (k,) -> z (k,)."""
    z = x @ w + b
    value, dz = _bce_dz(z, y)
    return value, (np.outer(x, dz), dz)


def bce_hand_batch(x, y, w, b):
    """W2: x (n, d), w (d,), b scalar (0-d) -> z (n,)."""
    z = x @ w + b
    value, dz = _bce_dz(z, y)
    return value, (x.T @ dz, np.asarray(dz.sum()))


def bce_torch(torch, x, y, w, b):
    z = x @ w + b
    return torch.mean(torch.clamp(z, min=0) - z * y + torch.log1p(torch.exp(-torch.abs(z))))


def bce_jax(jnp, x, y, w, b):
    z = x @ w + b
    return jnp.mean(jnp.maximum(z, 0) - z * y + jnp.log1p(jnp.exp(-jnp.abs(z))))


def w1_args(dtype):
    rng = _rng()
    return {
        "x": np.ones(5, dtype),
        "y": np.zeros(3, dtype),
        "w": rng.standard_normal((5, 3)).astype(dtype),
        "b": rng.standard_normal(3).astype(dtype),
    }


def w2_args(dtype):
    rng = _rng()
    n, d = 4096, 256
    x = rng.standard_normal((n, d)).astype(dtype)
    w_true = rng.standard_normal(d) / np.sqrt(d)
    y = (x @ w_true + 0.5 * rng.standard_normal(n) > 0).astype(dtype)
    return {
        "x": x,
        "y": y,
        "w": (0.1 * rng.standard_normal(d)).astype(dtype),
        "b": np.asarray(0.1, dtype=dtype),          # 0-d array
    }


# ---------------------------------------------------------------------------
# W3: MLP, tanh hidden layer, softmax cross-entropy
# ---------------------------------------------------------------------------

def mlp_loss(X, labels, W1, b1, W2, b2):
    h = np.tanh(X @ W1 + b1)
    logits = h @ W2 + b2
    z = logits - np.max(logits, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    n = X.shape[0]
    return -np.mean(logp[np.arange(n), labels])


def mlp_hand(X, labels, W1, b1, W2, b2):
    n = X.shape[0]
    rows = np.arange(n)
    h = np.tanh(X @ W1 + b1)
    logits = h @ W2 + b2
    z = logits - logits.max(axis=1, keepdims=True)
    ez = np.exp(z)
    se = ez.sum(axis=1, keepdims=True)
    value = np.mean(np.log(se[:, 0]) - z[rows, labels])
    # d(loss)/d(logits) = (softmax - onehot) / n
    dlogits = ez / se
    dlogits[rows, labels] -= 1
    dlogits /= n
    gW2 = h.T @ dlogits
    gb2 = dlogits.sum(axis=0)
    dh = dlogits @ W2.T
    dh *= 1 - h * h                                # tanh' = 1 - tanh^2
    gW1 = X.T @ dh
    gb1 = dh.sum(axis=0)
    return value, (gW1, gb1, gW2, gb2)


def mlp_torch(torch, X, labels, W1, b1, W2, b2):
    h = torch.tanh(X @ W1 + b1)
    logits = h @ W2 + b2
    z = logits - torch.amax(logits, dim=1, keepdim=True)
    logp = z - torch.log(torch.sum(torch.exp(z), dim=1, keepdim=True))
    n = X.shape[0]
    return -torch.mean(logp[torch.arange(n), labels])


def mlp_jax(jnp, X, labels, W1, b1, W2, b2):
    h = jnp.tanh(X @ W1 + b1)
    logits = h @ W2 + b2
    z = logits - jnp.max(logits, axis=1, keepdims=True)
    logp = z - jnp.log(jnp.sum(jnp.exp(z), axis=1, keepdims=True))
    n = X.shape[0]
    return -jnp.mean(logp[jnp.arange(n), labels])


def w3_args(dtype):
    rng = _rng()
    n, d, hdim, k = 1024, 784, 256, 10
    return {
        "X": rng.random((n, d)).astype(dtype),                 # pixel-like in [0, 1)
        "labels": rng.integers(0, k, size=n),                  # int64
        "W1": (rng.standard_normal((d, hdim)) / np.sqrt(d)).astype(dtype),
        "b1": np.zeros(hdim, dtype),
        "W2": (rng.standard_normal((hdim, k)) / np.sqrt(hdim)).astype(dtype),
        "b2": np.zeros(k, dtype),
    }


# ---------------------------------------------------------------------------
# W4: large elementwise expression
# ---------------------------------------------------------------------------

def elementwise_loss(x, y):
    return np.sum(np.log1p(np.exp(np.sin(x) * y)) + np.sqrt(x * x + y * y + 1))


def elementwise_hand(x, y):
    # u = sin(x) y;  d/du log1p(exp(u)) = sigmoid(u) = e / (1 + e) with e = exp(u)
    # r = sqrt(x^2 + y^2 + 1);  dr/dx = x / r, dr/dy = y / r
    s = np.sin(x)
    e = np.exp(s * y)
    r = x * x
    r += y * y
    r += 1
    np.sqrt(r, out=r)
    value = np.sum(np.log1p(e)) + np.sum(r)
    sig = e
    sig /= 1 + e                                   # e is not needed afterwards
    gx = np.cos(x)
    gx *= y
    gx *= sig
    gx += x / r
    gy = s
    gy *= sig
    gy += y / r
    return value, (gx, gy)


def elementwise_torch(torch, x, y):
    return torch.sum(torch.log1p(torch.exp(torch.sin(x) * y)) + torch.sqrt(x * x + y * y + 1))


def elementwise_jax(jnp, x, y):
    return jnp.sum(jnp.log1p(jnp.exp(jnp.sin(x) * y)) + jnp.sqrt(x * x + y * y + 1))


def w4_args(dtype):
    rng = _rng()
    n = 4_000_000
    return {
        "x": rng.standard_normal(n).astype(dtype),
        "y": rng.standard_normal(n).astype(dtype),
    }


# ---------------------------------------------------------------------------
# W5: single-head attention
# ---------------------------------------------------------------------------

def attention_loss(X, Wq, Wk, Wv):
    Q = X @ Wq
    K = X @ Wk
    V = X @ Wv
    scores = Q @ K.transpose(0, 2, 1) / Q.shape[-1] ** 0.5
    scores = scores - np.max(scores, axis=-1, keepdims=True)
    e = np.exp(scores)
    P = e / np.sum(e, axis=-1, keepdims=True)
    out = P @ V
    return np.mean(out ** 2)


def attention_hand(X, Wq, Wk, Wv):
    d = X.shape[-1]
    scale = 1.0 / Wq.shape[-1] ** 0.5
    Q = X @ Wq
    K = X @ Wk
    V = X @ Wv
    S = Q @ K.transpose(0, 2, 1)
    S *= scale
    S -= S.max(axis=-1, keepdims=True)
    P = np.exp(S)
    P /= P.sum(axis=-1, keepdims=True)
    O = P @ V
    value = np.mean(O * O)
    dO = O * (2.0 / O.size)
    dV = P.transpose(0, 2, 1) @ dO
    dP = dO @ V.transpose(0, 2, 1)
    # softmax backward: dS = P * (dP - sum(dP * P, -1))
    dS = dP
    dS -= np.sum(dP * P, axis=-1, keepdims=True)
    dS *= P
    dS *= scale
    dQ = dS @ K
    dK = dS.transpose(0, 2, 1) @ Q
    Xf = X.reshape(-1, d)
    gWq = Xf.T @ dQ.reshape(-1, dQ.shape[-1])
    gWk = Xf.T @ dK.reshape(-1, dK.shape[-1])
    gWv = Xf.T @ dV.reshape(-1, dV.shape[-1])
    return value, (gWq, gWk, gWv)


def attention_torch(torch, X, Wq, Wk, Wv):
    Q = X @ Wq
    K = X @ Wk
    V = X @ Wv
    scores = Q @ K.transpose(1, 2) / Q.shape[-1] ** 0.5
    scores = scores - torch.amax(scores, dim=-1, keepdim=True)
    e = torch.exp(scores)
    P = e / torch.sum(e, dim=-1, keepdim=True)
    out = P @ V
    return torch.mean(out ** 2)


def attention_jax(jnp, X, Wq, Wk, Wv):
    Q = X @ Wq
    K = X @ Wk
    V = X @ Wv
    scores = Q @ K.transpose(0, 2, 1) / Q.shape[-1] ** 0.5
    scores = scores - jnp.max(scores, axis=-1, keepdims=True)
    e = jnp.exp(scores)
    P = e / jnp.sum(e, axis=-1, keepdims=True)
    out = P @ V
    return jnp.mean(out ** 2)


def w5_args(dtype):
    rng = _rng()
    b, t, d = 8, 128, 64
    return {
        "X": rng.standard_normal((b, t, d)).astype(dtype),
        "Wq": (rng.standard_normal((d, d)) / np.sqrt(d)).astype(dtype),
        "Wk": (rng.standard_normal((d, d)) / np.sqrt(d)).astype(dtype),
        "Wv": (rng.standard_normal((d, d)) / np.sqrt(d)).astype(dtype),
    }


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------

def _bce(id, title, dtype, shapes, make_args, hand):
    return Workload(id, title, dtype, shapes, make_args, ("w", "b"),
                    bce_loss, hand, bce_torch, bce_jax)


WORKLOADS = [
    _bce("W1/f64", "tutorial BCE (latency-bound)", np.float64,
         "x ones(5), y zeros(3), w (5,3), b (3,); grads w, b", w1_args, bce_hand_vector),
    _bce("W2/f64", "logistic regression", np.float64,
         "X (4096,256), y (4096,), w (256,), b 0-d; grads w, b", w2_args, bce_hand_batch),
    _bce("W2/f32", "logistic regression", np.float32,
         "X (4096,256), y (4096,), w (256,), b 0-d; grads w, b", w2_args, bce_hand_batch),
    Workload("W3/f32", "MLP 784-256-10, tanh, softmax CE", np.float32,
             "X (1024,784), labels (1024,) int, W1 (784,256), b1, W2 (256,10), b2; "
             "grads W1, b1, W2, b2",
             w3_args, ("W1", "b1", "W2", "b2"), mlp_loss, mlp_hand, mlp_torch, mlp_jax),
    Workload("W4/f64", "large elementwise", np.float64,
             "x, y (4_000_000,); sum(log1p(exp(sin(x)*y)) + sqrt(x*x+y*y+1)); grads x, y",
             w4_args, ("x", "y"), elementwise_loss, elementwise_hand,
             elementwise_torch, elementwise_jax),
    Workload("W5/f32", "single-head attention", np.float32,
             "X (8,128,64), Wq, Wk, Wv (64,64); loss mean(out**2); grads Wq, Wk, Wv",
             w5_args, ("Wq", "Wk", "Wv"), attention_loss, attention_hand,
             attention_torch, attention_jax),
]

BY_ID = {w.id: w for w in WORKLOADS}


# A tiny problem that no workload shares, run once per system before any
# workload so that one-time costs (importing torch._inductor, starting XLA,
# symgrad's own imports) are reported separately and not charged to W1's
# "first call".
def warmup_loss(x, y):
    return np.sum(np.sin(x) * y)


def warmup_hand(x, y):
    return np.sum(np.sin(x) * y), (np.cos(x) * y, np.sin(x))


WARMUP = Workload(
    "warmup", "one-time framework start-up", np.float64, "x, y (8,)",
    lambda dtype: {"x": np.linspace(0.1, 0.8, 8, dtype=dtype), "y": np.ones(8, dtype)},
    ("x", "y"), warmup_loss, warmup_hand,
    lambda torch, x, y: torch.sum(torch.sin(x) * y),
    lambda jnp, x, y: jnp.sum(jnp.sin(x) * y),
)


def select(only) -> list:
    """Workloads whose id starts with any token in ``only`` (case-insensitive).

    ``W2`` selects W2/f64 and W2/f32; ``W2/f32`` selects just that one.
    An empty/None ``only`` selects everything.
    """
    if not only:
        return list(WORKLOADS)
    toks = [t.lower() for t in only]
    return [w for w in WORKLOADS if any(w.id.lower().startswith(t) for t in toks)]
