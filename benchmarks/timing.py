"""Timing and memory helpers: adaptive inner loops, round-robin sampling,
medians, tracemalloc peaks, and formatting."""

from __future__ import annotations

import gc
import os
import signal
import statistics
import time
import tracemalloc
from contextlib import contextmanager
from typing import Callable


def time_loop(call: Callable[[], object], n: int) -> float:
    """Seconds per call for ``n`` back-to-back calls (GC paused, as timeit does)."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(n):
            call()
        return (time.perf_counter() - t0) / n
    finally:
        if gc_was_enabled:
            gc.enable()


def calibrate(call: Callable[[], object], min_sample_s: float) -> int:
    """Smallest inner loop count (1, 2, 5, 10, 20, 50, ...) whose sample takes
    at least ``min_sample_s``; W1 needs thousands, W4 needs one."""
    n = 1
    while True:
        for mult in (1, 2, 5):
            k = n * mult
            if time_loop(call, k) * k >= min_sample_s:
                return k
        n *= 10


def round_robin(calls: dict, loops: dict, repeats: int, switch_warmup_s: float = 0.2) -> dict:
    """Take ``repeats`` samples of every call, interleaved.

    Round r runs the systems in an order rotated by r, so slow drift (thermal,
    other processes, allocator state) and "who ran just before me" effects hit
    every system equally.

    Before each sample the same call runs, untimed, for ``switch_warmup_s``.
    On a small machine the thread pools of the system that ran just before
    are still spinning for a while (OpenBLAS spins ~0.1 s after its last
    call) and steal cores from the next system; measured on 2 cores this
    doubled some medians and gave IQRs of several hundred percent.

    Returns name -> list of seconds-per-call samples.
    """
    names = list(calls)
    samples = {name: [] for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            call, n = calls[name], loops[name]
            t_end = time.perf_counter() + switch_warmup_s
            while time.perf_counter() < t_end:
                time_loop(call, n)
            samples[name].append(time_loop(call, n))
    return samples


def median(xs):
    return statistics.median(xs)


def iqr_pct(xs) -> float:
    """Interquartile range as a percentage of the median (spread indicator)."""
    if len(xs) < 4:
        return float("nan")
    q = statistics.quantiles(xs, n=4)
    return 100.0 * (q[2] - q[0]) / statistics.median(xs)


def peak_traced_bytes(call: Callable[[], object]) -> int:
    """Peak bytes allocated through tracemalloc during one call, above what was
    live when the call started.

    Counts Python objects and numpy array buffers (numpy reports its data
    allocations to tracemalloc).  Inputs, allocated beforehand, are not counted;
    the returned value and gradients are.  Memory owned by torch's or XLA's own
    allocators is invisible to tracemalloc, which is why those systems are
    reported as n/a.
    """
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        out = call()
        _, peak = tracemalloc.get_traced_memory()
        del out
        return max(0, peak - base)
    finally:
        if not was_tracing:
            tracemalloc.stop()


class CpuMonitor:
    """How much of the machine's CPU *other* processes used while a block ran.

    Linux only (/proc/stat); ``other_share`` is None elsewhere.  Busy time of
    all CPUs (user, nice, system, irq, softirq, steal) minus this process's
    own CPU time (all threads, plus waited-for children), as a fraction of
    wall time x CPU count.  A few percent is background noise; more means
    the timings of that block are not trustworthy.
    """

    def __enter__(self):
        self._start = self._read()
        return self

    def __exit__(self, *exc):
        self._end = self._read()

    @staticmethod
    def _read():
        try:
            with open("/proc/stat") as fh:
                vals = [int(v) for v in fh.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        busy = (sum(vals[0:3]) + sum(vals[5:8])) / os.sysconf("SC_CLK_TCK")
        t = os.times()
        mine = t.user + t.system + t.children_user + t.children_system
        return busy, mine, time.perf_counter()

    @property
    def other_share(self):
        if self._start is None or self._end is None:
            return None
        (b0, m0, w0), (b1, m1, w1) = self._start, self._end
        capacity = (w1 - w0) * (os.cpu_count() or 1)
        return max(0.0, (b1 - b0) - (m1 - m0)) / capacity if capacity > 0 else None


def load_average():
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


class CapExceeded(Exception):
    pass


@contextmanager
def time_cap(seconds: float):
    """Raise CapExceeded in the main thread after ``seconds`` (SIGALRM).

    Only interrupts Python code, so a long native compile step is interrupted
    as soon as it returns to Python.  No-op where SIGALRM does not exist.
    """
    if not seconds or not hasattr(signal, "SIGALRM"):
        yield
        return

    def handler(signum, frame):
        raise CapExceeded(f"exceeded the {seconds:g} s cap")

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------

def fmt_time(s) -> str:
    if s is None or s != s:
        return "-"
    if s < 0:  # a difference of two timings (warm - baseline) can be negative
        return "-" + fmt_time(-s)
    if s < 1e-6:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_ratio(x) -> str:
    if x is None or x != x:
        return "-"
    return f"{x:.2f}x" if x < 100 else f"{x:.0f}x"


def fmt_bytes(n) -> str:
    if n is None:
        return "n/a"
    if n < 1024:
        return f"{n} B"
    if n < 1024 ** 2:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024 ** 2:.1f} MiB"


def table(headers, rows, align=None) -> str:
    """Plain-text table; ``align`` is a string of 'l'/'r' per column."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    align = align or "l" + "r" * (len(headers) - 1)

    def line(cells):
        out = []
        for c, w, a in zip(cells, widths, align):
            out.append(c.ljust(w) if a == "l" else c.rjust(w))
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep] + [line(r) for r in rows])
