"""A loss over more data than one Dask worker may hold: time and peak memory per worker.

    python benchmarks/dask_scaling.py                      # 610 MiB of rows, 2 workers of 300 MB
    python benchmarks/dask_scaling.py --rows 2000000 --memory-limit 200MB

Starts a LocalCluster of two worker processes (one thread each) with a small `memory_limit`,
builds `X` (rows x features, float64) and labels `y` with `dask.array.random` chunk by chunk
on the workers (as reading them from storage would: no chunk is held after it is used), and
times `sg.value_and_grad` of an L2-regularised logistic regression and of a small MLP on them.
The same loss on the same numbers as numpy arrays, in one process holding all of them, is the
single-machine reference: its value and gradient are compared (rtol 1e-10) and its time and
peak memory are reported. The cluster time includes generating the chunks; `generate only`
is the time to generate and sum them, for comparison.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def logistic(w, X, y):
    z = X @ w
    return np.mean(np.logaddexp(0, z) - y * z) + 1e-3 * np.sum(w ** 2)


def mlp(params, X, y):
    h = np.tanh(X @ params["W1"] + params["b1"])
    z = h @ params["w2"]
    return np.mean(np.logaddexp(0, z) - y * z) + 1e-3 * np.sum(params["W1"] ** 2)


MODELS = {"logistic": logistic, "mlp": mlp}


def parameters(name: str, features: int):
    rng = np.random.default_rng(0)
    if name == "logistic":
        return rng.normal(size=features) * 0.1
    return {"W1": rng.normal(size=(features, 32)) * 0.1, "b1": np.zeros(32),
            "w2": rng.normal(size=32) * 0.1}


def data(rows: int, features: int, chunk_rows: int):
    import dask.array as da

    rng = da.random.RandomState(1)
    X = rng.standard_normal((rows, features), chunks=(chunk_rows, features))
    y = (X[:, 0] + 0.5 * rng.standard_normal(rows, chunks=chunk_rows) > 0).astype(np.float64)
    return X, y


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def single_machine(args) -> dict:
    """In this process: all rows as numpy arrays, then the same calls."""
    import dask

    import symgrad as sg

    X, y = data(args.rows, args.features, args.chunk_rows)
    X, y = dask.compute(X, y, scheduler="synchronous")
    out = {"data_mib": (X.nbytes + y.nbytes) / 2**20}
    for name in args.models:
        vg = sg.value_and_grad(MODELS[name])
        params = parameters(name, args.features)
        vg(params, X, y)  # compile (or load from the cache)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            value, grads = vg(params, X, y)
            times.append(time.perf_counter() - start)
        leaves = [grads] if isinstance(grads, np.ndarray) else [grads[k] for k in sorted(grads)]
        out[name] = {"seconds": min(times), "value": float(value),
                     "grads": [g.tolist() for g in leaves]}
    out["peak_rss_mib"] = peak_rss_mib()
    return out


def worker_peak() -> float:
    return peak_rss_mib()


def on_cluster(args) -> dict:
    import dask
    import distributed

    import symgrad as sg

    out = {}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  memory_limit=args.memory_limit,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        out["worker_rss_at_start_mib"] = sorted(client.run(worker_peak).values())
        X, y = data(args.rows, args.features, args.chunk_rows)
        start = time.perf_counter()
        dask.compute(X.sum(), y.sum())
        out["generate_only_seconds"] = time.perf_counter() - start
        for name in args.models:
            vg = sg.value_and_grad(MODELS[name])
            params = parameters(name, args.features)
            start = time.perf_counter()
            vg(params, X, y)
            first = time.perf_counter() - start
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                value, grads = vg(params, X, y)
                times.append(time.perf_counter() - start)
            leaves = [grads] if isinstance(grads, np.ndarray) else [grads[k] for k in sorted(grads)]
            out[name] = {"seconds": min(times), "first_call_seconds": first,
                         "value": float(value), "grads": [g.tolist() for g in leaves]}
        out["worker_peak_rss_mib"] = sorted(client.run(worker_peak).values())
    out["client_peak_rss_mib"] = peak_rss_mib()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--memory-limit", default="300MB")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="logistic,mlp")
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.models = args.models.split(",")
    if args.single:
        print(json.dumps(single_machine(args)))
        return
    alone = json.loads(subprocess.run(
        [sys.executable, __file__, "--single", *sys.argv[1:]], check=True,
        capture_output=True, text=True).stdout.splitlines()[-1])
    cluster = on_cluster(args)
    print(f"data: {args.rows:,} rows x {args.features} features, float64: "
          f"{alone['data_mib']:.0f} MiB in chunks of {args.chunk_rows:,} rows; "
          f"2 workers, memory_limit {args.memory_limit} each")
    print(f"generate only (cluster): {cluster['generate_only_seconds']:.2f} s; worker RSS at "
          f"start {', '.join(f'{m:.0f}' for m in cluster['worker_rss_at_start_mib'])} MiB")
    print(f"{'model':<10} {'single machine':>15} {'2 workers':>10} {'first call':>11}  check")
    for name in args.models:
        a, c = alone[name], cluster[name]
        ok = np.isclose(a["value"], c["value"], rtol=1e-10) and all(
            np.allclose(x, y, rtol=1e-10, atol=1e-14) for x, y in zip(a["grads"], c["grads"]))
        print(f"{name:<10} {a['seconds']:>13.2f} s {c['seconds']:>8.2f} s "
              f"{c['first_call_seconds']:>9.2f} s  {'same value and gradient' if ok else 'DIFFER'}")
        if not ok:
            sys.exit(1)
    print(f"peak RSS: single machine {alone['peak_rss_mib']:.0f} MiB; workers "
          f"{', '.join(f'{m:.0f}' for m in cluster['worker_peak_rss_mib'])} MiB; "
          f"client {cluster['client_peak_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
