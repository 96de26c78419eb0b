"""symgrad compile-time scaling: long elementwise chains and deep nesting.

Each case runs in its own child process (``python benchmarks/scaling.py
FAMILY N``) with an empty SYMGRAD_CACHE_DIR, under a wall-clock cap, so a case
that takes too long (or recurses too deep) is killed without affecting the
others.  The child reports:

* first_s   - ``value_and_grad(f, wrt="x")`` plus the first call: trace,
              differentiate, generate and load code, run once.  The child
              first compiles a one-op function, so symgrad's (and SymPy's)
              one-time start-up is not charged to the case;
* steady_s  - one more call (so first_s - steady_s ~ compile work);
* source    - ``len(fn.lower(x).source)``, the generated source size;
* error     - value and gradient error against a forward-mode (dual number)
              reference (max |err| / max |ref|).

Families:

* chain N   - N elementwise ops built in a Python loop, cycling
              ``x = np.sin(x)``, ``x = x * 1.0001``, ``x = x + 0.1``; then sum.
* nested N  - ``e = np.sin(e) * np.cos(e)`` nested N deep (3 ops per level,
              a DAG of 3N nodes but a tree of ~2^N if shared subexpressions
              were expanded).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

CHAIN_SIZES = [10, 100, 1_000, 10_000, 100_000]
NESTED_DEPTH = 30


def make_chain(n):
    def chain(x):
        for i in range(n):
            k = i % 3
            if k == 0:
                x = np.sin(x)
            elif k == 1:
                x = x * 1.0001
            else:
                x = x + 0.1
        return np.sum(x)
    return chain


def make_nested(depth):
    def nested(x):
        e = x
        for _ in range(depth):
            e = np.sin(e) * np.cos(e)
        return np.sum(e)
    return nested


def dual_chain(n, x):
    """Reference value and d(sum)/dx by forward-mode dual numbers."""
    v, d = x.copy(), np.ones_like(x)
    for i in range(n):
        k = i % 3
        if k == 0:
            v, d = np.sin(v), np.cos(v) * d
        elif k == 1:
            v, d = v * 1.0001, d * 1.0001
        else:
            v = v + 0.1
    return v.sum(), d


def dual_nested(depth, x):
    v, d = x.copy(), np.ones_like(x)
    for _ in range(depth):
        s, c = np.sin(v), np.cos(v)
        v, d = s * c, (c * c - s * s) * d
    return v.sum(), d


FAMILIES = {
    "chain": (make_chain, dual_chain, lambda n: n),
    "nested": (make_nested, dual_nested, lambda n: 3 * n),
}


def child(family: str, n: int) -> None:
    if not os.environ.get("SYMGRAD_CACHE_DIR"):     # run by hand: never touch the user's cache
        os.environ["SYMGRAD_CACHE_DIR"] = tempfile.mkdtemp(prefix="symgrad-scaling-")
        atexit.register(shutil.rmtree, os.environ["SYMGRAD_CACHE_DIR"], True)
    import symgrad as sg
    make, dual, _ = FAMILIES[family]
    x = np.linspace(0.1, 1.0, 1000)
    sg.value_and_grad(lambda v: np.sum(np.cos(v)), wrt=0)(x)     # one-time start-up
    f = make(n)
    t0 = time.perf_counter()
    fn = sg.value_and_grad(f, wrt="x")
    value, grad = fn(x)
    t1 = time.perf_counter()
    fn(x)
    t2 = time.perf_counter()
    try:
        source = len(fn.lower(x).source)
    except Exception as exc:               # API not there (yet): report, go on
        source = None
        print(f"lower() failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    ref_value, ref_grad = dual(n, x)
    value_err = abs(float(value) - ref_value) / max(abs(ref_value), 1e-300)
    # Long chains of sin shrink the gradient geometrically (|cos| < 1); past a
    # few thousand ops it underflows to exactly 0 and only the value and the
    # gradient's zeros can be compared.
    scale = float(np.max(np.abs(ref_grad)))
    grad_diff = float(np.max(np.abs(np.asarray(grad, dtype=np.float64) - ref_grad)))
    grad_err = grad_diff / scale if scale > 0 else grad_diff
    print(json.dumps({"first_s": t1 - t0, "steady_s": t2 - t1, "source": source,
                      "error": max(value_err, grad_err), "ref_grad_zero": scale == 0}))


def measure(family, n, cap_s, symgrad_parent):
    env = dict(os.environ)
    if symgrad_parent:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (symgrad_parent, env.get("PYTHONPATH")) if p)
    cache = tempfile.mkdtemp(prefix="symgrad-scaling-")
    env["SYMGRAD_CACHE_DIR"] = cache
    try:
        proc = subprocess.run([sys.executable, os.path.join(HERE, "scaling.py"), family, str(n)],
                              env=env, capture_output=True, text=True, timeout=cap_s)
    except subprocess.TimeoutExpired:
        return {"skipped": f"exceeded the {cap_s:g} s cap"}
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        return {"skipped": f"failed (exit {proc.returncode}): {tail[:150]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    child(sys.argv[1], int(sys.argv[2]))
