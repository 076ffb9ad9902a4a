"""Advisory locks (flock) that keep writers and compaction of one date directory apart."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

LOCKS_DIR = "_locks"


@contextmanager
def file_lock(path: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold a flock on `path` (created if missing); the kernel drops it if the process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextmanager
def date_dir_locks(root: Path, dir_names: Iterable[str], *, shared: bool) -> Iterator[None]:
    """Lock root/_locks/<date=YYYY-MM-DD>.lock for each name, in sorted order (no deadlock).

    Writers share a date (each touches only its own files); compaction holds it alone.
    """
    with ExitStack() as stack:
        for name in sorted(set(dir_names)):
            lock = root / LOCKS_DIR / f"{name}.lock"
            stack.enter_context(file_lock(lock, shared=shared))
        yield


def partition_lock(root: Path, topic: str, partition: int) -> Path:
    """The lock file that serialises writers of one (topic, partition), even across processes."""
    return root / LOCKS_DIR / f"{topic}-p{partition}.lock"
