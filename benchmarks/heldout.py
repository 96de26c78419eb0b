"""Workloads beyond the five of run.py, of the same kinds, as a guard against tuning to them:
symgrad against jax.jit, medians from one interleaved run, gradients checked against JAX's
in float64 first.

    python benchmarks/heldout.py              # every workload
    python benchmarks/heldout.py mha gmm      # those whose name contains a token

Each workload is written once against an array namespace `xp` (numpy for symgrad, jax.numpy
for JAX), so both systems differentiate the same program.
"""
from __future__ import annotations

import functools
import sys
import time

import numpy as np

import symgrad as sg


def relu_mlp(xp, X, y, W1, b1, W2, b2):
    h = xp.maximum(X @ W1 + b1, 0)
    return xp.mean(((h @ W2 + b2)[:, 0] - y) ** 2)


def sigmoid_mlp3(xp, X, y, W1, W2, W3):
    h1 = 1 / (1 + xp.exp(-(X @ W1)))
    return xp.mean((xp.tanh(h1 @ W2) @ W3 - y) ** 2)


def softmax_regression(xp, X, onehot, W, b):
    z = X @ W + b
    m = xp.max(z, axis=1, keepdims=True)
    logp = z - m - xp.log(xp.sum(xp.exp(z - m), axis=1, keepdims=True))
    return -xp.mean(xp.sum(onehot * logp, axis=1))


def logistic_l2(xp, X, y, w, b):
    z = X @ w + b
    return xp.mean(xp.logaddexp(0, z) - y * z) + 1e-3 * xp.sum(w * w)


def layer_norm_linear(xp, X, g, beta, W):
    mu = xp.mean(X, axis=-1, keepdims=True)
    var = xp.mean((X - mu) ** 2, axis=-1, keepdims=True)
    return xp.sum(xp.tanh(((X - mu) / xp.sqrt(var + 1e-5) * g + beta) @ W) ** 2)


def gaussian_mixture(xp, x, means, log_sigma, logits):
    d = x[:, None, :] - means[None, :, :]
    logw = logits - xp.max(logits) - xp.log(xp.sum(xp.exp(logits - xp.max(logits))))
    comp = -0.5 * xp.sum(d * d, axis=-1) * xp.exp(-2 * log_sigma) - 2 * log_sigma + logw
    m = xp.max(comp, axis=1, keepdims=True)
    return -xp.mean(m[:, 0] + xp.log(xp.sum(xp.exp(comp - m), axis=1)))


def elementwise(xp, x, y):
    return xp.sum(xp.tanh(x) * xp.exp(-y * y) + xp.log1p(x * x))


def multi_head_attention(xp, X, Wq, Wk, Wv, Wo):
    b, t, d = X.shape
    q, k, v = ((X @ W).reshape(b, t, 4, d // 4).transpose(0, 2, 1, 3) for W in (Wq, Wk, Wv))
    s = q @ k.transpose(0, 1, 3, 2) / (d // 4) ** 0.5
    e = xp.exp(s - xp.max(s, axis=-1, keepdims=True))
    o = (e / xp.sum(e, axis=-1, keepdims=True)) @ v
    return xp.mean((o.transpose(0, 2, 1, 3).reshape(b, t, d) @ Wo) ** 2)


def causal_attention(xp, X, Wq, Wk, Wv, mask):
    s = (X @ Wq) @ (X @ Wk).transpose(0, 2, 1) / 8.0
    s = xp.where(mask, s, -1e9)
    e = xp.exp(s - xp.max(s, axis=-1, keepdims=True))
    return xp.sum(((e / xp.sum(e, axis=-1, keepdims=True)) @ (X @ Wv)) ** 2) / X.shape[0]


def _cases():
    rng = np.random.default_rng(0)
    f32, f64 = np.float32, np.float64

    def normal(*shape, dtype=f64, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    weights = [normal(128, 128, dtype=f32, scale=0.09) for _ in range(4)]
    return {
        "relu_mlp f32": (relu_mlp, [normal(2048, 512, dtype=f32), normal(2048, dtype=f32),
                                    normal(512, 256, dtype=f32, scale=0.04),
                                    normal(256, dtype=f32), normal(256, 1, dtype=f32, scale=0.06),
                                    normal(1, dtype=f32)], (2, 3, 4, 5)),
        "sigmoid_mlp3 f64": (sigmoid_mlp3, [normal(1024, 256), normal(1024, 10),
                                            normal(256, 256, scale=0.06),
                                            normal(256, 128, scale=0.09),
                                            normal(128, 10, scale=0.09)], (2, 3, 4)),
        "softmax_regression f64": (softmax_regression, [
            normal(4096, 64), np.eye(5)[rng.integers(0, 5, 4096)], normal(64, 5, scale=0.1),
            normal(5)], (2, 3)),
        "logistic_l2 f32": (logistic_l2, [normal(8192, 128, dtype=f32),
                                          (rng.random(8192) > 0.5).astype(f32),
                                          normal(128, dtype=f32, scale=0.1),
                                          np.asarray(0.1, f32)], (2, 3)),
        "layer_norm f32": (layer_norm_linear, [normal(1024, 512, dtype=f32),
                                               normal(512, dtype=f32), normal(512, dtype=f32),
                                               normal(512, 128, dtype=f32, scale=0.04)],
                           (1, 2, 3)),
        "gaussian_mixture f64": (gaussian_mixture, [normal(4096, 2), normal(8, 2),
                                                    normal(8, scale=0.1), normal(8)], (1, 2, 3)),
        "elementwise f64": (elementwise, [normal(2_000_000), normal(2_000_000)], (0, 1)),
        "multi_head_attention f32": (multi_head_attention,
                                     [normal(4, 64, 128, dtype=f32)] + weights, (1, 2, 3, 4)),
        "causal_attention f32": (causal_attention, [
            normal(8, 128, 64, dtype=f32)] + [normal(64, 64, dtype=f32, scale=0.12)
                                              for _ in range(3)]
            + [np.tril(np.ones((128, 128), bool))], (1, 2, 3)),
    }


def _median_seconds(call, rounds: int = 15, sample_s: float = 0.02) -> list[float]:
    """Per-call seconds of `rounds` samples, each a loop of at least `sample_s`."""
    samples = []
    for _ in range(rounds):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < sample_s:
            call()
            count += 1
        samples.append((time.perf_counter() - start) / count)
    return samples


def main(tokens: list[str]) -> None:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    print(f"{'workload':26s} {'symgrad':>10s} {'jax.jit':>10s} {'ratio':>6s}  grad check vs jax (f64)")
    for name, (fn, args, wrt) in _cases().items():
        if tokens and not any(t in name for t in tokens):
            continue
        numpy_fn = functools.partial(fn, np)
        numpy_fn.__name__ = fn.__name__
        ours = sg.value_and_grad(numpy_fn, wrt=wrt)
        theirs = jax.jit(jax.value_and_grad(functools.partial(fn, jnp), argnums=wrt))
        wide = [a.astype(np.float64) if a.dtype == np.float32 else a for a in args]
        _, check = sg.value_and_grad(numpy_fn, wrt=wrt)(*wide)
        _, reference = theirs(*map(jnp.asarray, wide))
        error = max(float(np.max(np.abs(g - np.asarray(r))) / np.max(np.abs(np.asarray(r))))
                    for g, r in zip(check, reference))
        jax_args = [jnp.asarray(a) for a in args]
        systems = {"symgrad": lambda: ours(*args),
                   "jax": lambda: jax.block_until_ready(theirs(*jax_args))}
        samples: dict[str, list[float]] = {k: [] for k in systems}
        for _ in range(3):  # interleaved, each after a warm-up of its own
            for key, call in systems.items():
                _median_seconds(call, rounds=1, sample_s=0.15)
                samples[key] += _median_seconds(call, rounds=5)
        medians = {k: float(np.median(v)) for k, v in samples.items()}
        print(f"{name:26s} {medians['symgrad'] * 1e3:8.3f}ms {medians['jax'] * 1e3:8.3f}ms "
              f"{medians['symgrad'] / medians['jax']:6.2f}  max rel. error {error:.0e}")


if __name__ == "__main__":
    main(sys.argv[1:])
