"""Hessian-vector products without the Hessian: `sg.hvp` against forming `sg.hessian` and
multiplying, for a 2,000-parameter model, with torch.func's forward-over-reverse hvp and (when
installed) JAX's, all in one run. Every result is checked against torch's first.

    python benchmarks/hvp.py            # --quick: fewer repeats
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import calibrate, time_loop  # noqa: E402

import symgrad as sg  # noqa: E402

N, D = 256, 2000  # rows, parameters


def loss(w, X, y):
    z = X @ w
    return np.mean(np.logaddexp(0, z) - y * z) + 1e-3 * np.sum(w ** 4)


def median_time(call, repeats: int) -> float:
    n = calibrate(call, 0.05)
    return float(np.median([time_loop(call, n) for _ in range(repeats)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    repeats = 3 if options.quick else 7
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(N, D)) / np.sqrt(D), (rng.random(N) < 0.5).astype(float)
    w, v = rng.normal(size=D) * 0.1, rng.normal(size=D)

    import torch
    import torch.func as tf

    Xt, yt = torch.tensor(X), torch.tensor(y)

    def torch_loss(w):
        z = Xt @ w
        return torch.mean(torch.logaddexp(torch.zeros(()), z) - yt * z) + 1e-3 * torch.sum(w ** 4)

    torch_hvp = lambda: tf.jvp(tf.grad(torch_loss), (torch.tensor(w),), (torch.tensor(v),))[1]  # noqa: E731
    expected = torch_hvp().numpy()

    hvp = sg.hvp(loss, wrt="w")
    hessian = sg.hessian(loss, wrt="w")
    t0 = time.perf_counter()
    ours = hvp(w, X, y, v)
    compile_hvp = time.perf_counter() - t0
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-12)
    t0 = time.perf_counter()
    H = hessian(w, X, y)
    form_once = time.perf_counter() - t0
    np.testing.assert_allclose(H @ v, expected, rtol=1e-9, atol=1e-11)

    rows = [("symgrad hvp", median_time(lambda: hvp(w, X, y, v), repeats)),
            ("torch.func jvp(grad)", median_time(torch_hvp, repeats))]
    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)

        def jax_loss(w):
            z = X @ w
            return jnp.mean(jnp.logaddexp(0, z) - y * z) + 1e-3 * jnp.sum(w ** 4)

        jax_hvp = jax.jit(lambda w, v: jax.jvp(jax.grad(jax_loss), (w,), (v,))[1])
        np.testing.assert_allclose(jax_hvp(w, v), expected, rtol=1e-9)
        rows.append(("jax.jit jvp(grad)", median_time(
            lambda: jax_hvp(w, v).block_until_ready(), repeats)))
    except ImportError:
        print("(jax not installed: its row is skipped)")
    form = median_time(lambda: hessian(w, X, y) @ v, 1) if not options.quick else form_once
    rows.append(("symgrad hessian(...) @ v", form))
    ours_t = rows[0][1]
    print(f"Hessian-vector product of a {D}-parameter model ({N} rows), float64")
    print(f"{'':28s} {'time':>10s} {'symgrad hvp / this':>20s}")
    for name, seconds in rows:
        print(f"{name:28s} {seconds * 1e3:8.2f}ms {ours_t / seconds:20.3f}")
    print(f"first hvp call (trace, differentiate twice, generate): {compile_hvp:.2f} s; "
          f"forming the Hessian ({D} hvp calls) once: {form_once:.2f} s")


if __name__ == "__main__":
    main()
