"""Loops that stay loops: compile time, generated source size and peak memory of a scan RNN.

    PYTHONPATH=. python benchmarks/loops.py [--unrolled]

A tanh RNN (batch 32, input 16, hidden 64) over T = 10, 100 and 1000 steps, its loss the sum
of the squared hidden states, through `sg.value_and_grad` with respect to both weight
matrices: with `sg.scan` (saving every carry), with `sg.scan(..., checkpoint_every=k)`
(saving every k-th carry and recomputing the rest), and, with --unrolled, as a Python `for`
loop (which traces into T copies of the step). Per row: `.lower()` on an empty cache
(trace, differentiate, generate, load: the compile, without running), the generated module's lines and bytes,
the peak of memory allocated during one call of the compiled function (tracemalloc, which
numpy reports its arrays to), and the median time of a call. The goal: 1000 steps compile
within 3x of 10 steps.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import tracemalloc

import numpy as np

os.environ.setdefault("SYMGRAD_CACHE_DIR", tempfile.mkdtemp(prefix="symgrad-bench-"))
import symgrad as sg  # noqa: E402

BATCH, INPUT, HIDDEN = 32, 16, 64
CHECKPOINT = {10: 5, 100: 10, 1000: 25}


def make_loss(style: str, steps: int):
    every = CHECKPOINT[steps] if style == "checkpointed" else None

    def rnn_loss(W, U, xs):
        def cell(h, x):
            h = np.tanh(h @ W + x @ U)
            return h, np.sum(h * h)

        if style == "unrolled":
            h, total = np.zeros((BATCH, HIDDEN)), 0.0
            for t in range(steps):
                h, energy = cell(h, xs[t])
                total = total + energy
            return total
        _, energies = sg.scan(cell, np.zeros((BATCH, HIDDEN)), xs, checkpoint_every=every)
        return np.sum(energies)

    rnn_loss.__name__ = f"rnn_{style}_{steps}"
    return rnn_loss


def measure(style: str, steps: int, rng: np.random.Generator) -> dict:
    W = rng.normal(size=(HIDDEN, HIDDEN)) * 0.1
    U = rng.normal(size=(INPUT, HIDDEN)) * 0.1
    xs = rng.normal(size=(steps, BATCH, INPUT))
    f = sg.value_and_grad(make_loss(style, steps), wrt=("W", "U"))
    start = time.perf_counter()
    source = f.lower(W, U, xs).source  # compiles (on an empty cache), does not run
    compile_s = time.perf_counter() - start
    f(W, U, xs)
    tracemalloc.start()
    f(W, U, xs)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        f(W, U, xs)
        times.append(time.perf_counter() - start)
    call_s = statistics.median(times)
    return {"style": style, "steps": steps, "compile_s": compile_s,
            "lines": len(source.splitlines()), "bytes": len(source.encode()),
            "peak_mib": peak / 2**20, "call_ms": 1e3 * call_s}


def main() -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unrolled", action="store_true", help="also the Python for loop")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    measure("scan", 3, rng)  # SymPy's and jinja2's imports are not part of any row
    styles = ["scan", "checkpointed"] + (["unrolled"] if args.unrolled else [])
    rows = [measure(style, steps, rng) for style in styles for steps in (10, 100, 1000)]
    print(f"{'style':<13}{'steps':>6}{'compile s':>11}{'lines':>7}{'bytes':>8}"
          f"{'peak MiB':>10}{'call ms':>9}")
    for r in rows:
        print(f"{r['style']:<13}{r['steps']:>6}{r['compile_s']:>11.3f}{r['lines']:>7}"
              f"{r['bytes']:>8}{r['peak_mib']:>10.2f}{r['call_ms']:>9.2f}")
    for style in styles:
        first, last = (next(r["compile_s"] for r in rows if (r["style"], r["steps"]) == (style, n))
                       for n in (10, 1000))
        print(f"{style}: compile at 1000 steps / at 10 steps = {last / first:.2f}x")
    return rows


if __name__ == "__main__":
    main()
