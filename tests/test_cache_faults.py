"""Faults injected into every file the cache reads -- metadata, source, artefacts, the signing
key, the directory itself -- and into the reading: each is damage (one warning, a rebuild, the
right numbers), never an exception in the caller, and `symgrad cache info` / `prune` survive
all of them."""
from __future__ import annotations

import errno
import json
import os
import stat
import warnings

import numpy as np
import pytest

import symgrad as sg
from cache_victims import ARGS, expected_gradient, loss, plant, victim
from symgrad.cache import store as cache_module
from symgrad.cache import CacheWarning, DiskCache, signing


@pytest.fixture
def cache_env(tmp_path, monkeypatch):
    directory = tmp_path / "cache"
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(directory))
    return directory


def _deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def _meta(directory, key) -> dict:
    return json.loads((directory / f"{key}.json").read_text())


# name -> what to do to the entry (directory, key); all must read as damage.
def _write(path, data):
    path.unlink(missing_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)


def _replace_by(kind):
    def damage(path):
        path.unlink()
        if kind == "directory":
            path.mkdir()
        elif kind == "fifo":
            os.mkfifo(path)
        else:
            copy = path.with_name("copy_" + path.name)
            copy.write_bytes(b"")
            path.symlink_to(copy)
    return damage


METADATA_FAULTS = {
    "200,000 deep JSON": lambda d, k: _write(d / f"{k}.json", _deep_json(200_000)),
    "deep JSON inside a field": lambda d, k: _write(
        d / f"{k}.json", '{"key": "%s", "components": %s}' % (k, _deep_json(100_000))),
    "over the size cap": lambda d, k: _write(
        d / f"{k}.json", " " * (cache_module.MAX_META_BYTES + 1) + "{}"),
    "a list": lambda d, k: _write(d / f"{k}.json", "[1, 2]"),
    "a number": lambda d, k: _write(d / f"{k}.json", "1e999999"),
    "null": lambda d, k: _write(d / f"{k}.json", "null"),
    "not UTF-8": lambda d, k: _write(d / f"{k}.json", b'{"key": "\xff\xfe"}'),
    "empty": lambda d, k: _write(d / f"{k}.json", ""),
    "a directory": lambda d, k: _replace_by("directory")(d / f"{k}.json"),
    "a FIFO": lambda d, k: _replace_by("fifo")(d / f"{k}.json"),
    "a symbolic link": lambda d, k: _replace_by("link")(d / f"{k}.json"),
    "another key": lambda d, k: plant(d, k, meta={**_meta(d, k), "key": "0" * 64}),
    "hmac of the wrong type": lambda d, k: _write(
        d / f"{k}.json", json.dumps({**_meta(d, k), "hmac": ["hmac-sha256:00"]})),
    "artefacts of the wrong type": lambda d, k: plant(d, k, meta={**_meta(d, k),
                                                                   "artefacts": [1]}),
    "artefact outside the entry": lambda d, k: plant(d, k, meta={**_meta(d, k), "artefacts": {
        "../../etc/passwd": "0" * 64}}),
    "artefact listed but missing": lambda d, k: plant(d, k, meta={**_meta(d, k), "artefacts": {
        "so": "0" * 64}}),
}

SOURCE_FAULTS = {
    "100,000 chained additions": lambda d, k: plant(
        d, k, (d / f"{k}.py").read_text().replace(
            "    return w_bar\n", "    return " + " + ".join(["w_bar"] * 100_000) + "\n")),
    "300 nested parentheses": lambda d, k: plant(
        d, k, (d / f"{k}.py").read_text().replace(
            "    return w_bar\n", "    return " + "(" * 300 + "w_bar" + ")" * 300 + "\n")),
    "a NUL byte": lambda d, k: plant(d, k, (d / f"{k}.py").read_text() + "\x00\n"),
    "not UTF-8": lambda d, k: _write(d / f"{k}.py", b'"""\xff"""\n'),
    "missing": lambda d, k: (d / f"{k}.py").unlink(),
    "truncated": lambda d, k: _write(d / f"{k}.py", (d / f"{k}.py").read_text()[:50]),
    "a directory": lambda d, k: _replace_by("directory")(d / f"{k}.py"),
    "a FIFO": lambda d, k: _replace_by("fifo")(d / f"{k}.py"),
    "a symbolic link": lambda d, k: _replace_by("link")(d / f"{k}.py"),
    "names no function": lambda d, k: plant(d, k, meta={**_meta(d, k), "function": "exit"}),
}


def _cli_survives(directory) -> None:
    from symgrad.cli import main

    assert main(["cache", "info", "--verbose", "--dir", str(directory)]) == 0
    assert main(["cache", "prune", "--older-than", "3650d", "--dir", str(directory)]) == 0


FAULTS = {**{f"metadata {k}": v for k, v in METADATA_FAULTS.items()},
          **{f"source {k}": v for k, v in SOURCE_FAULTS.items()}}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_file_faults(cache_env, fault, capsys):
    """Damage to the metadata or the source: the CLI lists and prunes it, the victim warns
    once and rebuilds, and the next one loads the repaired entry silently."""
    key = victim().key
    FAULTS[fault](cache_env, key)
    _cli_survives(cache_env)
    lowered = victim(expect_warnings=1, match="rebuilding")
    assert not lowered.from_cache
    assert victim().from_cache  # repaired (an empty directory in its place is removed)


def test_source_over_the_size_cap(cache_env, monkeypatch):
    """Never read past the cap (and, rebuilt, not written either: it could never load)."""
    key = victim().key
    monkeypatch.setattr(cache_module, "MAX_SOURCE_BYTES", 100)
    with pytest.warns(CacheWarning, match="at most 100"):
        assert DiskCache.shared(cache_env).load(key) is None
    monkeypatch.undo()
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(cache_env))
    assert victim().from_cache and victim().key == key


@pytest.mark.parametrize("error", [RecursionError, MemoryError, KeyError, ValueError,
                                   UnicodeError, OSError])
def test_any_exception_while_reading_is_damage(cache_env, monkeypatch, error):
    """Whatever raises while an entry is read (here: the metadata's parser) is damage."""
    victim()

    def broken(*args, **kwargs):
        raise error("injected")

    monkeypatch.setattr(cache_module.json, "loads", broken)
    lowered = victim(expect_warnings=1, match="rebuilding")
    assert not lowered.from_cache


def test_exception_while_verifying_is_damage(cache_env, monkeypatch):
    victim()
    monkeypatch.setattr(signing, "verify_entry", lambda *a: (_ for _ in ()).throw(
        RecursionError("injected")))
    victim(expect_warnings=1, match="RecursionError")


# -- the signing key ---------------------------------------------------------------------------
@pytest.fixture
def key_file(tmp_path, monkeypatch):
    path = tmp_path / "config" / "key"
    monkeypatch.setenv("SYMGRAD_KEY_FILE", str(path))
    signing.forget_keys()
    yield path
    signing.forget_keys()


def test_key_created_private_outside_the_cache(cache_env, key_file):
    lowered = victim()
    assert lowered.path is not None
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert len(key_file.read_text().strip()) == 64
    assert not any(p.name == "key" for p in cache_env.iterdir())


def _shared_key(path):
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text("ab" * 32 + "\n")
    path.chmod(0o644)


def _linked_key(path):
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    real = path.with_name("real")
    real.write_text("ab" * 32 + "\n")
    real.chmod(0o600)
    path.symlink_to(real)


def _garbage_key(path):
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text("not a key")
    path.chmod(0o600)


@pytest.mark.parametrize("fault,match", [(_shared_key, "read or written by others"),
                                         (_linked_key, "cannot be read"),
                                         (_garbage_key, "does not hold a symgrad key")],
                         ids=["shared", "symlink", "garbage"])
def test_unusable_key_means_memory_only_warned_once(cache_env, key_file, fault, match):
    fault(key_file)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in (2, 3):
            g = sg.grad(loss, wrt="w")
            x = np.ones((n, 3))
            w = ARGS[1]
            np.testing.assert_allclose(g(x, w), x.T @ (np.tanh(x @ w) + (x @ w) * (
                1 - np.tanh(x @ w) ** 2)), rtol=1e-12)
            assert g.lower(x, w).path is None
    messages = [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]
    assert len(messages) == 1 and match in messages[0], messages


def test_key_inside_the_cache_directory_is_refused(cache_env, monkeypatch):
    monkeypatch.setenv("SYMGRAD_KEY_FILE", str(cache_env / "sub" / "key"))
    signing.forget_keys()
    try:
        assert victim(expect_warnings=1, match="inside it").path is None
        assert not (cache_env / "sub" / "key").exists()
    finally:
        signing.forget_keys()


# -- the directory, while the process runs -----------------------------------------------------
@pytest.mark.parametrize("change,match", [("chmod", "writable by group or others"),
                                          ("symlink", "symbolic link")])
def test_directory_made_unsafe_mid_run(cache_env, tmp_path, change, match):
    assert victim().path is not None  # checked, used
    if change == "chmod":
        cache_env.chmod(0o777)
    else:
        cache_env.rename(tmp_path / "elsewhere")
        cache_env.symlink_to(tmp_path / "elsewhere")
    assert victim(expect_warnings=1, match=match).path is None  # re-checked on load and store
    assert victim().path is None  # warned once
    if change == "chmod":
        cache_env.chmod(0o700)
        assert victim().from_cache  # private again: used again


def test_full_disk_warns_once(cache_env, monkeypatch):
    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_module, "_atomic_write", full)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in (2, 3, 4):  # three signatures, three failed writes
            g = sg.grad(loss, wrt="w")
            x = np.ones((n, 3))
            assert g.lower(x, ARGS[1]).path is None
        np.testing.assert_allclose(sg.grad(loss, wrt="w")(*ARGS), expected_gradient())
    messages = [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]
    assert len(messages) == 1 and "No space left" in messages[0], messages


def test_management_survives_every_fault_at_once(tmp_path):
    """A directory holding every kind of damage: info lists, prune and clear remove what they
    can, and none of them raises."""
    from symgrad.cli import main

    directory = tmp_path / "c"
    cache = DiskCache(directory)
    assert cache.usable()
    keys = [f"{i:064x}" for i in range(len(METADATA_FAULTS))]
    source = '"""doc"""\nimport numpy as np\n\n\ndef f(x):\n    return x\n'
    for key, fault in zip(keys, sorted(METADATA_FAULTS)):
        cache.store(key, source, {"function": "f"})
        METADATA_FAULTS[fault](directory, key)
    (directory / f"{'f' * 64}.py").mkdir()
    assert len(cache.entries()) == len(keys)
    assert main(["cache", "info", "-v", "--dir", str(directory)]) == 0
    assert main(["cache", "prune", "--max-size", "0", "--dir", str(directory)]) == 0
    assert main(["cache", "clear", "--dir", str(directory)]) == 0


def test_management_marks_damaged_entries(tmp_path, capsys):
    from symgrad.cli import main

    directory = tmp_path / "c"
    cache = DiskCache(directory)
    assert cache.usable()
    key = "1" * 64
    cache.store(key, '"""doc"""\nimport numpy as np\n\n\ndef f(x):\n    return x\n', {})
    METADATA_FAULTS["200,000 deep JSON"](directory, key)
    assert main(["cache", "info", "-v", "--dir", str(directory)]) == 0
    assert "damaged: rebuilt on its next use" in capsys.readouterr().out
    assert main(["cache", "prune", "--older-than", "0s", "--dir", str(directory)]) == 0
    assert list(directory.iterdir()) == []


def test_info_does_not_make_a_key(tmp_path, key_file):
    from symgrad.cli import main

    assert main(["cache", "info", "--dir", str(tmp_path)]) == 0
    assert not key_file.exists()


def test_processes_making_the_key_at_once_agree_on_one(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "fresh" / "key"
    code = ("import sys; from symgrad.cache import user_key; "
            f"print(user_key(__import__('pathlib').Path({str(path)!r})).hex())")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    keys = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(keys) == 1 and path.read_text().strip() in keys
    assert [p.name for p in path.parent.iterdir()] == ["key"]  # no temporary left behind


def test_artefacts_are_signed_and_checked(tmp_path):
    """The seam a compiling backend uses: a library stored beside the source is covered by the
    sha256 and the signature, and comes back only intact."""
    directory = tmp_path / "c"
    cache = DiskCache(directory)
    key = "2" * 64
    source = '"""doc"""\nimport numpy as np\n\n\ndef f(x):\n    return x\n'
    cache.store(key, source, {"function": "f"}, artefacts={"so": b"\x7fELF library"})
    entry = cache.load_entry(key)
    assert entry.artefacts == {"so": b"\x7fELF library"} and entry.source == source
    (directory / f"{key}.so").write_bytes(b"\x7fELF other")
    with pytest.warns(CacheWarning, match="so file is missing or does not match"):
        assert cache.load_entry(key) is None
    meta = json.loads((directory / f"{key}.json").read_text())
    import hashlib

    meta["artefacts"]["so"] = hashlib.sha256(b"\x7fELF other").hexdigest()  # fixed, not signed
    (directory / f"{key}.json").write_text(json.dumps(meta))
    with pytest.warns(CacheWarning, match="not signed with this user's key"):
        assert cache.load_entry(key) is None


def test_damage_that_cannot_be_repaired_warns_once(cache_env, monkeypatch):
    """An unsigned entry on a full disk: it cannot be rewritten, so every new compiled function
    meets it again -- one warning about it (and one about the disk), not one per call."""
    key = victim().key
    plant(cache_env, key, sign=False)

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_module, "_atomic_write", full)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            assert victim_quietly().from_cache is False
    messages = sorted(str(w.message) for w in caught if issubclass(w.category, CacheWarning))
    assert len(messages) == 2, messages
    assert "not signed" in messages[0] and "No space left" in messages[1]


def victim_quietly():
    g = sg.grad(loss, wrt="w")
    np.testing.assert_allclose(g(*ARGS), expected_gradient(), rtol=1e-12)
    return g.lower(*ARGS)


def test_entry_too_large_to_load_is_not_written(cache_env, monkeypatch):
    monkeypatch.setattr(cache_module, "MAX_SOURCE_BYTES", 100)
    lowered = victim(expect_warnings=1, match="larger than a cache entry may be")
    assert lowered.path is None and not any(cache_env.glob("*.json"))


def test_signature_covers_every_part_and_its_boundaries():
    key, other = bytes(range(32)), bytes(32)
    parts = {"source": b"abc", "metadata": b"{}"}
    signature = signing.sign_entry(parts, key)
    assert signing.verify_entry(parts, signature, key)
    assert not signing.verify_entry(parts, signature, other)
    for changed in ({"source": b"ab", "metadata": b"c{}"},  # bytes moved across a boundary
                    {"source": b"abc", "metadata": b"{} "},
                    {"source": b"abc", "metadata": b"{}", "artefact.so": b""},
                    {"metadata": b"abc", "source": b"{}"}):
        assert not signing.verify_entry(changed, signature, key), changed
    for forged in (None, 0, [signature], signature.upper(), signature[:-1], "", "\u2028"):
        assert not signing.verify_entry(parts, forged, key)
