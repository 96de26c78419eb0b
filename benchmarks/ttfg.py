"""Time to first gradient in a fresh process (symgrad's disk cache).

Parent side (``measure``): for one workload,

* cold:     fresh, empty SYMGRAD_CACHE_DIR; the run also fills the cache;
* warm:     new processes reusing that directory (median of a few);
* baseline: the same child with the hand-written numpy gradient instead of
            symgrad (interpreter + numpy import + data + one gradient), so
            ``warm - baseline`` is what symgrad itself adds.

Time is measured from just before the parent spawns the child to the moment
the child has the gradient in hand (wall clock, ``time.time()`` on both
sides), so interpreter start-up and imports are included and process
teardown is not.

Child side: ``python benchmarks/ttfg.py SYSTEM WORKLOAD_ID`` prints one JSON
line; only numpy, the workloads module and (for SYSTEM=symgrad) symgrad are
imported.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def child(system: str, wl_id: str) -> None:
    t_start = time.time()
    import numpy as np                     # noqa: F401  (part of what users pay)
    import workloads
    t_numpy = time.time()
    wl = workloads.BY_ID[wl_id]
    if system in ("symgrad", "symgrad-c"):
        import symgrad as sg
        t_import = time.time()
        args = wl.args()
        t_data = time.time()
        fn = sg.value_and_grad(wl.numpy_fn, wrt=tuple(wl.wrt),
                               backend="c" if system == "symgrad-c" else "numpy")
        value, grads = fn(*args.values())
    else:
        t_import = time.time()
        args = wl.args()
        t_data = time.time()
        value, grads = wl.hand_vg(*args.values())
    t_done = time.time()
    print(json.dumps({
        "start": t_start, "done": t_done,
        "numpy_import_s": t_numpy - t_start,
        "import_s": t_import - t_numpy,
        "data_s": t_data - t_import,
        "grad_s": t_done - t_data,
        "value": float(value),
    }))


def _spawn(system, wl_id, env, timeout):
    t0 = time.time()
    try:
        proc = subprocess.run([sys.executable, os.path.join(HERE, "ttfg.py"), system, wl_id],
                              env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{system} child exceeded the {timeout:g} s cap") from None
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        raise RuntimeError(f"child exited {proc.returncode}: {tail}")
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    rec["ttfg_s"] = rec["done"] - t0
    return rec


def measure(wl_id: str, symgrad_parent: str | None, warm_runs: int, timeout: float,
            system: str = "symgrad") -> dict:
    """Cold, warm and baseline time-to-first-gradient for one workload."""
    env = dict(os.environ)
    if symgrad_parent:                     # import the same symgrad as the parent
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (symgrad_parent, env.get("PYTHONPATH")) if p)
    cache = tempfile.mkdtemp(prefix="symgrad-ttfg-")
    env["SYMGRAD_CACHE_DIR"] = cache
    try:
        cold = _spawn(system, wl_id, env, timeout)
        cache_bytes = sum(os.path.getsize(os.path.join(d, f))
                          for d, _, fs in os.walk(cache) for f in fs)
        warm = [_spawn(system, wl_id, env, timeout) for _ in range(warm_runs)]
        base = [_spawn("numpy", wl_id, env, timeout) for _ in range(warm_runs)]
    finally:
        shutil.rmtree(cache, ignore_errors=True)

    def med(recs, key):
        xs = sorted(r[key] for r in recs)
        return xs[len(xs) // 2]

    return {
        "cold_s": cold["ttfg_s"],
        "cold_grad_s": cold["grad_s"],
        "warm_s": med(warm, "ttfg_s"),
        "warm_import_s": med(warm, "import_s"),
        "warm_grad_s": med(warm, "grad_s"),
        "baseline_s": med(base, "ttfg_s"),
        "cache_bytes": cache_bytes,
    }


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    child(sys.argv[1], sys.argv[2])
