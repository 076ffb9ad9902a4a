"""Crash-safe file primitives: temp names, fsync, atomic replace, and OSError -> StorageError."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import orjson

from app.errors import StorageError

# Readers glob `*.parquet` and DuckDB's `*` also matches dot-files, so a temp name must not
# end in `.parquet`; the leading dot hides it from pyarrow.dataset and `ls`.
TEMP_SUFFIX = ".tmp"
_ERRNO_IN_TEXT = re.compile(r"errno[ =]?(\d+)|\[Errno (\d+)\]", re.IGNORECASE)
_EXPLAINED = {
    errno.ENOSPC: ("the disk is full", "free space there or point DATA_DIR elsewhere"),
    errno.EDQUOT: ("the disk quota is used up", "raise the quota or free space"),
    errno.EACCES: ("permission denied", "make it writable for this user (chmod/chown)"),
    errno.EPERM: ("operation not permitted", "make it writable (chmod/chown, chattr -i)"),
    errno.EROFS: ("the file system is read-only", "remount it read-write or move DATA_DIR"),
    errno.ENOTDIR: ("a part of the path is a file, not a directory", "move it or fix DATA_DIR"),
    errno.EIO: ("the disk reported an I/O error", "check the disk (dmesg) before going on"),
}


def temp_path_for(final: Path) -> Path:
    """The temporary name `final` is written under, in the same directory (same file system)."""
    return final.with_name(f".{final.name}{TEMP_SUFFIX}")


def os_error_code(exc: OSError) -> int | None:
    """The errno of an OSError, also when pyarrow only mentions it in the message."""
    if exc.errno:
        return exc.errno
    match = _ERRNO_IN_TEXT.search(str(exc))
    return int(match.group(1) or match.group(2)) if match else None


def storage_error(action: str, path: Path, exc: OSError, then: str = "then retry") -> StorageError:
    """One line naming what failed, where, why, and what to do about it."""
    code = os_error_code(exc)
    why, fix = _EXPLAINED.get(code or -1, (exc.strerror or str(exc), "check the disk and DATA_DIR"))
    where = exc.filename if isinstance(exc.filename, str) else path  # the exact path, if known
    return StorageError(f"cannot {action} {where}: {why}; {fix}, {then}")


def fsync_file(path: Path) -> None:
    """Flush a written file's data to disk (Linux fsync works on a read-only descriptor)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make renames and new names inside `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dir(path: Path, *, fsync: bool) -> None:
    """Create `path` (and parents) if missing; fsync the parent so the new name survives a crash."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True)
    if fsync:
        fsync_dir(path.parent)


def unlink_quietly(path: Path) -> None:
    """Remove a file if it is there; used on paths whose absence is the goal."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def write_file_atomically(
    path: Path, data: bytes, *, fsync: bool, temp: Path | None = None
) -> None:
    """Replace `path` with `data` in one step: readers see the old file or the new one, never half.

    The data goes to a temporary file in the same directory first. By default its name is unique
    (`.<name>.<random>.tmp`), so writers racing on one path never share it; a writer that holds
    a lock passes `temp_path_for(path)`, a name its recovery can find and remove after a crash.
    """
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
    if temp is None:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide reports and mails from their readers
        temp = Path(name)
    else:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            unlink_quietly(temp)
        raise
    if fsync:
        fsync_dir(path.parent)


def write_json_atomically(path: Path, value: Any, *, fsync: bool) -> None:
    """Replace `path` with `value` as JSON, under the fixed temp name `temp_path_for(path)`."""
    data = orjson.dumps(value, option=orjson.OPT_INDENT_2)
    write_file_atomically(path, data, fsync=fsync, temp=temp_path_for(path))
