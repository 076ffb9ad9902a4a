"""Advisory lock files (fcntl.flock): one scheduler at a time, writers and compaction apart.

The kernel drops a flock when its process dies, so a crash never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType

from app.errors import SchedulerLockedError

LOCKS_DIR = "_locks"


class LockFile:
    """Hold a flock on `path` (created if missing), exclusive unless `shared`.

    `blocking=False` raises SchedulerLockedError, naming the holder's pid, when it is taken.
    An exclusive holder writes its pid into the file for that message.
    """

    def __init__(
        self,
        path: Path,
        *,
        blocking: bool = False,
        shared: bool = False,
        purpose: str = "scheduler",
    ) -> None:
        self.path = path
        self.blocking = blocking
        self.shared = shared
        self.purpose = purpose
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        mode = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        try:
            fcntl.flock(fd, mode if self.blocking else mode | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            msg = (
                f"another {self.purpose} is already running (pid {holder}, lock file "
                f"{self.path}); stop it first, or use another DATA_DIR"
            )
            raise SchedulerLockedError(msg) from None
        except BaseException:
            os.close(fd)
            raise
        if not self.shared:  # shared holders would overwrite each other's pid
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> LockFile:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


@contextmanager
def date_dir_locks(root: Path, dir_names: Iterable[str], *, shared: bool) -> Iterator[None]:
    """Lock root/_locks/<date=YYYY-MM-DD>.lock for each name, in sorted order (no deadlock).

    Writers share a date (each touches only its own files); compaction holds it alone.
    """
    with ExitStack() as stack:
        for name in sorted(set(dir_names)):
            lock = root / LOCKS_DIR / f"{name}.lock"
            stack.enter_context(LockFile(lock, blocking=True, shared=shared))
        yield


def partition_lock(root: Path, topic: str, partition: int) -> Path:
    """The lock file that serialises writers of one (topic, partition), even across processes."""
    return root / LOCKS_DIR / f"{topic}-p{partition}.lock"
