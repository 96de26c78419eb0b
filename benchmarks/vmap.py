"""Per-example gradients at 256 examples: sg.vmap(sg.grad(loss)) against a Python loop of
sg.grad, and against torch.func.vmap(torch.func.grad(loss)).

    PYTHONPATH=. python benchmarks/vmap.py

Three losses: logistic regression (w: 64, b) and a tanh MLP with softmax cross-entropy,
small (16 -> 32 -> 4) and larger (64 -> 128 -> 10; its per-example gradient of w1 alone is
256 x 64 x 128 floats, 16 MB, so writing it bounds vmap's time). Each is checked against
the loop (and against torch when it is installed) before it is timed; times are the best of
several repeats, per call of the whole batch.
Goal: vmap at least 10x faster than the loop.
"""
from __future__ import annotations

import os
import tempfile
import timeit

import numpy as np

os.environ.setdefault("SYMGRAD_CACHE_DIR", tempfile.mkdtemp(prefix="symgrad-bench-"))
import symgrad as sg  # noqa: E402

try:
    import torch
    from torch import func as tf
except ImportError:  # the torch column is left out
    torch = None

N, D, H, C = 256, 64, 128, 10


def logistic(w, b, x, y):
    z = x @ w + b
    return np.logaddexp(0.0, z) - y * z


def mlp(params, x, y):
    h = np.tanh(x @ params["w1"] + params["b1"])
    logits = h @ params["w2"] + params["b2"]
    top = logits.max()
    return top + np.log(np.sum(np.exp(logits - top))) - np.sum(logits * y)


def logistic_t(w, b, x, y):
    z = x @ w + b
    return torch.nn.functional.softplus(z) - y * z


def mlp_t(params, x, y):
    h = torch.tanh(x @ params["w1"] + params["b1"])
    logits = h @ params["w2"] + params["b2"]
    return torch.logsumexp(logits, 0) - torch.sum(logits * y)


def best(call, repeat: int = 7) -> float:
    number = max(1, int(0.2 / max(timeit.timeit(call, number=1), 1e-6)))
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number


def _mlp_case(rng: np.random.Generator, d: int, h: int, c: int) -> tuple:
    x, labels = rng.standard_normal((N, d)), np.eye(c)[rng.integers(0, c, N)]
    params = {"w1": rng.standard_normal((d, h)) * 0.1, "b1": np.zeros(h),
              "w2": rng.standard_normal((h, c)) * 0.1, "b2": np.zeros(c)}
    return (f"MLP {d}-{h}-{c}", mlp, mlp_t, (params,), (x, labels), 1)


def workloads(rng: np.random.Generator) -> list:
    x = rng.standard_normal((N, D))
    w, b = rng.standard_normal(D) * 0.1, np.array(0.1)
    y = (rng.random(N) > 0.5).astype(float)
    return [
        ("logistic regression", logistic, logistic_t, (w, b), (x, y), 2),
        _mlp_case(rng, 16, 32, 4),
        _mlp_case(rng, D, H, C),
    ]


def main() -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for name, loss, loss_t, shared, data, count in workloads(rng):
        wrt = tuple(range(count)) if count > 1 else 0
        in_axes = (None,) * len(shared) + (0,) * len(data)
        batched = sg.vmap(sg.grad(loss, wrt=wrt), in_axes=in_axes)
        one = sg.grad(loss, wrt=wrt)

        def loop():
            return [one(*shared, *(d[i] for d in data)) for i in range(N)]

        got, looped = batched(*shared, *data), loop()
        flat_got = sg.tree_flatten(got)[0]
        for k, leaf in enumerate(flat_got):
            expected = np.stack([sg.tree_flatten(g)[0][k] for g in looped])
            np.testing.assert_allclose(leaf, expected, rtol=1e-10, atol=1e-12)
        row = {"workload": name, "vmap": best(lambda: batched(*shared, *data)),
               "loop": best(loop, repeat=3)}
        if torch is not None:
            to_t = lambda v: sg.tree_map(torch.tensor, v)  # noqa: E731
            shared_t, data_t = [to_t(s) for s in shared], [torch.tensor(d) for d in data]
            argnums = tuple(range(count)) if count > 1 else 0
            torch_fn = tf.vmap(tf.grad(loss_t, argnums=argnums), in_dims=in_axes)
            expected = sg.tree_flatten(torch_fn(*shared_t, *data_t))[0]
            for leaf, other in zip(flat_got, expected):
                np.testing.assert_allclose(leaf, other.numpy(), rtol=1e-9, atol=1e-12)
            row["torch.func"] = best(lambda: torch_fn(*shared_t, *data_t))
        rows.append(row)
    return rows


if __name__ == "__main__":
    print(f"per-example gradients, {N} examples, float64, best per call of the whole batch")
    print(f"{'workload':<22}{'sg.vmap':>12}{'loop of grad':>15}{'torch.func':>13}"
          f"{'loop/vmap':>11}{'torch/vmap':>12}")
    for row in main():
        t = row.get("torch.func")
        print(f"{row['workload']:<22}{row['vmap'] * 1e3:>10.3f}ms{row['loop'] * 1e3:>13.2f}ms"
              f"{(t * 1e3 if t else float('nan')):>11.3f}ms{row['loop'] / row['vmap']:>10.1f}x"
              f"{(t / row['vmap'] if t else float('nan')):>11.2f}x")
