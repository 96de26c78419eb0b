"""The disk cache: generated modules as readable text, written atomically, signed, checked.

An entry is `<key>.py` (the generated source), `<key>.json` (metadata: the source's sha256, the
key's components, what was compiled, the entry's signature) and, for a backend that compiles,
more files named in the metadata (`artefacts`: suffix -> sha256). Nothing is pickled. Files are
written to a temporary file in the same directory, fsynced and moved into place with
`os.replace`, the metadata last, so a killed writer leaves at most a stray temporary file or a
source without metadata, and neither loads.

On load, in this order: the sizes are capped, the sha256s must match (the corruption check),
the signature must be this user's HMAC over every file of the entry (`signing.py`: an entry
symgrad did not write never loads), and the backend's own grammar check (`safety.py` for numpy)
must accept the source before it runs. Any failure or exception while reading an entry is
damage: one warning, and the caller rebuilds and overwrites it.

Loading cached source is code execution, so the directory must be private: it is created 0700
(entries 0600), and a directory that is a symbolic link, belongs to another user, is writable by
group or others, is read-only, or would hold the signing key is not used (memory only, one
warning). It is checked again, cheaply, on every load and store: a directory swapped or opened
up while a process runs stops being used then.
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
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping

from . import signing
from .files import Damaged, directory_problem as _directory_problem
from .files import atomic_write as _atomic_write, mtime as _mtime
from .files import open_directory as _open_directory, read_private as _read_private
from .files import unlink as _unlink
from ..errors import GeneratedCodeError

ENV_VAR = "SYMGRAD_CACHE_DIR"
_KEY = re.compile(r"[0-9a-f]{64}")
_SUFFIX = re.compile(r"[a-z0-9]{1,8}")  # an artefact's file suffix (`so`, `ptx`)
STALE_TEMPORARY_SECONDS = 3600  # a temporary file this old belongs to a writer that died
MAX_SOURCE_BYTES = 64 << 20  # as safety.MAX_SOURCE_CHARS: a larger file is damage, unread
MAX_META_BYTES = 1 << 20  # metadata holds hashes and short strings (a few KiB)
MAX_ARTEFACT_BYTES = 256 << 20
SIGNATURE_FIELD = "hmac"  # ("signature" is the call signature, `x=f64[5]`)


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


def metadata_bytes(meta: Mapping[str, Any]) -> bytes:
    """The metadata as signed: canonical JSON of every field but the signature."""
    unsigned = {k: v for k, v in meta.items() if k != SIGNATURE_FIELD}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode("utf-8")


def entry_parts(source: str, meta: Mapping[str, Any],
                artefacts: Mapping[str, bytes] | None = None) -> dict[str, bytes]:
    """Every file of an entry by name, as `signing.sign_entry` covers them."""
    parts = {"source": source.encode("utf-8"), "metadata": metadata_bytes(meta)}
    for suffix, data in (artefacts or {}).items():
        parts[f"artefact.{suffix}"] = data
    return parts


@dataclass
class Entry:
    """One cache entry as listed by `symgrad cache info`."""

    key: str
    meta: dict[str, Any]
    size: int  # bytes of its files
    last_used: float  # the metadata's mtime: set on write, refreshed on every load


@dataclass
class LoadedEntry:
    """An entry read, verified and signed by this user: its source, metadata, artefacts."""

    source: str
    meta: dict[str, Any]
    artefacts: dict[str, bytes] = field(default_factory=dict)


_SHARED: dict[str, "DiskCache"] = {}
_SHARED_LOCK = threading.Lock()


class DiskCache:
    def __init__(self, directory: Path | str | None = None):
        self.directory = Path(directory) if directory is not None else default_dir()
        self._lock = threading.Lock()
        self._warned: set[str] = set()  # each problem is warned about once per process

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

    def artefact_path(self, key: str, suffix: str) -> Path:
        return self.directory / f"{key}.{suffix}"

    # -- safety --------------------------------------------------------------------------------
    def warn_once(self, topic: str, message: str) -> None:
        with self._lock:
            if topic in self._warned:
                return
            self._warned.add(topic)
        warnings.warn(message, CacheWarning, stacklevel=5)

    def usable(self, create: bool = True) -> bool:
        """Whether entries may be read and written now (checked on every load and store:
        an lstat and an access call); warns once per problem when not."""
        problem = self.problem(create)
        if problem:
            self.warn_once(f"unusable: {problem}", f"symgrad cache directory {self.directory} "
                           f"is not used: {problem}; compiling in memory only")
        return problem is None

    def problem(self, create: bool = False) -> str | None:
        """Why the directory may not be used (None when it may); creates it when asked."""
        try:
            info = os.lstat(self.directory)
        except (FileNotFoundError, NotADirectoryError):
            if not create:
                return "it does not exist"
            try:
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                info = os.lstat(self.directory)
            except OSError as error:
                return f"it cannot be created ({error.strerror or error})"
        except OSError as error:
            return f"it cannot be read ({error.strerror or error})"
        problem = _directory_problem(info, self.directory)
        if problem is None and not os.access(self.directory, os.W_OK | os.X_OK):
            problem = "it is read-only"
        return problem or self._key_problem(create)

    def _key_problem(self, create: bool) -> str | None:
        path = signing.key_path()
        try:
            inside = Path(os.path.abspath(path)).is_relative_to(os.path.abspath(self.directory))
        except (OSError, ValueError):
            inside = False
        if inside:
            return (f"the signing key {path} would be inside it (anyone who can write the cache "
                    "must not hold the key; set SYMGRAD_KEY_FILE elsewhere)")
        if not create and not os.path.lexists(path):
            return None  # made on first use; `symgrad cache info` does not make it
        try:
            signing.user_key(path)
        except signing.KeyUnavailable as error:
            return (f"entries cannot be signed: {error} (SYMGRAD_KEY_FILE names another "
                    "place for the key: a private file outside the cache)")
        return None

    # -- read ----------------------------------------------------------------------------------
    def load(self, key: str) -> tuple[str, dict[str, Any]] | None:
        """The entry's (source, metadata) if present, intact and signed; None otherwise."""
        entry = self.load_entry(key)
        return None if entry is None else (entry.source, entry.meta)

    def load_entry(self, key: str) -> LoadedEntry | None:
        """The entry with its artefacts, or None. A missing entry is a plain miss; any problem
        or exception while reading one is damage: one warning, None (the caller rebuilds)."""
        if not _KEY.fullmatch(key) or not self.usable():
            return None
        try:
            return self._read_entry(key)
        except Damaged as error:
            self.warn_damaged(key, str(error))
        except Exception as error:  # noqa: BLE001 -- whatever went wrong, it is damage
            self.warn_damaged(key, f"reading it failed ({type(error).__name__}: "
                                   f"{str(error)[:200]})")
        return None

    def _read_entry(self, key: str) -> LoadedEntry | None:
        with _open_directory(self.directory) as directory:
            meta_text = _read_private(f"{key}.json", directory, MAX_META_BYTES)
            if meta_text is None:
                return None  # never written, or a writer died before finishing: a plain miss
            source = _read_private(f"{key}.py", directory, MAX_SOURCE_BYTES)
            meta = json.loads(meta_text.decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("key") != key:
                raise Damaged("its metadata is not an entry's")
            if source is None:
                raise Damaged("its source is missing")
            text = source.decode("utf-8")
            if meta.get("source_sha256") != hashlib.sha256(source).hexdigest():
                raise Damaged("its source does not match its recorded sha256 (truncated, "
                              "edited or corrupted)")
            artefacts = {}
            listed = meta.get("artefacts", {})
            if not isinstance(listed, dict):
                raise Damaged("its list of artefacts is not one")
            for suffix, digest in listed.items():
                if not isinstance(suffix, str) or not _SUFFIX.fullmatch(suffix) \
                        or suffix in ("py", "json"):
                    raise Damaged(f"it names an artefact {suffix!r}")
                data = _read_private(f"{key}.{suffix}", directory, MAX_ARTEFACT_BYTES)
                if data is None or hashlib.sha256(data).hexdigest() != digest:
                    raise Damaged(f"its .{suffix} file is missing or does not match its sha256")
                artefacts[suffix] = data
        if not signing.verify_entry(entry_parts(text, meta, artefacts),
                                    meta.get(SIGNATURE_FIELD)):
            raise Damaged("it is not signed with this user's key (symgrad did not write it, "
                          "or wrote it with another key)")
        try:
            os.utime(self.meta_path(key))  # last use, for `symgrad cache prune --older-than`
        except OSError:
            pass
        return LoadedEntry(text, meta, artefacts)

    def warn_damaged(self, key: str, why: str) -> None:
        """One warning per entry and problem, however often the process meets it."""
        self.warn_once(f"damaged {key}: {why}", f"symgrad cache entry {key[:16]}... in "
                       f"{self.directory} is not used: {why}; rebuilding it")

    # -- write ---------------------------------------------------------------------------------
    def store(self, key: str, source: str, meta: dict[str, Any],
              artefacts: Mapping[str, bytes] | None = None) -> Path | None:
        """Write the entry atomically and signed; its source path, or None when memory only.

        `artefacts` (suffix -> bytes) are further files of the entry, such as a compiled
        library: covered by the signature and checked on load like the source."""
        if not _KEY.fullmatch(key) or not self.usable():
            return None
        artefacts = dict(artefacts or {})
        for suffix in artefacts:
            if not _SUFFIX.fullmatch(suffix) or suffix in ("py", "json"):
                raise ValueError(f"bad artefact suffix {suffix!r}")
        meta = {**meta, "key": key, "source_sha256": sha256_text(source)}
        meta.pop(SIGNATURE_FIELD, None)
        if artefacts:
            meta["artefacts"] = {s: hashlib.sha256(d).hexdigest() for s, d in artefacts.items()}
        meta[SIGNATURE_FIELD] = signing.sign_entry(entry_parts(source, meta, artefacts))
        meta_text = (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode("utf-8")
        source_bytes = source.encode("utf-8")
        if len(source_bytes) > MAX_SOURCE_BYTES or len(meta_text) > MAX_META_BYTES or any(
                len(data) > MAX_ARTEFACT_BYTES for data in artefacts.values()):
            self.warn_once(f"too large {key}", f"symgrad cache entry {key[:16]}... is larger "
                           "than a cache entry may be; compiled in memory only")
            return None
        try:
            _atomic_write(self.source_path(key), source_bytes)
            for suffix, data in sorted(artefacts.items()):
                _atomic_write(self.artefact_path(key, suffix), data)
            _atomic_write(self.meta_path(key), meta_text)
        except OSError as error:
            self.warn_once("write", f"symgrad could not write its cache entry in "
                           f"{self.directory} ({error}); compiling in memory only (warned "
                           "once; later failures are silent)")
            return None
        return self.source_path(key)

    def adopt(self, key: str, source: str, meta: dict[str, Any],
              check: Callable[[str, str], Any]) -> Path | None:
        """Code received from elsewhere (a Dask worker is sent the client's generated module):
        checked against the grammar of the backend that wrote it (`check`), and only then
        stored, signed with this user's own key. Raises `GeneratedCodeError` when the grammar
        refuses it."""
        check(source, f"<received entry {key[:16]}>")
        return self.store(key, source, meta)

    # -- management (symgrad cache info / clear / prune / why) -----------------------------------
    def entries(self) -> list[Entry]:
        """Every entry with metadata, newest use first. A damaged one is listed with empty
        metadata (so `prune` can remove it); nothing in an entry can make this raise."""
        found = []
        for key, paths in self._files_by_key().items():
            meta_path = self.meta_path(key)
            if meta_path not in paths:
                continue
            meta: Any = {}
            size, last_used = 0, 0.0
            try:
                info = meta_path.lstat()
                last_used = info.st_mtime
                size = sum(_size(p) for p in paths)
                if stat.S_ISREG(info.st_mode) and info.st_size <= MAX_META_BYTES:
                    meta = json.loads(meta_path.read_bytes().decode("utf-8"))
            except Exception:  # noqa: BLE001 -- a damaged entry is still listed
                meta = {}
            found.append(Entry(key, meta if isinstance(meta, dict) else {}, size, last_used))
        return sorted(found, key=lambda e: -e.last_used)

    def _files_by_key(self) -> dict[str, list[Path]]:
        """The directory's files by entry key (`<key>.py`, `<key>.json`, `<key>.so`), read in
        one listing."""
        grouped: dict[str, list[Path]] = {}
        try:
            names = os.listdir(self.directory) if self.directory.is_dir() else []
        except OSError:
            return grouped
        for name in sorted(names):
            key, _, suffix = name.partition(".")
            if _KEY.fullmatch(key) and (suffix in ("py", "json") or _SUFFIX.fullmatch(suffix)):
                grouped.setdefault(key, []).append(self.directory / name)
        return grouped

    def total_size(self) -> int:
        try:
            paths = list(self.directory.iterdir()) if self.directory.is_dir() else []
        except OSError:
            return 0
        return sum(_size(p) for p in paths)

    def remove(self, key: str, paths: list[Path] | None = None) -> None:
        """Remove an entry's files, its metadata first (never a half-loadable entry)."""
        paths = paths if paths is not None else self._files_by_key().get(key, [])
        first = [self.meta_path(key), self.source_path(key)]
        for path in first + [p for p in paths if p not in first]:
            _unlink(path)

    def clear(self) -> int:
        """Remove every entry and temporary file; the number of entries removed."""
        files = self._files_by_key()
        for key, paths in files.items():
            self.remove(key, paths)
        self._remove_temporaries(max_age=0.0)
        return len(files)

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
        files = self._files_by_key()
        for key in removed:
            self.remove(key, files.pop(key, []))
        for key, paths in files.items():  # no metadata: a writer that died long ago
            if self.meta_path(key) not in paths and all(
                    now - _mtime(p) > STALE_TEMPORARY_SECONDS for p in paths):
                self.remove(key, paths)
        self._remove_temporaries(max_age=STALE_TEMPORARY_SECONDS)
        return removed

    def _remove_temporaries(self, max_age: float) -> None:
        try:
            if not self.directory.is_dir():
                return
            temporaries = list(self.directory.glob(".*.tmp"))
        except OSError:
            return
        now = time.time()
        for path in temporaries:
            if now - _mtime(path) >= max_age:
                _unlink(path)


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0


def import_source(source: str, path: Path | None, module_name: str,
                  check: Callable[[str, str], Any]) -> ModuleType:
    """Check generated source against the grammar of the backend that wrote it (`check`, for
    numpy `backends/numpy/safety.check_source`) and execute the checked tree as a module.

    Tracebacks point into real lines of `path` when the source lives in the cache; otherwise
    the source is registered with `linecache` under a `<symgrad:...>` name.
    """
    filename = str(path) if path is not None else f"<symgrad:{module_name}>"
    tree = check(source, filename)
    module = ModuleType(module_name)
    module.__file__ = str(path) if path is not None else None
    if path is None:
        import linecache

        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(tree, filename, "exec"), module.__dict__)
    return module


__all__ = ["CacheWarning", "Damaged", "DiskCache", "Entry", "GeneratedCodeError", "LoadedEntry",
           "default_dir", "entry_parts", "import_source", "sha256_text"]
