"""Many processes and threads on one cache: no crash, no corruption, nothing half-written loads."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import numpy as np

import symgrad as sg
from symgrad.cache import CacheWarning, DiskCache, sha256_text

REPO = Path(__file__).resolve().parent.parent

RACER = textwrap.dedent("""
    import sys, warnings
    import numpy as np
    import symgrad as sg

    def loss(x, w):
        return np.sum(np.logaddexp(0, x @ w) * np.cos(w[0]))

    warnings.simplefilter("error")  # any cache warning (a damaged entry seen) fails the racer
    x, w = np.linspace(-1, 1, 6).reshape(2, 3), np.linspace(-2, 2, 12).reshape(3, 4)
    value, grad = sg.value_and_grad(loss, wrt="w")(x, w)
    print(repr(float(value)), repr(float(np.sum(grad * np.arange(12).reshape(3, 4)))))
""")

# Compiles an endless stream of distinct functions (a new closure constant each time), so that
# a SIGKILL lands at every stage: tracing, SymPy, rendering, writing, renaming.
WRITER = textwrap.dedent("""
    import numpy as np
    import symgrad as sg

    k = 0
    while True:
        k += 1
        scale = float(k)

        def f(x):
            return np.sum(np.sin(x * scale) ** 2)

        sg.grad(f)(np.ones(3))
""")


def _env(cache: Path) -> dict:
    return {**os.environ, "SYMGRAD_CACHE_DIR": str(cache), "SYMGRAD_PROGRESS": "0",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                        os.environ.get("PYTHONPATH")]))}


def assert_every_entry_intact(cache_dir: Path) -> int:
    """Every entry with metadata has the source it describes; temporaries never look like
    entries. Returns the number of entries."""
    cache = DiskCache(cache_dir)
    entries = 0
    for meta_path in cache_dir.glob("*.json"):
        key = meta_path.stem
        meta = json.loads(meta_path.read_text())
        assert meta["key"] == key
        assert meta["source_sha256"] == sha256_text((cache_dir / f"{key}.py").read_text())
        with warnings.catch_warnings():
            warnings.simplefilter("error", CacheWarning)
            assert cache.load(key) is not None
        entries += 1
    return entries


def test_sixteen_processes_racing_on_a_cold_cache(tmp_path):
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    cache = tmp_path / "cache"
    racers = [subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=_env(cache))
              for _ in range(16)]
    results = [racer.communicate(timeout=240) for racer in racers]
    for racer, (out, err) in zip(racers, results):
        assert racer.returncode == 0, err
    assert len({out for out, _ in results}) == 1  # every process computed the same numbers
    assert assert_every_entry_intact(cache) == 1
    assert not list(cache.glob(".*.tmp"))  # every writer cleaned up after itself
    # and the entry they raced to write serves a 17th process
    out, _ = results[0]
    warm = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=_env(cache), timeout=120)
    assert warm.returncode == 0 and warm.stdout == out


def test_killed_writers_never_leave_an_entry_that_loads(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    cache = tmp_path / "cache"
    rng = random.Random(1234)
    for _ in range(6):
        writer = subprocess.Popen([sys.executable, str(script)], env=_env(cache),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.4, 1.6))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert_every_entry_intact(cache)  # whatever the killed writers left is whole or absent
    # On a slow machine every writer may die before its first entry: one more writes over
    # whatever they left, and is killed once it has written one.
    writer = subprocess.Popen([sys.executable, str(script)], env=_env(cache),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not list(cache.glob("*.json")) and time.monotonic() < deadline \
            and writer.poll() is None:
        time.sleep(0.2)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert assert_every_entry_intact(cache) >= 1
    sources = {p.stem for p in cache.glob("*.py")}
    metas = {p.stem for p in cache.glob("*.json")}
    assert metas <= sources  # metadata is written last: never without its source
    # A fresh process compiling the same functions gets the right numbers from this cache.
    check = textwrap.dedent("""
        import warnings
        import numpy as np
        import symgrad as sg
        warnings.simplefilter("error")
        for k in range(1, 6):
            scale = float(k)
            def f(x):
                return np.sum(np.sin(x * scale) ** 2)
            got = sg.grad(f)(np.ones(3))
            assert np.allclose(got, 2 * scale * np.sin(scale) * np.cos(scale)), (k, got)
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                            env=_env(cache), timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_sixty_four_threads_first_call_compiles_once(tmp_path, monkeypatch):
    from symgrad.transforms import compiled as api

    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "cache"))
    compilations = []
    real_compile = api.compile_function

    def counting_compile(*args, **kwargs):
        compilations.append(threading.get_ident())
        time.sleep(0.05)  # widen the window in which the other threads arrive
        return real_compile(*args, **kwargs)

    monkeypatch.setattr(api, "compile_function", counting_compile)
    g = sg.grad(lambda x: np.sum(np.exp(x) * x))
    x = np.linspace(0, 1, 5)
    start = threading.Barrier(64)
    results: list = [None] * 64

    def call(i: int) -> None:
        start.wait()
        results[i] = g(x)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(compilations) == 1
    expected = np.exp(x) * (1 + x)
    for result in results:
        np.testing.assert_allclose(result, expected, rtol=1e-12)


def test_self_call_while_traced_is_an_error_not_a_deadlock(tmp_path, monkeypatch):
    """The compile lock is held while tracing: a function that calls its own compiled form
    (with plain arrays, so the call reaches the lock) gets a clear error naming it."""
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))

    @sg.grad
    def recursive_loss(x):
        return np.sum(x * x) + np.sum(recursive_loss(np.ones(2)))

    outcome = []

    def call():
        try:
            recursive_loss(np.ones(3))
        except Exception as error:  # noqa: BLE001 -- recorded and checked below
            outcome.append(error)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "deadlocked"
    assert len(outcome) == 1 and isinstance(outcome[0], sg.TracingError), outcome
    assert "recursive_loss" in str(outcome[0]) and "calls its own compiled form" in str(outcome[0])
    # the function still works for callers once it no longer calls itself
    plain = sg.grad(lambda x: np.sum(x * x))
    np.testing.assert_allclose(plain(np.ones(3)), 2 * np.ones(3))
