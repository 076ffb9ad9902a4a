"""Advisory locks (flock) that keep writers and compaction of one date directory apart."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

LOCKS_DIR = "_locks"


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if missing); the kernel drops it if we die."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextmanager
def date_dir_locks(root: Path, dir_names: Iterable[str]) -> Iterator[None]:
    """Lock root/_locks/<date=YYYY-MM-DD>.lock for each name, in sorted order (no deadlock)."""
    with ExitStack() as stack:
        for name in sorted(set(dir_names)):
            stack.enter_context(exclusive_lock(root / LOCKS_DIR / f"{name}.lock"))
        yield


def partition_lock(root: Path, topic: str, partition: int) -> Path:
    """The lock file that serialises writers of one (topic, partition), even across processes."""
    return root / LOCKS_DIR / f"{topic}-p{partition}.lock"
