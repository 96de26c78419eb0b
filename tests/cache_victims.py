"""What the poisoning and fault-injection suites share: a victim that compiles through the disk
cache and checks its numbers, and an attacker who plants an entry in its place."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

import symgrad as sg
from symgrad.cache import CacheWarning, entry_parts, sha256_text, sign_entry


def loss(x, w):
    z = x @ w
    return np.sum(np.tanh(z) * z)


ARGS = (np.linspace(-1, 1, 6).reshape(2, 3), np.linspace(0.5, 1.5, 12).reshape(3, 4))


def expected_gradient() -> np.ndarray:
    x, w = ARGS
    z = x @ w
    t = np.tanh(z)
    return x.T @ (t + z * (1 - t * t))


def victim(expect_warnings: int = 0, match: str = "") -> sg.Lowered:
    """A fresh compiled function called once: the right gradient, and exactly
    `expect_warnings` cache warnings, each containing `match`."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = sg.grad(loss, wrt="w")
        np.testing.assert_allclose(g(*ARGS), expected_gradient(), rtol=1e-12)
        lowered = g.lower(*ARGS)
    ours = [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]
    assert len(ours) == expect_warnings, ours
    for message in ours:
        assert match in message, message
    return lowered


def plant(directory: Path, key: str, source: str | None = None, meta: dict | None = None,
          sign: bool = True) -> None:
    """Replace an entry's files as an attacker who can write the cache directory: the sha256
    fixed to match, and (`sign`) even signed with the user's key -- the worst case, in which
    only the grammar stands between the entry and its execution."""
    source_path, meta_path = directory / f"{key}.py", directory / f"{key}.json"
    source = source_path.read_text() if source is None else source
    meta = json.loads(meta_path.read_text()) if meta is None else meta
    meta["source_sha256"] = sha256_text(source)
    meta.pop("hmac", None)
    if sign:
        meta["hmac"] = sign_entry(entry_parts(source, meta))
    source_path.write_text(source, encoding="utf-8", newline="")
    meta_path.write_text(json.dumps(meta))


def refused_and_rebuilt(directory: Path, key: str, marker: Path, match: str) -> None:
    """The planted entry is refused with one warning, never runs, and is rebuilt: the next
    victim loads it silently."""
    lowered = victim(expect_warnings=1, match=match)
    assert not marker.exists(), "the planted code ran"
    assert not lowered.from_cache and lowered.key == key
    assert victim().from_cache
    assert not marker.exists()
