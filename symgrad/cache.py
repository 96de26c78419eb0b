"""The disk cache: generated modules as readable text, written atomically, checked on load.

An entry is `<key>.py` (the generated source) and `<key>.json` (metadata: the source's sha256,
the key's components, what was compiled). Nothing is pickled. Entries are written to a temporary
file in the same directory, fsynced and moved into place with `os.replace`, source first and
metadata last, so a killed writer leaves at most a stray temporary file or a source without
metadata, and neither loads. On load the source's sha256 must match the metadata and the source
must pass the safety check (`safety.py`) before it runs; anything else is rebuilt with one
warning.

Loading cached source is code execution, so the directory must be private: it is created 0700
(entries 0600), and a directory that is a symbolic link, belongs to another user, or is writable
by group or others is not used (memory only, one warning). So is one that is read-only or
cannot be created.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

from .errors import GeneratedCodeError

ENV_VAR = "SYMGRAD_CACHE_DIR"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_KEY = re.compile(r"[0-9a-f]{64}")
STALE_TEMPORARY_SECONDS = 3600  # a temporary file this old belongs to a writer that died


class CacheWarning(UserWarning):
    """The disk cache could not be used as intended; symgrad carried on without it."""


def default_dir() -> Path:
    """$SYMGRAD_CACHE_DIR, else the platform's user cache directory."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
        return Path(base) / "symgrad" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "symgrad"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "symgrad"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Entry:
    """One cache entry as listed by `symgrad cache info`."""

    key: str
    meta: dict[str, Any]
    size: int  # bytes of source and metadata
    last_used: float  # the metadata's mtime: set on write, refreshed on every load


_SHARED: dict[str, "DiskCache"] = {}
_SHARED_LOCK = threading.Lock()


class DiskCache:
    def __init__(self, directory: Path | str | None = None):
        self.directory = Path(directory) if directory is not None else default_dir()
        self._usable: bool | None = None
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, directory: Path | str | None = None) -> "DiskCache":
        """One instance per directory and process, so each problem is warned about once."""
        path = str(Path(directory) if directory is not None else default_dir())
        cache = _SHARED.get(path)
        if cache is None:
            with _SHARED_LOCK:
                cache = _SHARED.setdefault(path, cls(path))
        return cache

    # -- paths ---------------------------------------------------------------------------------
    def source_path(self, key: str) -> Path:
        return self.directory / f"{key}.py"

    def meta_path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    # -- safety --------------------------------------------------------------------------------
    def usable(self, create: bool = True) -> bool:
        """Whether entries may be read and written; warns (once) when not."""
        if self._usable is not None:
            return self._usable
        with self._lock:
            if self._usable is None:
                problem = self.problem(create)
                if problem:
                    warnings.warn(f"symgrad cache directory {self.directory} is not used: "
                                  f"{problem}; compiling in memory only", CacheWarning,
                                  stacklevel=5)
                self._usable = problem is None
        return self._usable

    def problem(self, create: bool = False) -> str | None:
        """Why the directory may not be used (None when it may); creates it when asked."""
        if create:
            try:
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as error:
                return f"it cannot be created ({error.strerror or error})"
        try:
            info = os.lstat(self.directory)
        except OSError as error:
            return f"it cannot be read ({error.strerror or error})"
        if stat.S_ISLNK(info.st_mode):
            return "it is a symbolic link (loading cached code runs it: the directory must " \
                   "be private)"
        if not stat.S_ISDIR(info.st_mode):
            return "it is not a directory"
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            return f"it is owned by another user (uid {info.st_uid})"
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return (f"it is writable by group or others (mode {stat.filemode(info.st_mode)}; "
                    f"`chmod 700 {self.directory}` makes it private)")
        if not info.st_mode & stat.S_IWUSR or not os.access(self.directory, os.W_OK | os.X_OK):
            return "it is read-only"
        return None

    # -- read ----------------------------------------------------------------------------------
    def load(self, key: str) -> tuple[str, dict[str, Any]] | None:
        """The entry's (source, metadata) if present and intact; None otherwise.

        A damaged entry (metadata unreadable, or the source's sha256 differs) warns once and
        returns None, so the caller rebuilds and overwrites it.
        """
        if not self.usable():
            return None
        meta_text = _read_private(self.meta_path(key))
        if meta_text is None:
            return None  # never written, or a writer died before finishing: a plain miss
        source = _read_private(self.source_path(key))
        try:
            meta = json.loads(meta_text)
            intact = (source is not None and isinstance(meta, dict) and meta.get("key") == key
                      and meta.get("source_sha256") == sha256_text(source))
        except ValueError:
            intact = False
        if not intact:
            self.warn_damaged(key, "its source does not match its recorded sha256 (truncated, "
                                   "edited or corrupted)")
            return None
        try:
            os.utime(self.meta_path(key))  # last use, for `symgrad cache prune --older-than`
        except OSError:
            pass
        return source, meta

    def warn_damaged(self, key: str, why: str) -> None:
        warnings.warn(f"symgrad cache entry {key[:16]}... in {self.directory} is not used: "
                      f"{why}; rebuilding it", CacheWarning, stacklevel=5)

    # -- write ---------------------------------------------------------------------------------
    def store(self, key: str, source: str, meta: dict[str, Any]) -> Path | None:
        """Write the entry atomically; its source path, or None when memory only."""
        if not self.usable():
            return None
        meta = {**meta, "key": key, "source_sha256": sha256_text(source)}
        try:
            if not self.directory.is_dir():  # removed while this process ran: make it again
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            _atomic_write(self.source_path(key), source)
            _atomic_write(self.meta_path(key), json.dumps(meta, indent=2, sort_keys=True) + "\n")
        except OSError as error:
            warnings.warn(f"symgrad could not write its cache entry in {self.directory} "
                          f"({error}); compiled in memory only", CacheWarning, stacklevel=5)
            return None
        return self.source_path(key)

    # -- management (symgrad cache info / clear / prune / why) -----------------------------------
    def entries(self) -> list[Entry]:
        """Every complete entry (metadata present), newest use first."""
        found = []
        for meta_path in self._files("*.json"):
            key = meta_path.stem
            try:
                meta_info = meta_path.stat()
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                size = meta_info.st_size
                source = self.source_path(key)
                size += source.stat().st_size if source.exists() else 0
            except (OSError, ValueError):
                meta, size, meta_info = {}, 0, None
            found.append(Entry(key, meta if isinstance(meta, dict) else {}, size,
                               meta_info.st_mtime if meta_info else 0.0))
        return sorted(found, key=lambda e: -e.last_used)

    def _files(self, pattern: str) -> Iterator[Path]:
        if not self.directory.is_dir():
            return iter(())
        return (p for p in self.directory.glob(pattern) if _KEY.fullmatch(p.stem))

    def total_size(self) -> int:
        total = 0
        if self.directory.is_dir():
            for path in self.directory.iterdir():
                try:
                    total += path.lstat().st_size
                except OSError:
                    pass
        return total

    def remove(self, key: str) -> None:
        # Metadata first: no half-load. The C backend's kernels and library sit beside.
        for path in (self.meta_path(key), self.source_path(key),
                     self.directory / f"{key}.c", self.directory / f"{key}.so"):
            try:
                path.unlink()
            except FileNotFoundError:
                pass

    def clear(self) -> int:
        """Remove every entry and temporary file; the number of entries removed."""
        keys = {p.stem for p in self._files("*.json")} | {p.stem for p in self._files("*.py")}
        for key in keys:
            self.remove(key)
        self._remove_temporaries(max_age=0.0)
        return len(keys)

    def prune(self, max_size: int | None = None, older_than: float | None = None) -> list[str]:
        """Remove entries unused for `older_than` seconds, then the least recently used ones
        until the cache holds at most `max_size` bytes; also sources without metadata and
        temporary files of writers that died. The keys removed."""
        removed = []
        now = time.time()
        entries = self.entries()
        for entry in list(entries):
            if older_than is not None and now - entry.last_used > older_than:
                removed.append(entry.key)
                entries.remove(entry)
        if max_size is not None:
            total = sum(e.size for e in entries)
            for entry in reversed(list(entries)):  # least recently used first
                if total <= max_size:
                    break
                total -= entry.size
                removed.append(entry.key)
        for key in removed:
            self.remove(key)
        complete = {e.key for e in self.entries()}
        for source in self._files("*.py"):
            if source.stem not in complete and now - _mtime(source) > STALE_TEMPORARY_SECONDS:
                source.unlink(missing_ok=True)
        self._remove_temporaries(max_age=STALE_TEMPORARY_SECONDS)
        return removed

    def _remove_temporaries(self, max_age: float) -> None:
        if not self.directory.is_dir():
            return
        now = time.time()
        for path in self.directory.glob(".*.tmp"):
            if now - _mtime(path) >= max_age:
                path.unlink(missing_ok=True)


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


def _read_private(path: Path) -> str | None:
    """The text of a regular file of ours, never through a symbolic link; None if absent."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except OSError:
        return None  # absent, or a symbolic link (ELOOP): neither is an entry
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or (hasattr(os, "getuid")
                                               and info.st_uid != os.getuid()):
            return ""  # not ours: reads as damaged, never runs
        with os.fdopen(fd, "rb") as handle:
            fd = -1
            data = handle.read()
    finally:
        if fd >= 0:
            os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return ""


def _atomic_write(path: Path, text: str) -> None:
    import tempfile  # ~4 ms to import: only writers pay for it

    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:  # mkstemp makes it 0600
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def import_source(source: str, path: Path | None, module_name: str) -> ModuleType:
    """Check generated source (`safety.py`) and execute it as a module.

    Tracebacks point into real lines of `path` when the source lives in the cache; otherwise
    the source is registered with `linecache` under a `<symgrad:...>` name.
    """
    from .safety import check_source

    filename = str(path) if path is not None else f"<symgrad:{module_name}>"
    tree = check_source(source, filename)
    module = ModuleType(module_name)
    module.__file__ = str(path) if path is not None else None
    if path is None:
        import linecache

        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(tree, filename, "exec"), module.__dict__)
    return module


__all__ = ["CacheWarning", "DiskCache", "Entry", "GeneratedCodeError", "default_dir",
           "import_source", "sha256_text"]
