"""The disk cache: generated modules as readable text, written atomically, checked on load.

An entry is `<key>.py` (the generated source) and `<key>.json` (metadata with the source's
sha256). Entries are written to a temporary file in the same directory, fsynced and moved into
place with `os.replace`, source first and metadata last: an entry whose metadata is missing or
does not match its source is never executed; it is rebuilt with one warning.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

ENV_VAR = "SYMGRAD_CACHE_DIR"


class CacheWarning(UserWarning):
    """The disk cache could not be used as intended; symgrad carried on without it."""


def default_dir() -> Path:
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "symgrad"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class DiskCache:
    def __init__(self, directory: Path | None = None):
        self.directory = Path(directory) if directory is not None else default_dir()
        self._usable: bool | None = None

    # -- paths ---------------------------------------------------------------------------------
    def source_path(self, key: str) -> Path:
        return self.directory / f"{key}.py"

    def meta_path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    # -- safety --------------------------------------------------------------------------------
    def usable(self) -> bool:
        """Create the directory private to the user; refuse one that others could write."""
        if self._usable is not None:
            return self._usable
        self._usable = False
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            warnings.warn(f"symgrad cache directory {self.directory} cannot be created "
                          f"({error}); compiling in memory only", CacheWarning, stacklevel=4)
            return False
        problem = _unsafe_reason(self.directory)
        if problem:
            warnings.warn(f"symgrad cache directory {self.directory} is not used: {problem}; "
                          "compiling in memory only", CacheWarning, stacklevel=4)
            return False
        if not os.access(self.directory, os.W_OK | os.X_OK):
            warnings.warn(f"symgrad cache directory {self.directory} is not writable; "
                          "compiling in memory only", CacheWarning, stacklevel=4)
            return False
        self._usable = True
        return True

    # -- read ----------------------------------------------------------------------------------
    def load(self, key: str) -> tuple[str, dict[str, Any]] | None:
        """The entry's (source, metadata) if present and intact; None otherwise."""
        if not self.usable():
            return None
        try:
            meta_text = self.meta_path(key).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError:
            return None
        try:
            meta = json.loads(meta_text)
            source = self.source_path(key).read_text(encoding="utf-8")
            intact = meta.get("key") == key and meta.get("source_sha256") == sha256_text(source)
        except (OSError, ValueError, AttributeError):
            intact = False
        if not intact:
            warnings.warn(f"symgrad cache entry {key[:16]}... in {self.directory} is corrupt "
                          "or incomplete; rebuilding it", CacheWarning, stacklevel=4)
            return None
        return source, meta

    # -- write ---------------------------------------------------------------------------------
    def store(self, key: str, source: str, meta: dict[str, Any]) -> Path | None:
        if not self.usable():
            return None
        meta = {**meta, "key": key, "source_sha256": sha256_text(source)}
        try:
            _atomic_write(self.source_path(key), source)
            _atomic_write(self.meta_path(key), json.dumps(meta, indent=2, sort_keys=True) + "\n")
        except OSError as error:
            warnings.warn(f"symgrad could not write its cache entry ({error}); compiled "
                          "in memory only", CacheWarning, stacklevel=4)
            return None
        return self.source_path(key)


def _unsafe_reason(directory: Path) -> str | None:
    if directory.is_symlink():
        return "it is a symbolic link"
    info = directory.stat()
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return "it is owned by another user"
    if info.st_mode & 0o022:
        return "it is writable by group or others"
    return None


def _atomic_write(path: Path, text: str) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def import_source(source: str, path: Path | None, module_name: str) -> ModuleType:
    """Execute generated source as a module; tracebacks point into `path` when it exists."""
    if path is not None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        code = compile(source, str(path), "exec")
    else:
        module = ModuleType(module_name)
        filename = f"<symgrad:{module_name}>"
        import linecache

        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        code = compile(source, filename, "exec")
    module.__file__ = str(path) if path is not None else None
    exec(code, module.__dict__)
    sys.modules.setdefault(module_name, module)
    return module
