"""The disk cache: readable entries, atomic and checked, private, and never trusted blindly."""
from __future__ import annotations

import json
import os
import stat
import time
import warnings

import numpy as np
import pytest

import symgrad as sg
from symgrad.cache import CacheWarning, DiskCache, sha256_text


def loss(x, w):
    z = x @ w
    return np.sum(np.tanh(z) * z)


ARGS = (np.linspace(-1, 1, 6).reshape(2, 3), np.linspace(0.5, 1.5, 12).reshape(3, 4))


def expected_gradient():
    x, w = ARGS
    z = x @ w
    t = np.tanh(z)
    return x.T @ (t + z * (1 - t * t))


@pytest.fixture
def cache_env(tmp_path, monkeypatch):
    """A fresh cache directory for this test (and a fresh per-directory DiskCache)."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(directory))
    return directory


def compile_and_check(expect_warnings: int = 0, match: str = "") -> sg.Lowered:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = sg.grad(loss, wrt="w")
        np.testing.assert_allclose(g(*ARGS), expected_gradient(), rtol=1e-12)
        lowered = g.lower(*ARGS)
    ours = [w for w in caught if issubclass(w.category, CacheWarning)]
    assert len(ours) == expect_warnings, [str(w.message) for w in ours]
    for warning in ours:
        assert match in str(warning.message)
    return lowered


def entry_files(directory):
    return sorted(p.name for p in directory.iterdir())


def test_entry_is_readable_source_and_small_json_metadata(cache_env):
    lowered = compile_and_check()
    key = lowered.key
    assert entry_files(cache_env) == [f"{key}.json", f"{key}.py"]
    source = (cache_env / f"{key}.py").read_text()
    assert source == lowered.source and source.startswith('"""')
    meta = json.loads((cache_env / f"{key}.json").read_text())
    assert meta["source_sha256"] == sha256_text(source)
    assert meta["function"] == "loss_grad" and meta["signature"] == "x=f64[2,3], w=f64[3,4]"
    assert set(meta["components"]) >= {"inputs", "operations", "constants", "source_lines",
                                       "transform", "backend", "templates", "symgrad_source",
                                       "symgrad", "numpy", "sympy", "jinja2"}
    assert meta["function_id"].endswith("test_cache_disk.py:loss")


def test_directory_private_and_entries_0600(cache_env):
    lowered = compile_and_check()
    assert stat.S_IMODE(cache_env.stat().st_mode) & 0o077 == 0
    for name in (f"{lowered.key}.py", f"{lowered.key}.json"):
        assert stat.S_IMODE((cache_env / name).stat().st_mode) == 0o600


def test_second_compiled_function_loads_from_disk(cache_env):
    first = compile_and_check()
    assert not first.from_cache
    assert compile_and_check().from_cache


@pytest.mark.parametrize("damage", ["truncate", "edit", "garbage_metadata", "empty_source",
                                    "source_symlink"])
def test_damaged_entry_is_rebuilt_with_one_warning(cache_env, damage):
    key = compile_and_check().key
    source, meta = cache_env / f"{key}.py", cache_env / f"{key}.json"
    text = source.read_text()
    if damage == "truncate":
        source.write_text(text[: len(text) // 2])
    elif damage == "edit":  # a tampered number: the sha256 no longer matches
        source.write_text(text.replace("1 - ", "2 - ").replace("1-", "2-"))
        assert source.read_text() != text
    elif damage == "garbage_metadata":
        meta.write_text("{not json")
    elif damage == "empty_source":
        source.write_text("")
    else:
        elsewhere = cache_env.parent / "elsewhere.py"
        elsewhere.write_text(text)
        source.unlink()
        source.symlink_to(elsewhere)
    lowered = compile_and_check(expect_warnings=1, match="rebuilding")
    assert not lowered.from_cache
    assert source.read_text() == text and not source.is_symlink()
    assert compile_and_check().from_cache  # repaired: the next one loads silently


@pytest.mark.parametrize("resigned", [False, True])
def test_tampered_entry_with_matching_hash_is_refused_not_run(cache_env, tmp_path, resigned):
    """An attacker who can edit the metadata fixes the sha256: the signature refuses it; one
    who also holds the key (re-signs it) is refused by the grammar. Either way it never runs."""
    from symgrad.cache import entry_parts, sign_entry

    key = compile_and_check().key
    source, meta_path = cache_env / f"{key}.py", cache_env / f"{key}.json"
    marker = tmp_path / "pwned"
    evil = source.read_text() + f"\nimport os\nos.mkdir({str(marker)!r})\n"
    source.write_text(evil)
    meta = json.loads(meta_path.read_text())
    meta["source_sha256"] = sha256_text(evil)
    if resigned:
        meta["hmac"] = sign_entry(entry_parts(evil, meta))
    meta_path.write_text(json.dumps(meta))
    lowered = compile_and_check(expect_warnings=1,
                                match="safety check" if resigned else "not signed")
    assert not marker.exists()
    assert not lowered.from_cache
    assert compile_and_check().from_cache  # rebuilt and signed again


def test_source_without_metadata_is_a_plain_miss(cache_env):
    """What a writer killed between its two renames leaves: no warning, rebuilt."""
    key = compile_and_check().key
    (cache_env / f"{key}.json").unlink()
    assert not compile_and_check().from_cache
    assert (cache_env / f"{key}.json").exists()


def test_read_only_directory_memory_only_one_warning(cache_env):
    cache_env.mkdir(mode=0o700)
    cache_env.chmod(0o500)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for n in (2, 3, 4):  # three signatures, three compilations, one warning
                g = sg.grad(loss, wrt="w")
                x = np.ones((n, 3))
                np.testing.assert_allclose(g(x, ARGS[1]), sg.grad(loss, wrt="w")(x, ARGS[1]))
        messages = [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]
        assert len(messages) == 1 and "read-only" in messages[0], messages
        assert list(cache_env.iterdir()) == []
        assert sg.grad(loss, wrt="w").lower(*ARGS).path is None
    finally:
        cache_env.chmod(0o700)


def test_directory_that_cannot_be_created(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(blocker / "cache"))
    lowered = compile_and_check(expect_warnings=1, match="cannot be created")
    assert lowered.path is None


@pytest.mark.parametrize("problem", ["symlink", "group_writable", "other_user"])
def test_unsafe_directory_is_not_loaded_from(tmp_path, monkeypatch, problem):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    directory = real
    if problem == "symlink":
        directory = tmp_path / "link"
        directory.symlink_to(real)
        match = "symbolic link"
    elif problem == "group_writable":
        real.chmod(0o770)
        match = "writable by group or others"
    else:
        if not hasattr(os, "getuid") or os.getuid() != 0:
            pytest.skip("changing a directory's owner needs root")
        os.chown(real, 65534, 65534)
        match = "owned by another user"
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(directory))
    lowered = compile_and_check(expect_warnings=1, match=match)
    assert lowered.path is None and list(real.iterdir()) == []


def test_info_clear_prune(tmp_path):
    cache = DiskCache(tmp_path / "c")
    assert cache.usable()
    keys = [f"{i:064x}" for i in range(4)]
    for i, key in enumerate(keys):
        cache.store(key, f'"""entry {i}"""\nimport numpy as np\n' + "x = 1\n" * 100,
                    {"function": "f"})
        old = time.time() - (4 - i) * 86400  # entry 0 unused for 4 days, entry 3 for 1 day
        os.utime(cache.meta_path(key), (old, old))
    (tmp_path / "c" / ".stale.py.tmp").write_text("partial")
    os.utime(tmp_path / "c" / ".stale.py.tmp", (0, 0))
    assert [e.key for e in cache.entries()] == keys[::-1]
    assert cache.total_size() == sum(e.size for e in cache.entries()) + len("partial")
    assert sorted(cache.prune(older_than=2.5 * 86400)) == [keys[0], keys[1]]
    assert not (tmp_path / "c" / ".stale.py.tmp").exists()
    one_entry = cache.entries()[0].size
    assert cache.prune(max_size=one_entry) == [keys[2]]  # least recently used goes first
    assert [e.key for e in cache.entries()] == [keys[3]]
    assert cache.load(keys[3])[0].startswith('"""entry 3"""')
    assert cache.clear() == 1 and list((tmp_path / "c").iterdir()) == []


def test_compiled_function_does_not_keep_the_function_alive(cache_env):
    import gc
    import weakref

    def make():
        def f(x):
            return np.sum(x * x)
        return f

    f = make()
    g = sg.grad(f)
    g(np.ones(3))
    ref = weakref.ref(f)
    del f, g
    gc.collect()
    assert ref() is None


def test_in_memory_signatures_are_bounded(cache_env, monkeypatch):
    from symgrad.transforms import compiled

    monkeypatch.setattr(compiled, "MAX_SIGNATURES", 2)
    g = sg.grad(lambda x: np.sum(x * x))
    for n in (1, 2, 3, 4):
        np.testing.assert_allclose(g(np.ones(n)), 2 * np.ones(n))
    assert len(g._signatures) == 2 and len(g._fast) == 2
    np.testing.assert_allclose(g(np.ones(1)), [2.0])  # dropped, compiled again (disk hit)


def test_static_values_that_compare_equal_are_distinct_signatures(cache_env):
    g = sg.grad(lambda x, c: np.sum(x * np.sign(c + 0 * x)), wrt="x")
    np.testing.assert_array_equal(g(np.ones(2), 0.0), [0.0, 0.0])
    np.testing.assert_array_equal(g(np.ones(2), 1.0), [1.0, 1.0])
    np.testing.assert_array_equal(g(np.ones(2), 1), [1.0, 1.0])


def test_lowered_from_specs_serves_the_fast_call_path(cache_env):
    g = sg.grad(loss, wrt="w")
    g.lower("f64[2,3]", "f64[3,4]")
    assert not g._fast
    np.testing.assert_allclose(g(*ARGS), expected_gradient(), rtol=1e-12)
    assert len(g._fast) == 1 and len(g._signatures) == 1
