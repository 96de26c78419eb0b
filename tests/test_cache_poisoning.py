"""Poisoned cache entries: each is planted as an attacker who can write the cache directory (the
sha256 fixed, and even signed with the user's key), and each must be refused, warned about
once, rebuilt -- and never run (its payload would create a marker directory)."""
from __future__ import annotations

import re

import pytest

from cache_victims import plant, refused_and_rebuilt, victim


@pytest.fixture
def cache_env(tmp_path, monkeypatch):
    directory = tmp_path / "cache"
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(directory))
    return directory


@pytest.fixture
def blocked(monkeypatch):
    """The victim's module in row blocks: a nested block function and the _in_blocks helper."""
    from symgrad.backends.numpy import blocking

    monkeypatch.setattr(blocking, "BLOCKING_MIN_BYTES", 0)
    monkeypatch.setattr(blocking, "BLOCK_BYTES", 64)


def payload(marker) -> str:
    return f"__import__('os').mkdir({str(marker)!r})"


def in_function(source: str, lines: list[str]) -> str:
    """`lines` inserted as the first statements of the generated function."""
    head, sep, rest = source.partition("def loss_grad(x, w):\n")
    assert sep
    return head + sep + "".join(f"    {line}\n" for line in lines) + rest


# -- late binding: a module-level call that runs before a later def rebinds the name ----------
LATE_BINDING = {
    "module-level exec before def exec": lambda m: (
        None, [f"t_evil = exec({payload(m)!r})"], "\n\ndef exec(code):\n    return code\n"),
    "module constant calling exec": lambda m: (
        f"const_evil = exec({payload(m)!r})\n", [], "\n\ndef exec(code):\n    return code\n"),
    "call of open defined later": lambda m: (
        None, [f"t_evil = open({str(m)!r}, 'w')"], "\n\ndef open(path, mode):\n    return path\n"),
    "helper-named constant running code": lambda m: (
        f"_THREADS = {payload(m)}\n", [], ""),
    "eval rebound at module level": lambda m: (
        None, [f"t_evil = eval({payload(m)!r})"], f"\n\neval = np.eye(2, dtype=np.float64)\n"),
    "builtin shadowed by a constant": lambda m: (
        "len = np.eye(2, dtype=np.float64)\n", [f"t_evil = {payload(m)}"], ""),
    "a second function called at import": lambda m: (
        None, [], f"\n\ndef hook(x):\n    return x\n\n\nconst_evil = hook({payload(m)})\n"),
}


@pytest.mark.parametrize("name", sorted(LATE_BINDING))
def test_late_binding(cache_env, tmp_path, name):
    key = victim().key
    marker = tmp_path / "ran"
    before, lines, after = LATE_BINDING[name](marker)
    source = (cache_env / f"{key}.py").read_text()
    source = in_function(source, lines) + after
    if before:
        source = source.replace("import numpy as np\n", "import numpy as np\n" + before, 1)
    plant(cache_env, key, source)
    refused_and_rebuilt(cache_env, key, marker, "safety check")


# -- line separators: text that means different lines to different readers -------------------
SEPARATORS = ["\u2028", "\u2029", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\x0b", "\r", "\r\n"]


@pytest.mark.parametrize("where", ["comment", "docstring", "string"])
@pytest.mark.parametrize("separator", SEPARATORS, ids=[repr(s) for s in SEPARATORS])
def test_line_separators(cache_env, tmp_path, separator, where):
    key = victim().key
    marker = tmp_path / "ran"
    source = (cache_env / f"{key}.py").read_text()
    if where == "comment":
        source = source.replace("    # cache_victims.py:17  z = x @ w\n",
                                f"    # cache_victims.py:17 {separator}  z = x @ w\n", 1)
    elif where == "docstring":
        source = source.replace("Needs numpy only.", f"Needs numpy{separator} only.")
    else:
        source = in_function(source, [f"t_evil = 'a{separator}b'"])
    source += f"\n\n{payload(marker)}\n"  # what a shifted line-by-line check would skip
    plant(cache_env, key, source)
    refused_and_rebuilt(cache_env, key, marker, "safety check")


def test_whole_file_with_crlf_line_ends(cache_env, tmp_path):
    key = victim().key
    source = (cache_env / f"{key}.py").read_text().replace("\n", "\r\n")
    plant(cache_env, key, source)
    refused_and_rebuilt(cache_env, key, tmp_path / "ran", "safety check")


# -- nested names: blocks, parameters and locals named like one another ----------------------
def nested_attacks(marker) -> dict[str, tuple[str, str]]:
    """name -> (text to replace, replacement) in the blocked victim's module."""
    call = f"block({payload(marker)!r})"
    return {
        "parameter named like the block, called": (
            "def loss_grad(x, w):\n", "def loss_grad(x, w, block):\n    t_evil = block(eval)\n"),
        "block's parameter named like the block": (
            "def block(z, z_bar):\n", f"def block(block, z_bar):\n        t_evil = {call}\n"),
        "block called directly": (
            "_in_blocks(block, 2, 2, z, z_bar)", f"t_evil = {call}"),
        "block handed a builtin": (
            "_in_blocks(block, 2, 2, z, z_bar)", "_in_blocks(block, 2, 2, eval, z_bar)"),
        "parameter handed to _in_blocks": (
            "_in_blocks(block, 2, 2, z, z_bar)", "_in_blocks(x, 2, 2, z, z_bar)"),
        "block read from inside the block": (
            "t0 = np.tanh(z)", "t0 = block"),
        "block shadowing a parameter": (
            "def block(z, z_bar):", "def x(z, z_bar):"),
        "block defined twice": (
            "_in_blocks(block, 2, 2, z, z_bar)",
            "def block(z):\n        return z\n    _in_blocks(block, 2, 2, z, z_bar)"),
        "local rebinding the block": (
            "_in_blocks(block, 2, 2, z, z_bar)",
            "block = z\n    _in_blocks(block, 2, 2, z, z_bar)"),
        "block nested two deep": (
            "t0 = np.tanh(z)", "def inner(v):\n            return v\n        t0 = np.tanh(z)"),
        "helper handed to _in_blocks": (
            "_in_blocks(block, 2, 2, z, z_bar)", "_in_blocks(_cpu_count, 2, 2, z, z_bar)"),
        "in_blocks helper edited": (
            "    for thread in helpers:\n        thread.start()\n",
            f"    for thread in helpers:\n        thread.start()\n    {payload(marker)}\n"),
        "threads count from elsewhere": (
            '_THREADS = int(os.environ.get("SYMGRAD_THREADS") or _cpu_count())',
            f'_THREADS = int(os.environ.get("SYMGRAD_THREADS") or {payload(marker)})'),
    }


@pytest.mark.parametrize("name", sorted(nested_attacks("m")))
def test_nested_names(cache_env, tmp_path, blocked, name):
    key = victim().key
    marker = tmp_path / "ran"
    old, new = nested_attacks(marker)[name]
    source = (cache_env / f"{key}.py").read_text()
    assert "_in_blocks(block, 2, 2, z, z_bar)" in source and old in source
    plant(cache_env, key, source.replace(old, new, 1))
    refused_and_rebuilt(cache_env, key, marker, "safety check")


# -- entries symgrad did not write: refused by the signature before the grammar ---------------
@pytest.mark.parametrize("edit", ["harmless number", "payload", "metadata only"])
def test_unsigned_entry_never_loads(cache_env, tmp_path, edit):
    """Even an entry that would pass the grammar loads only if this user's key signed it."""
    key = victim().key
    marker = tmp_path / "ran"
    source = (cache_env / f"{key}.py").read_text()
    meta = None
    if edit == "harmless number":  # valid under the grammar, wrong numbers
        source = re.sub(r"1 - t0\*\*2", "2 - t0**2", source)
    elif edit == "payload":
        source += f"\n\n{payload(marker)}\n"
    else:
        import json

        meta = json.loads((cache_env / f"{key}.json").read_text())
        meta["function"] = "loss_grad"
        meta["signature"] = "x=f64[9,9]"
    plant(cache_env, key, source, meta=meta, sign=False)
    refused_and_rebuilt(cache_env, key, marker, "not signed with this user's key")


def test_entry_signed_with_another_key(cache_env, tmp_path, monkeypatch):
    """Another user's (or a stolen old) key: its entries are not this user's."""
    from symgrad.cache import signing

    key = victim().key
    monkeypatch.setenv("SYMGRAD_KEY_FILE", str(tmp_path / "other" / "key"))
    plant(cache_env, key, (cache_env / f"{key}.py").read_text())  # signed with the other key
    monkeypatch.undo()
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(cache_env))
    signing.forget_keys()
    refused_and_rebuilt(cache_env, key, tmp_path / "ran", "not signed with this user's key")


def test_received_code_is_checked_then_signed(cache_env, tmp_path):
    """What a Dask worker does with a module sent by the client: grammar first, then its own
    key; a hostile module is refused and never stored."""
    import json

    import symgrad as sg
    from symgrad.backends.numpy import check_source
    from symgrad.cache import DiskCache

    key = victim().key
    source = (cache_env / f"{key}.py").read_text()
    meta = json.loads((cache_env / f"{key}.json").read_text())
    for suffix in ("py", "json"):
        (cache_env / f"{key}.{suffix}").unlink()
    cache = DiskCache.shared(cache_env)
    with pytest.raises(sg.GeneratedCodeError):
        cache.adopt(key, source + f"\n\n{payload(tmp_path / 'ran')}\n", meta, check_source)
    assert not (cache_env / f"{key}.json").exists()
    assert cache.adopt(key, source, meta, check_source) == cache_env / f"{key}.py"
    assert victim().from_cache  # signed with this user's key: it loads
