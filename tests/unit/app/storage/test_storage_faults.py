"""Disk full, permission and path faults: a clear StorageError, nothing visible, then recovery.

Tests run as root, where chmod 0o555 stops nothing. Unwritable directories are made with
`chattr +i` (immutable; needs CAP_LINUX_IMMUTABLE, which root has) or, for other users,
chmod 0o555. ENOTDIR (a file where a directory should be) fails for everyone. Disk full
is injected by making the Parquet and JSON writes raise OSError(ENOSPC).
"""

from __future__ import annotations

import errno
import itertools
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from app.errors import StorageError
from app.storage import events_table
from app.storage import progress_log as progress_module
from tests.support.storage import (
    events_writer,
    hidden_leftovers,
    offsets_seen,
    read_rows,
    spread_events,
    write_batches,
)

EVENTS = spread_events(60)  # the batch 10..39 spans three date directories


def disk_full(*_args: Any, **_kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def assert_fixed_writer_stores_everything_once(root: Path) -> None:
    writer = events_writer(root, fsync=True)
    durable = writer.recover(0)
    write_batches(writer, EVENTS[durable + 1 :], 11)
    assert offsets_seen(root) == list(range(60))
    assert read_rows(root, "count(distinct event_id)") == [(60,)]
    assert hidden_leftovers(root) == []


def test_disk_full_mid_write_raises_a_clear_error_and_leaves_nothing(tmp_path: Path) -> None:
    writer = events_writer(tmp_path, fsync=True)
    write_batches(writer, EVENTS[:10], 10)
    real_write_table, real_json = pq.write_table, progress_module.write_json_atomically
    calls: list[Path] = []

    def fill_disk_on_second_file(table: Any, where: Path, **kwargs: Any) -> None:
        calls.append(where)
        real_write_table(table, where, **kwargs)
        if len(calls) >= 2:  # the second file is half written when the disk fills up
            disk_full()

    def json_unless_full(*args: Any, **kwargs: Any) -> None:
        if len(calls) >= 2:  # nor can the undo note itself in the progress record
            disk_full()
        real_json(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pq, "write_table", fill_disk_on_second_file)
        patch.setattr(progress_module, "write_json_atomically", json_unless_full)
        with pytest.raises(StorageError) as raised:
            writer.write(0, 10, 39, events_table(EVENTS[10:40]))

    message = str(raised.value)
    assert "\n" not in message
    assert str(calls[1].parent) in message
    assert "disk is full" in message and "free space" in message
    assert offsets_seen(tmp_path) == list(range(10))  # the first file was taken back
    assert hidden_leftovers(tmp_path) == []
    assert_fixed_writer_stores_everything_once(tmp_path)


def test_a_transient_error_at_any_step_leaves_a_consistent_state(tmp_path: Path) -> None:
    for step in itertools.count():
        root = tmp_path / f"fault-{step}"
        writer = events_writer(root, fsync=True)
        write_batches(writer, EVENTS[:10], 10)
        with fail_once_at(step) as failed, suppress(StorageError):
            writer.write(0, 10, 39, events_table(EVENTS[10:40]))
        if not failed:
            break
        stored = offsets_seen(root)
        assert stored in (list(range(10)), list(range(40)))
        assert hidden_leftovers(root) == []
        assert_fixed_writer_stores_everything_once(root)
    assert step > 15


@contextmanager
def fail_once_at(step: int) -> Iterator[list[int]]:
    """The `step`-th file-system call fails once with EIO; yields whether it did."""
    failed: list[int] = []
    count = itertools.count()

    def counted(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if next(count) == step:
                failed.append(step)
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            return real(*args, **kwargs)

        return call

    with pytest.MonkeyPatch.context() as patch:
        for name in ("replace", "fsync", "mkdir", "unlink", "open"):
            patch.setattr(os, name, counted(getattr(os, name)))
        patch.setattr(pq, "write_table", counted(pq.write_table))
        yield failed


def test_a_path_under_a_file_fails_clearly_then_works_once_fixed(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("not a directory")
    root = blocker / "events"

    with pytest.raises(StorageError, match="not a directory") as raised:
        write_batches(events_writer(root, fsync=True), EVENTS[:10], 10)
    assert str(root) in str(raised.value)

    blocker.unlink()
    assert_fixed_writer_stores_everything_once(root)


@contextmanager
def unwritable(directory: Path) -> Iterator[None]:
    """Make `directory` refuse new entries, also for root; skip the test where we cannot."""
    directory.mkdir(parents=True, exist_ok=True)
    as_root = os.geteuid() == 0
    chattr = shutil.which("chattr")
    if as_root and chattr is None:
        pytest.skip("root ignores chmod and chattr is not installed")
    lock = [chattr or "", "+i", str(directory)] if as_root else None
    if lock is not None:
        if subprocess.run(lock, capture_output=True, check=False).returncode != 0:
            pytest.skip("this file system does not support chattr +i")
    else:
        directory.chmod(0o555)
    try:
        yield
    finally:
        if lock is not None:
            subprocess.run([chattr or "", "-i", str(directory)], check=True)
        else:
            directory.chmod(0o755)


def test_a_read_only_data_dir_is_reported_and_nothing_is_written(tmp_path: Path) -> None:
    root = tmp_path / "events"
    with unwritable(root), pytest.raises(StorageError, match=r"not permitted|denied") as raised:
        write_batches(events_writer(root, fsync=True), EVENTS[:10], 10)
    assert str(root) in str(raised.value)
    assert list(root.iterdir()) == []
    assert_fixed_writer_stores_everything_once(root)


def test_an_unwritable_date_dir_takes_back_the_other_dates_of_the_write(tmp_path: Path) -> None:
    writer = events_writer(tmp_path, fsync=True)
    write_batches(writer, EVENTS[:10], 10)
    last_day = tmp_path / "date=2024-03-03"

    with unwritable(last_day), pytest.raises(StorageError) as raised:
        writer.write(0, 10, 39, events_table(EVENTS[10:40]))  # 03-01 and 03-02 succeed first

    assert str(last_day) in str(raised.value)
    assert offsets_seen(tmp_path) == list(range(10))
    assert hidden_leftovers(tmp_path) == []
    assert_fixed_writer_stores_everything_once(tmp_path)
