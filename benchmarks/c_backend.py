"""backend="c" figures for benchmarks/RESULTS.md, one command:

    python benchmarks/c_backend.py            # W4: cold compile, warm first gradient, bandwidth
    python benchmarks/c_backend.py W2/f64 W4/f64 ...   # side by side, best of N, interleaved

* cold compile: the first W4 value-and-gradient call with an empty cache (trace,
  differentiate, print C, run the C compiler, load), minus one warm call; where its time
  goes: symgrad's stage line (SYMGRAD_PROGRESS=1: the SymPy import is in `load`, where the
  C backend imports its printers) and the compiler's own time (compile and link);
* warm first gradient: a new process with the cache filled (ttfg.py's child: imports, data,
  the first gradient), median of three;
* bytes per second of a W4 call (x and y read, both gradients written: 4 arrays of 4M
  doubles) against the machine's stream bandwidth, measured here as numpy copying 64 MiB
  (read + write) -- what moving the bytes costs at the least.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.dirname(HERE))

import numpy as np  # noqa: E402

import systems  # noqa: E402
import ttfg  # noqa: E402
import workloads  # noqa: E402

OTHERS = ("torch eager", "torch.compile", "jax.jit")


def best_of(call, repeats=7):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def stream_bandwidth() -> float:
    source = np.ones(8 << 20)  # 64 MiB
    target = np.empty_like(source)
    seconds = best_of(lambda: np.copyto(target, source))
    return 2 * source.nbytes / seconds


def main() -> None:
    cache = tempfile.mkdtemp(prefix="symgrad-c-bench-")
    os.environ["SYMGRAD_CACHE_DIR"] = cache
    import symgrad as sg

    from symgrad.backends.c import backend as c_backend

    wl = workloads.BY_ID["W4/f64"]
    args = tuple(wl.args().values())
    f = sg.value_and_grad(wl.numpy_fn, wrt=tuple(wl.wrt), backend="c")
    compiler = []
    compile_library = c_backend.compile_library

    def timed(*arguments, **options):
        begin = time.perf_counter()
        compile_library(*arguments, **options)
        compiler.append((time.perf_counter() - begin, os.path.getsize(arguments[0])))

    c_backend.compile_library = timed
    os.environ["SYMGRAD_PROGRESS"] = "1"
    start = time.perf_counter()
    f(*args)
    first = time.perf_counter() - start
    os.environ.pop("SYMGRAD_PROGRESS")
    c_backend.compile_library = compile_library
    call = best_of(lambda: f(*args))
    moved = 4 * args[0].nbytes
    bandwidth = stream_bandwidth()
    parent = os.path.dirname(os.path.dirname(os.path.abspath(sg.__file__)))
    warm = ttfg.measure("W4/f64", parent, 3, 300.0, system="symgrad-c")
    shutil.rmtree(cache, ignore_errors=True)
    print(f"W4/f64 backend='c': cold compile {first - call:.2f} s (first call {first:.2f} s), "
          f"call {call * 1e3:.1f} ms; the C compiler {compiler[0][0]:.2f} s on "
          f"{compiler[0][1]} bytes of C")
    print(f"  warm first gradient in a new process: {warm['warm_s']:.2f} s "
          f"(imports {warm['warm_import_s']:.2f} s, gradient {warm['warm_grad_s']:.3f} s); "
          f"numpy-only baseline process {warm['baseline_s']:.2f} s")
    print(f"  {moved / call / 1e9:.1f} GB/s moved ({moved >> 20} MiB a call) against "
          f"{bandwidth / 1e9:.1f} GB/s stream bandwidth (numpy copy): "
          f"{moved / call / bandwidth:.0%} of it")


def side_by_side(workload_id: str) -> str:
    """symgrad's two backends and the other systems on one workload: best of N samples, three
    interleaved rounds (robust on a busy machine, where medians are not)."""
    import symgrad as sg

    wl = workloads.BY_ID[workload_id]
    args = wl.args()
    values = tuple(args.values())
    calls = {}
    for backend in ("numpy", "c"):
        f = sg.value_and_grad(wl.numpy_fn, wrt=tuple(wl.wrt), backend=backend)
        calls[f"symgrad {backend}"] = (lambda f: lambda: f(*values))(f)
    for cls in systems.ALL:
        if cls.name in OTHERS:
            system = cls()
            try:
                system.load()
            except systems.Skip:
                continue
            calls[cls.name] = system.build(wl, args)
    for call in calls.values():
        call()
        call()
    samples = 200 if workload_id.startswith("W1") else 10
    best = {name: min(best_of(call, samples) for _ in range(3)) for name, call in calls.items()}
    base = best["symgrad c"]
    return f"{workload_id}: " + ", ".join(f"{name} {t * 1e3:.3f} ms ({t / base:.2f}x of c)"
                                          for name, t in best.items())


if __name__ == "__main__":
    if len(sys.argv) > 1:
        for wid in sys.argv[1:]:
            print(side_by_side(wid))
    else:
        main()
