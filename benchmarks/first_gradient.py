"""Time to first gradient in a fresh process: cold cache vs warm cache.

    PYTHONPATH=. python benchmarks/first_gradient.py [--runs 5]

Each run starts a new Python process that imports numpy and symgrad and computes the first
`value_and_grad` of a small logistic-regression loss. "cold" runs get an empty cache directory
(trace, SymPy, simplify, render, write); "warm" runs reuse a filled one (trace, key, load: no
SymPy, no jinja2). Printed: the median wall time of the whole process (interpreter start to
exit, as a user waits for it), and inside the process the time of `import symgrad` and of the
first call, next to a process that only imports numpy (the floor).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

CHILD = textwrap.dedent("""
    import json, sys, time
    start = time.perf_counter()
    import numpy as np
    after_numpy = time.perf_counter()
    import symgrad as sg
    after_symgrad = time.perf_counter()

    def loss(x, y, w, b):
        z = x @ w + b
        return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))

    rng = np.random.default_rng(0)
    args = rng.normal(size=(8, 5)), rng.random(3), rng.normal(size=(5, 3)), rng.normal(size=3)
    value, grads = sg.value_and_grad(loss, wrt=("w", "b"))(*args)
    done = time.perf_counter()
    print(json.dumps({"import numpy": after_numpy - start,
                      "import symgrad": after_symgrad - after_numpy,
                      "first call": done - after_symgrad,
                      "sympy imported": "sympy" in sys.modules,
                      "jinja2 imported": "jinja2" in sys.modules}))
""")
ROOT = Path(__file__).resolve().parent.parent


def run_child(script: Path, cache: Path) -> dict:
    env = {**os.environ, "SYMGRAD_CACHE_DIR": str(cache), "SYMGRAD_PROGRESS": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                       os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            env=env, check=True)
    wall = time.perf_counter() - start
    return {**json.loads(result.stdout), "process": wall}


def numpy_floor() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import numpy"], check=True)
    return time.perf_counter() - start


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="symgrad-ttfg-") as scratch:
        script = Path(scratch) / "first_gradient_child.py"
        script.write_text(CHILD)
        cold, warm = [], []
        for run in range(options.runs):
            cache = Path(scratch) / f"cache{run}"
            cold.append(run_child(script, cache))  # empty: compiles and writes
            warm.append(run_child(script, cache))  # filled by the cold run: loads
        floor = statistics.median(numpy_floor() for _ in range(options.runs))
    results = {}
    print(f"{'':24s}{'process':>10s}{'import symgrad':>16s}{'first call':>12s}   SymPy/jinja2")
    for name, runs in (("cold cache", cold), ("warm cache", warm)):
        row = {k: statistics.median(r[k] for r in runs)
               for k in ("process", "import symgrad", "first call")}
        results[name] = row
        imported = f"{runs[-1]['sympy imported']}/{runs[-1]['jinja2 imported']}"
        print(f"{name:24s}{row['process'] * 1e3:8.0f}ms{row['import symgrad'] * 1e3:14.0f}ms"
              f"{row['first call'] * 1e3:10.1f}ms   {imported}")
    print(f"{'python -c import numpy':24s}{floor * 1e3:8.0f}ms")
    results["numpy only"] = {"process": floor}
    return results


if __name__ == "__main__":
    main()
