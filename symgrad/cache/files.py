"""The cache's files: a private directory checked on an open descriptor, files read without
following links or blocking on FIFOs and never past a size cap, and atomic writes."""
from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Iterator

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_READ = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0)  # a FIFO must not block a load


class Damaged(Exception):
    """An entry that must not be used; the message says why."""


def directory_problem(info: os.stat_result, directory: Path) -> str | None:
    """Why a directory with this (l)stat may not hold the cache; None when it may."""
    if stat.S_ISLNK(info.st_mode):
        return "it is a symbolic link (loading cached code runs it: the directory must be " \
               "private)"
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a directory"
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return f"it is owned by another user (uid {info.st_uid})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return (f"it is writable by group or others (mode {stat.filemode(info.st_mode)}; "
                f"`chmod 700 {directory}` makes it private)")
    if not info.st_mode & stat.S_IWUSR:
        return "it is read-only"
    return None


@contextlib.contextmanager
def open_directory(directory: Path) -> Iterator[int | Path]:
    """The cache directory opened once for a load (never through a symbolic link) and checked
    on the open descriptor, so that its files are read from the directory that was checked;
    the path itself where descriptor-relative opens are not available."""
    if not _DIRECTORY or os.open not in os.supports_dir_fd:
        yield directory
        return
    fd = os.open(directory, os.O_RDONLY | _DIRECTORY | _NOFOLLOW)
    try:
        problem = directory_problem(os.fstat(fd), directory)
        if problem:
            raise Damaged(f"its directory changed while in use: {problem}")
        yield fd
    finally:
        os.close(fd)


def read_private(name: str, directory: int | Path, limit: int) -> bytes | None:
    """The bytes of a regular file of ours, never through a symbolic link, at most `limit`;
    None if absent. Anything else (a link, another user's file, too large) is `Damaged`."""
    try:
        if isinstance(directory, int):
            fd = os.open(name, _READ, dir_fd=directory)
        else:
            fd = os.open(os.path.join(directory, name), _READ)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise Damaged(f"its file {name} cannot be opened as a plain file "
                      f"({error.strerror or error})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or (hasattr(os, "getuid")
                                               and info.st_uid != os.getuid()):
            raise Damaged(f"its file {name} is not a regular file of this user")
        if info.st_size > limit:
            raise Damaged(f"its file {name} is {info.st_size} bytes (at most {limit})")
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise Damaged(f"its file {name} is over {limit} bytes")
    return data


def mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


def unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass  # absent, or not a file of ours to remove (a directory): left as it is


def atomic_write(path: Path, data: bytes) -> None:
    import tempfile  # ~4 ms to import: only writers pay for it

    if path.is_dir() and not path.is_symlink():
        path.rmdir()  # an empty directory where a damaged entry's file was: ours to replace
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:  # mkstemp makes it 0600
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
