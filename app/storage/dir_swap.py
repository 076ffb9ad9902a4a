"""Swapping two directories in one atomic step (Linux renameat2 RENAME_EXCHANGE)."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP}
PARKED_SUFFIX = ".parked"


def exchange_directories(a: Path, b: Path) -> None:
    """Atomically swap the names `a` and `b` (both must exist, on one file system).

    Readers resolving `b` see all of the old or all of the new content, never neither. Where
    the kernel, libc or file system lacks RENAME_EXCHANGE (not Linux, old kernels, some FUSE),
    fall back to two renames: for a moment `b` is missing, so readers may see the day empty
    (never duplicated) and should retry.
    """
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is not None:
        renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                              ctypes.c_uint]  # fmt: skip
        result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
        if result == 0:
            return
        code = ctypes.get_errno()
        if code not in _UNSUPPORTED:
            raise OSError(code, os.strerror(code), str(b))
    logger.warning("atomic directory exchange is not available here; swapping %s in two renames", b)
    parked = a.with_name(a.name + PARKED_SUFFIX)  # a crash may leave it; compaction restores it
    os.rename(b, parked)
    try:
        os.rename(a, b)
    except OSError:
        os.rename(parked, b)
        raise
    os.rename(parked, a)
