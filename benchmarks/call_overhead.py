"""Per-call overhead of a compiled symgrad function over the generated function itself.

    PYTHONPATH=. python benchmarks/call_overhead.py

Calls `value_and_grad` of a 4-argument loss on tiny arrays (so the numpy work is small and the
wrapper's share is visible) and, for comparison, the generated function directly, and prints
the best per-call time of each over several repeats and their difference: what the wrapper
costs (signature check, in-memory cache lookup, dispatch). Goal: a few microseconds.
"""
from __future__ import annotations

import os
import tempfile
import timeit

import numpy as np

os.environ.setdefault("SYMGRAD_CACHE_DIR", tempfile.mkdtemp(prefix="symgrad-bench-"))
import symgrad as sg  # noqa: E402


def loss(x, y, w, b):
    z = x @ w + b
    return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))


def best_per_call(call, number: int, repeat: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number


def main(number: int = 20000, repeat: int = 15) -> dict[str, float]:
    rng = np.random.default_rng(0)
    args = (rng.normal(size=(2, 3)), rng.normal(size=(2, 2)), rng.normal(size=(3, 2)),
            rng.normal(size=2))
    compiled = sg.value_and_grad(loss, wrt=("w", "b"))
    compiled(*args)
    generated = compiled.lower(*args).function
    assert compiled(*args)[0] == generated(*args)[0]
    results = {}
    # Interleave the two so that frequency scaling and noise hit both alike.
    direct, wrapped = [], []
    for _ in range(repeat):
        direct.append(best_per_call(lambda: generated(*args), number, 1))
        wrapped.append(best_per_call(lambda: compiled(*args), number, 1))
    results["generated function (us)"] = min(direct) * 1e6
    results["compiled wrapper (us)"] = min(wrapped) * 1e6
    results["wrapper overhead (us)"] = results["compiled wrapper (us)"] - results[
        "generated function (us)"]
    for name, value in results.items():
        print(f"{name:28s} {value:8.2f}")
    return results


if __name__ == "__main__":
    main()
