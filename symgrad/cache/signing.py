"""Who wrote a cache entry: an HMAC-SHA256 over every file of it, with a per-user secret key.

The key is 32 random bytes (hex) in `$SYMGRAD_KEY_FILE`, else the user's config directory
(`~/.config/symgrad/key`), created on first use with mode 0600 in a 0700 directory -- never
inside a cache directory, so that someone who can write the cache cannot read or replace it.
It is read with `O_NOFOLLOW` and used only if it is a regular file of this user that nobody
else may read or write. Every backend signs through this one seam (`sign_entry`,
`verify_entry`): the numpy backend signs its source and metadata, a fused backend adds its
compiled library as one more named part.

What it promises: an entry verifies only if a process holding this user's key wrote it. What it
does not: anything against someone who can read the key file (the user's own account, root), and
nothing about whether symgrad's own output is correct.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import stat
import sys
import threading
from pathlib import Path
from typing import Mapping

ENV_VAR = "SYMGRAD_KEY_FILE"
SCHEME = "hmac-sha256"
KEY_HEX_CHARS = 64
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_KEYS: dict[str, bytes] = {}
_LOCK = threading.Lock()


class KeyUnavailable(Exception):
    """The signing key cannot be read or created safely; the message says why."""


def key_path() -> Path:
    """$SYMGRAD_KEY_FILE, else the platform's user config directory."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("APPDATA") or os.path.expanduser("~\\AppData\\Roaming")
        return Path(base) / "symgrad" / "key"
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "symgrad" / "key"


def user_key(path: Path | None = None) -> bytes:
    """This user's signing key, created (0600) on first use; read once per process."""
    path = Path(path) if path is not None else key_path()
    cached = _KEYS.get(str(path))
    if cached is not None:
        return cached
    with _LOCK:
        if str(path) not in _KEYS:
            try:
                key = _read_key(path)
            except FileNotFoundError:
                _create_key(path)
                key = _read_key(path)
            except OSError as error:
                raise KeyUnavailable(f"the key file {path} cannot be read "
                                     f"({error.strerror or error})") from None
            _KEYS[str(path)] = key
    return _KEYS[str(path)]


def _read_key(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyUnavailable(f"the key file {path} is not a regular file")
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            raise KeyUnavailable(f"the key file {path} belongs to another user")
        if info.st_mode & 0o077:
            raise KeyUnavailable(f"the key file {path} may be read or written by others (mode "
                                 f"{stat.filemode(info.st_mode)}; it must be 0600)")
        data = os.read(fd, KEY_HEX_CHARS + 2)
    finally:
        os.close(fd)
    text = data.decode("ascii", "replace").strip()
    if len(text) != KEY_HEX_CHARS or any(c not in "0123456789abcdef" for c in text):
        raise KeyUnavailable(f"the key file {path} does not hold a symgrad key (delete it to "
                             "make a new one; cached entries are then rebuilt)")
    return bytes.fromhex(text)


def _create_key(path: Path) -> None:
    """Write a fresh key atomically: a temporary 0600 file hard-linked into place, so two
    processes creating it at once agree on one key."""
    import secrets

    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
        try:
            os.write(fd, (secrets.token_hex(KEY_HEX_CHARS // 2) + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            os.unlink(temporary)
    except OSError as error:
        raise KeyUnavailable(f"the key file {path} cannot be created "
                             f"({error.strerror or error})") from None


def sign_entry(parts: Mapping[str, bytes], key: bytes | None = None) -> str:
    """The signature of an entry's files: each part (`source`, `metadata`, a library) by name,
    length and bytes, in name order, so no part can be moved into another."""
    mac = hmac.new(key if key is not None else user_key(), b"symgrad entry v1\n",
                   hashlib.sha256)
    for name in sorted(parts):
        data = parts[name]
        mac.update(f"{name}\n{len(data)}\n".encode("utf-8"))
        mac.update(data)
    return f"{SCHEME}:{mac.hexdigest()}"


def verify_entry(parts: Mapping[str, bytes], signature: object,
                 key: bytes | None = None) -> bool:
    """Whether `signature` is this user's signature of exactly these parts."""
    if not isinstance(signature, str):
        return False
    return hmac.compare_digest(signature.encode("utf-8", "replace"),
                               sign_entry(parts, key).encode("utf-8"))


def forget_keys() -> None:
    """Drop the keys read so far (tests that change $SYMGRAD_KEY_FILE)."""
    with _LOCK:
        _KEYS.clear()
