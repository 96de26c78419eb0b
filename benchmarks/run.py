"""symgrad benchmark suite: one command, every workload, every system.

    python benchmarks/run.py              # full run
    python benchmarks/run.py --quick      # short run (fewer samples, smaller scaling)
    python benchmarks/run.py --only W2    # W2/f64 and W2/f32 (timing + ttfg)
    python benchmarks/run.py --only scaling

See benchmarks/README.md for what every column means.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)


def limit_threads_from_argv(argv):
    """``--threads N`` must act before numpy (OpenBLAS), torch (OpenMP) or
    XLA start their thread pools, i.e. before the imports below; argparse
    validates the same option later.  Children inherit the environment."""
    n = None
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            n = argv[i + 1]
        elif a.startswith("--threads="):
            n = a.split("=", 1)[1]
    if n is None or not n.isdigit() or int(n) < 1:
        return
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "SYMGRAD_THREADS"):
        os.environ[var] = n
    os.environ["XLA_FLAGS"] = " ".join(filter(None, [
        os.environ.get("XLA_FLAGS"),
        f"--xla_cpu_multi_thread_eigen={'false' if n == '1' else 'true'}",
        f"intra_op_parallelism_threads={n}"]))


limit_threads_from_argv(sys.argv[1:])

import numpy as np  # noqa: E402

import check  # noqa: E402
import scaling  # noqa: E402
import systems  # noqa: E402
import timing  # noqa: E402
import ttfg  # noqa: E402
import workloads  # noqa: E402
from timing import fmt_bytes, fmt_ratio, fmt_time  # noqa: E402

SECTIONS = ("timing", "ttfg", "scaling")
BASELINE = "numpy (hand)"
SYMGRAD = "symgrad"
NOISY_SHARE = 0.05      # other processes' share of the CPU above which we warn
SYSTEM_KEYS = {"numpy": systems.HandNumpy, "symgrad": systems.Symgrad, "c": systems.SymgradC,
               "torch": systems.TorchEager, "compile": systems.TorchCompile,
               "jax": systems.JaxJit}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="short run: 5 samples, scaling up to 1,000 ops, shorter caps")
    p.add_argument("--only", action="append", default=[], metavar="TOKEN",
                   help="workload id prefix (W1, W2, W2/f32, ...) and/or section "
                        f"({', '.join(SECTIONS)}); repeatable or comma-separated. "
                        "Workload tokens alone run the timing and ttfg sections.")
    p.add_argument("--systems", default=None,
                   help="comma-separated subset of: numpy,symgrad,torch,compile,jax")
    p.add_argument("--repeats", type=int, default=None, help="samples per system (default 25, quick 5)")
    p.add_argument("--min-sample-ms", type=float, default=5.0,
                   help="inner loop grows until one sample takes at least this long")
    p.add_argument("--switch-warmup-ms", type=float, default=200.0,
                   help="untimed run of the same system before each sample, so the "
                        "previous system's spinning thread pools have gone idle")
    p.add_argument("--compile-cap", type=float, default=None,
                   help="cap in s on building + first call of any system, torch.compile "
                        "included (default 300, quick 150)")
    p.add_argument("--scaling-cap", type=float, default=None,
                   help="cap in s per compile-scaling case (default 600, quick 30)")
    p.add_argument("--scaling-max", type=int, default=None,
                   help="largest chain size (default 100000, quick 1000)")
    p.add_argument("--ttfg-runs", type=int, default=3, help="warm/baseline fresh processes per workload")
    p.add_argument("--torch-warm-cache", action="store_true",
                   help="let torch.compile use its default on-disk inductor cache "
                        "(default: a fresh empty one, so its first call is a cold compile)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="limit every library to N threads (OpenBLAS, MKL, torch/OpenMP, XLA); "
                        "default: each library's own default. --threads 1 is far less "
                        "sensitive to other processes competing for the CPU")
    p.add_argument("--json", metavar="PATH", help="also write all raw results as JSON")
    a = p.parse_args(argv)
    if a.systems:
        bad = [k for k in a.systems.split(",") if k.strip() and k.strip() not in SYSTEM_KEYS]
        if bad:
            p.error(f"--systems: unknown {bad}; choose from {', '.join(SYSTEM_KEYS)}")

    tokens = [t.strip() for chunk in a.only for t in chunk.split(",") if t.strip()]
    a.sections = [s for s in SECTIONS if s in [t.lower() for t in tokens]]
    wl_tokens = [t for t in tokens if t.lower() not in SECTIONS]
    if not a.sections:
        a.sections = ["timing", "ttfg"] if wl_tokens else list(SECTIONS)
    a.workloads = workloads.select(wl_tokens)
    if wl_tokens and not a.workloads:
        p.error(f"--only {wl_tokens} matches no workload; ids: "
                + ", ".join(w.id for w in workloads.WORKLOADS))

    a.repeats = a.repeats or (5 if a.quick else 25)
    a.compile_cap = a.compile_cap or (150.0 if a.quick else 300.0)
    a.scaling_cap = a.scaling_cap or (30.0 if a.quick else 600.0)
    a.scaling_max = a.scaling_max or (1_000 if a.quick else 100_000)
    return a


# ---------------------------------------------------------------------------
# environment
# ---------------------------------------------------------------------------

def prepare_environment(opts):
    """Fresh caches so first-call times are cold compiles; set before any
    framework (or symgrad) is imported."""
    tmp = tempfile.mkdtemp(prefix="symgrad-bench-")
    os.environ["SYMGRAD_CACHE_DIR"] = os.path.join(tmp, "symgrad-cache")
    if not opts.torch_warm_cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(tmp, "inductor-cache")
    prefer_checkout()
    return tmp


def prefer_checkout():
    """Benchmark the symgrad of this checkout when there is one (it runs from
    source), ahead of an installed copy; an explicit PYTHONPATH still wins.
    The header prints which symgrad was imported."""
    if not os.path.isdir(os.path.join(REPO, "symgrad")):
        return
    pp = {os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p}
    after = [i for i, p in enumerate(sys.path) if os.path.abspath(p or ".") in pp]
    sys.path.insert(max(after, default=0) + 1, REPO)


def load_systems(opts):
    wanted = None
    if opts.systems:
        wanted = {SYSTEM_KEYS[k.strip()] for k in opts.systems.split(",") if k.strip()}
        wanted.add(systems.HandNumpy)     # the baseline every ratio needs
    loaded, skipped = [], {}
    for cls in systems.ALL:
        if wanted is not None and cls not in wanted:
            continue
        s = cls()
        try:
            s.load()
            loaded.append(s)
        except systems.Skip as exc:
            skipped[s.name] = str(exc)
    return loaded, skipped


def git_commit():
    try:
        out = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "?"
    except Exception:
        return "?"


def blas_name():
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version', '')}".strip()
    except Exception:
        return "?"


def print_header(opts, loaded, skipped):
    print("symgrad benchmarks")
    print(f"  date      {datetime.datetime.now().isoformat(timespec='seconds')}"
          f"   commit {git_commit()}")
    print(f"  machine   {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"  python    {platform.python_version()}; numpy {np.__version__} ({blas_name()})")
    load = timing.load_average()
    if load is not None:
        warn = "  <- busy machine: expect noisy timings" if load > 0.5 else ""
        print(f"  load      {load:.2f} (1-minute load average at start){warn}")
    for s in loaded:
        d = s.describe()
        if d:
            print(f"  {s.name:<14}{d}")
    for name, why in skipped.items():
        print(f"  {name:<14}skipped: {why}")
    threads = f"{opts.threads} thread(s) per library" if opts.threads else "default threads"
    print(f"  threads   {threads}")
    print(f"  mode      {'quick' if opts.quick else 'full'}: {opts.repeats} samples per system, "
          f">= {opts.min_sample_ms:g} ms each, round-robin, {opts.switch_warmup_ms:g} ms "
          f"warm-up before each; compile cap {opts.compile_cap:g} s")


def warm_up(loaded, skipped, opts):
    """Run the tiny WARMUP problem once per system; report one-time start-up.
    A system that fails here is dropped (with the reason) for the whole run."""
    times = {}
    for s in list(loaded):
        try:
            with timing.time_cap(opts.compile_cap):
                t0 = time.perf_counter()
                s.build(workloads.WARMUP, workloads.WARMUP.args())()
                times[s.name] = time.perf_counter() - t0
        except Exception as exc:
            loaded.remove(s)
            skipped[s.name] = f"failed on a trivial warm-up function: {systems.describe_error(exc)}"
    print("  start-up  one-time cost of the first gradient in this process (tiny function): "
          + ", ".join(f"{k} {fmt_time(v)}" for k, v in times.items()))
    return times


# ---------------------------------------------------------------------------
# one workload
# ---------------------------------------------------------------------------

def run_workload(wl, loaded, skipped, opts):
    args = wl.args()
    in_bytes = sum(np.asarray(a).nbytes for a in args.values())
    print(f"== {wl.id}  {wl.title}  [{fmt_bytes(in_bytes)} of inputs]")
    print(f"   {wl.shapes}")

    ref_name, ref_value, ref_grads = systems.reference(wl, args)
    res = {"id": wl.id, "systems": {}}
    calls = {}
    notes = []
    tol = check.tolerance(wl.dtype)
    check_bits = []

    for s in loaded:
        r = res["systems"][s.name] = {}
        try:
            with timing.time_cap(opts.compile_cap):
                t0 = time.perf_counter()
                call = s.build(wl, args)
                out = call()
                r["first_call_s"] = time.perf_counter() - t0
            value, grads = s.to_numpy(out)
        except Exception as exc:
            r["skipped"] = systems.describe_error(exc)
            notes.append(f"{s.name}: skipped: {r['skipped']}")
            continue
        ok, err, problems, dnotes = check.compare(wl, args, value, grads, ref_value, ref_grads)
        r["max_error"] = err
        notes += [f"{s.name}: note: {n}" for n in dnotes]
        if not ok:
            r["mismatch"] = problems
            print(f"   MISMATCH {wl.id} {s.name}: " + "; ".join(problems)
                  + "  -> not timed")
            continue
        check_bits.append(f"{s.name} {err:.0e}")
        calls[s.name] = call
    for name, why in skipped.items():
        res["systems"][name] = {"skipped": why}
        notes.append(f"{name}: skipped: {why}")

    print(f"   check vs {ref_name} (max |err| / max |ref|, tol {tol:.0e}): "
          + (", ".join(check_bits) or "nothing passed"))

    # warm-up, then calibrate inner loops and take interleaved samples
    loops = {}
    for name, call in calls.items():
        call()
        loops[name] = timing.calibrate(call, opts.min_sample_ms / 1e3)
    with timing.CpuMonitor() as mon:
        samples = timing.round_robin(calls, loops, opts.repeats, opts.switch_warmup_ms / 1e3)
    res["other_cpu_share"] = mon.other_share
    if mon.other_share is not None and mon.other_share > NOISY_SHARE:
        notes.insert(0, f"WARNING: other processes used {100 * mon.other_share:.0f}% of the "
                        "machine's CPU while this workload was timed; these numbers are not "
                        "trustworthy (rerun on a quiet machine)")
    for name, xs in samples.items():
        r = res["systems"][name]
        r.update(median_s=timing.median(xs), iqr_pct=timing.iqr_pct(xs),
                 loops=loops[name], samples_s=xs)

    # peak memory of one gradient call (numpy-based systems only)
    for s in loaded:
        if s.name in calls:
            res["systems"][s.name]["peak_bytes"] = (
                timing.peak_traced_bytes(calls[s.name]) if s.traced_memory else None)

    print_workload_table(res, loaded, skipped)
    for n in notes:
        print(f"   {n}")
    print()
    return res


def _ratio(res, name, base):
    a = res["systems"].get(name, {}).get("median_s")
    b = res["systems"].get(base, {}).get("median_s")
    return a / b if a and b else None


def print_workload_table(res, loaded, skipped):
    rows = []
    present = {s.name for s in loaded} | set(skipped)
    order = [c.name for c in systems.ALL if c.name in present]
    for name in order:
        r = res["systems"].get(name, {})
        if "median_s" not in r:
            status = "MISMATCH" if "mismatch" in r else "skipped"
            rows.append([name, status, "", "", "", fmt_time(r.get("first_call_s")), ""])
            continue
        rows.append([
            name,
            fmt_time(r["median_s"]),
            f"±{r['iqr_pct']:.0f}%" if r["iqr_pct"] == r["iqr_pct"] else "-",
            fmt_ratio(_ratio(res, name, BASELINE)),
            fmt_ratio(_ratio(res, name, SYMGRAD)),
            fmt_time(r.get("first_call_s")),
            fmt_bytes(r.get("peak_bytes")),
        ])
    text = timing.table(["system", "median", "iqr", "vs numpy", "vs symgrad",
                         "first call", "peak mem"], rows)
    print("\n".join("   " + line for line in text.splitlines()))


def print_summary(results, loaded, skipped):
    present = {s.name for s in loaded} | set(skipped)
    names = [c.name for c in systems.ALL if c.name in present]
    rows = []
    for res in results:
        row = [res["id"]]
        for name in names:
            r = res["systems"].get(name, {})
            if "median_s" in r:
                row.append(f"{fmt_time(r['median_s'])} ({fmt_ratio(_ratio(res, name, BASELINE))})")
            else:
                row.append("MISMATCH" if "mismatch" in r else "skipped")
        rows.append(row)
    print("== summary: median time per value-and-gradient call (ratio vs numpy (hand))")
    print("\n".join("   " + line for line in timing.table(["workload"] + names, rows).splitlines()))
    print()


# ---------------------------------------------------------------------------
# fresh-process time to first gradient, compile scaling
# ---------------------------------------------------------------------------

def noisy_note(notes, label, mon):
    if mon.other_share is not None and mon.other_share > NOISY_SHARE:
        notes.append(f"WARNING: {label}: other processes used {100 * mon.other_share:.0f}% "
                     "of the machine's CPU meanwhile; not trustworthy")


def symgrad_parent_dir(loaded, skipped):
    """The directory holding the symgrad package the run loaded, or None (said as a skip)."""
    if SYMGRAD not in skipped:
        for s in loaded:
            if s.name == SYMGRAD:
                return os.path.dirname(os.path.dirname(os.path.abspath(s.sg.__file__)))
    print(f"   skipped: symgrad: {skipped.get(SYMGRAD, 'not selected')}")
    print()
    return None


def run_ttfg(opts, loaded, skipped):
    print("== time to first gradient in a fresh process (symgrad disk cache)")
    parent = symgrad_parent_dir(loaded, skipped)
    if parent is None:
        return {}
    rows, out, notes = [], {}, []
    for wl in opts.workloads:
        try:
            with timing.CpuMonitor() as mon:
                m = ttfg.measure(wl.id, parent, opts.ttfg_runs, timeout=opts.compile_cap)
            noisy_note(notes, wl.id, mon)
        except Exception as exc:
            rows.append([wl.id, "skipped"] + [""] * 6)
            notes.append(f"{wl.id}: skipped: {systems.describe_error(exc)}")
            continue
        out[wl.id] = m
        rows.append([wl.id, fmt_time(m["cold_s"]), fmt_time(m["warm_s"]),
                     fmt_time(m["baseline_s"]), fmt_time(m["warm_s"] - m["baseline_s"]),
                     fmt_time(m["warm_import_s"]), fmt_time(m["warm_grad_s"]),
                     fmt_bytes(m["cache_bytes"])])
    print("\n".join("   " + line for line in timing.table(
        ["workload", "cold", "warm", "numpy baseline", "warm - baseline",
         "warm: import symgrad", "warm: first call", "cache size"], rows).splitlines()))
    for n in notes:
        print(f"   {n}")
    print()
    return out


def run_scaling(opts, loaded, skipped):
    print("== symgrad compile-time scaling (each case: fresh process, empty cache)")
    parent = symgrad_parent_dir(loaded, skipped)
    if parent is None:
        return {}
    cases = [("chain", n) for n in scaling.CHAIN_SIZES if n <= opts.scaling_max]
    cases.append(("nested", scaling.NESTED_DEPTH))
    rows, out, notes = [], {}, []
    prev = {}
    failed_family = {}
    for family, n in cases:
        ops = scaling.FAMILIES[family][2](n)
        label = f"{family} {n:,}"
        if family in failed_family:
            m = {"skipped": f"not run: {failed_family[family]}"}
        else:
            with timing.CpuMonitor() as mon:
                m = scaling.measure(family, n, opts.scaling_cap, parent)
            noisy_note(notes, label, mon)
        out[label] = m
        if "skipped" in m:
            failed_family.setdefault(family, "a smaller case was skipped")
            rows.append([label, f"{ops:,}", m["skipped"]] + [""] * 7)
            continue
        t = m["first_s"]
        growth = marginal = ""
        if family in prev:
            p_ops, p_t = prev[family]
            growth = f"x{ops / p_ops:g} ops: x{t / p_t:.1f}"
            marginal = f"{(t - p_t) / (ops - p_ops) * 1e6:.0f} us"
        prev[family] = (ops, t)
        src = m.get("source")
        err = m["error"]
        rows.append([label, f"{ops:,}", fmt_time(t), fmt_time(m["steady_s"]),
                     f"{t / ops * 1e6:.0f} us", marginal, growth,
                     f"{src:,}" if src is not None else "n/a",
                     f"{src / ops:.0f}" if src is not None else "n/a",
                     f"{err:.0e}" + ("" if err <= 1e-8 else " MISMATCH")
                     + (" (grad underflows to 0)" if m.get("ref_grad_zero") else "")])
    print("\n".join("   " + line for line in timing.table(
        ["case", "ops", "first call", "steady call", "per op", "marginal/op",
         "time growth", "source chars", "chars/op", "grad err"], rows).splitlines()))
    print("   per op = first call / ops; marginal/op = extra first-call time per extra op "
          "since the previous size (constant if compile time is linear); "
          "time growth: x10 ops -> x10 time is linear")
    for n in notes:
        print(f"   {n}")
    print()
    return out


def main(argv=None):
    opts = parse_args(argv)
    tmp = prepare_environment(opts)
    try:
        run(opts)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(opts):
    loaded, skipped = load_systems(opts)
    print_header(opts, loaded, skipped)
    if "timing" not in opts.sections:
        print()

    report = {"argv": sys.argv[1:], "skipped_systems": skipped, "workloads": []}
    if "timing" in opts.sections:
        report["startup_s"] = warm_up(loaded, skipped, opts)
        print()
        for wl in opts.workloads:
            report["workloads"].append(run_workload(wl, loaded, skipped, opts))
        if len(report["workloads"]) > 1:
            print_summary(report["workloads"], loaded, skipped)
    if "ttfg" in opts.sections:
        report["ttfg"] = run_ttfg(opts, loaded, skipped)
    if "scaling" in opts.sections:
        report["scaling"] = run_scaling(opts, loaded, skipped)

    if opts.json:
        with open(opts.json, "w") as fh:
            json.dump(report, fh, indent=1, default=str)
        print(f"raw results written to {opts.json}")


if __name__ == "__main__":
    main()
