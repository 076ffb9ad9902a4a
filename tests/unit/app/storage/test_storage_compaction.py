"""Compaction: fewer files, every row exactly once, invisible staging, safe beside writers."""

from __future__ import annotations

import errno
import os
import threading
from datetime import date
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from app.errors import StorageError
from app.storage import compact_date, events_table
from app.storage import compaction as compaction_module
from app.storage import dir_swap as dir_swap_module
from app.storage.command import compact_command
from app.storage.compaction import STAGING_DIR
from tests.support.storage import (
    SimulatedCrash,
    crash_at,
    events_writer,
    hidden_leftovers,
    make_event,
    ms,
    offsets_seen,
    read_rows,
    spread_events,
    write_batches,
)

DAY = date(2024, 3, 2)


@pytest.fixture(autouse=True)
def _no_retire_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """Old directories go at once here; the tests about readers set the grace themselves."""
    monkeypatch.setattr(compaction_module, "RETIRE_GRACE_S", 0.0)


def test_compaction_merges_small_files_and_keeps_every_row_once(tmp_path: Path) -> None:
    events = spread_events(600)
    write_batches(events_writer(tmp_path), events, 9)
    day_dir = tmp_path / "date=2024-03-02"
    before = read_rows(tmp_path, "event_id, event_time, kafka_offset, date")

    result = compact_date(tmp_path, DAY, target_rows=100)

    assert result.files_before == len(list(day_dir.glob("*.parquet"))) + result.merged_files - (
        result.files_after
    )
    assert result.merged_rows == sum(e.event_time.date() == DAY for e in events)
    assert result.files_after == -(-result.merged_rows // 100)  # full files of 100, then the rest
    assert sorted(read_rows(tmp_path, "event_id, event_time, kafka_offset, date")) == sorted(before)
    assert offsets_seen(tmp_path) == list(range(600))
    assert hidden_leftovers(tmp_path) == []
    assert not list((tmp_path / STAGING_DIR).iterdir())


def test_compacting_again_finds_nothing_to_do(tmp_path: Path) -> None:
    write_batches(events_writer(tmp_path), spread_events(200), 10)
    compact_date(tmp_path, DAY, target_rows=30)
    again = compact_date(tmp_path, DAY, target_rows=30)
    assert again.merged_files == 0 and again.files_before == again.files_after
    assert compact_date(tmp_path, date(2020, 1, 1)).files_before == 0


def test_files_of_an_interrupted_write_survive_compaction_for_recover(tmp_path: Path) -> None:
    events = spread_events(60)
    writer = events_writer(tmp_path, fsync=True)
    write_batches(writer, events[:10], 3)
    with crash_at(9), pytest.raises(SimulatedCrash):  # two of three files are in place
        writer.write(0, 10, 39, events_table(events[10:40]))
    assert 10 < len(offsets_seen(tmp_path)) < 40

    for day in (date(2024, 3, 1), DAY, date(2024, 3, 3)):
        compact_date(tmp_path, day)
    restarted = events_writer(tmp_path, fsync=True)
    durable = restarted.recover(0)
    write_batches(restarted, events[durable + 1 :], 8)

    assert durable == 9
    assert offsets_seen(tmp_path) == list(range(60))
    assert hidden_leftovers(tmp_path) == []


def test_leftovers_of_a_crashed_compaction_are_cleared_or_restored(tmp_path: Path) -> None:
    write_batches(events_writer(tmp_path), spread_events(100), 10)
    staging = tmp_path / STAGING_DIR
    (staging / "date=2024-03-02.dead").mkdir(parents=True)
    (staging / "date=2024-03-02.dead" / "half.parquet").write_bytes(b"PAR1")
    day_dir = tmp_path / "date=2024-03-03"
    day_dir.rename(staging / "date=2024-03-03.x.parked")  # a crash inside the two-rename swap

    compact_date(tmp_path, DAY)
    compact_date(tmp_path, date(2024, 3, 3))

    assert offsets_seen(tmp_path) == list(range(100))
    assert list(staging.iterdir()) == []


def test_a_failed_compaction_changes_nothing_readers_see(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_batches(events_writer(tmp_path), spread_events(100), 10)
    files = sorted(tmp_path.glob("date=2024-03-02/*.parquet"))

    def disk_error(*_args: object) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(compaction_module, "exchange_directories", disk_error)
    with pytest.raises(StorageError, match=r"cannot compact .*date=2024-03-02: the disk reported"):
        compact_date(tmp_path, DAY)

    assert sorted(tmp_path.glob("date=2024-03-02/*.parquet")) == files
    assert offsets_seen(tmp_path) == list(range(100))
    assert hidden_leftovers(tmp_path) == []


def test_a_listing_begun_before_the_swap_still_sees_every_old_file(tmp_path: Path) -> None:
    # A reader (DuckDB's glob) lists a directory through a handle opened before the swap. Had
    # the old files been deleted under it, it would see only the carried-over ones: rows
    # missing, no error.
    write_batches(events_writer(tmp_path), spread_events(300), 10)
    day_dir = tmp_path / "date=2024-03-02"
    old_names = sorted(os.listdir(day_dir))
    waits: list[float] = []

    def slow_reader(grace_s: float) -> None:
        """Compaction's wait between the swap and deleting the old files: the reader lists."""
        waits.append(grace_s)
        assert sorted(os.listdir(day_dir)) != old_names  # the swap is done
        assert sorted(os.listdir(handle)) == old_names

    handle = os.open(day_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        compact_date(tmp_path, DAY, retire_grace_s=2.0, sleep=slow_reader)
    finally:
        os.close(handle)
    assert waits == [2.0]
    assert offsets_seen(tmp_path) == list(range(300))
    assert hidden_leftovers(tmp_path) == []


def test_without_renameat2_the_two_rename_swap_still_keeps_rows_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NoRenameat2:
        def __init__(self, *_args: object, **_kwargs: object) -> None:
            pass

    monkeypatch.setattr(dir_swap_module.ctypes, "CDLL", NoRenameat2)
    write_batches(events_writer(tmp_path), spread_events(100), 10)
    result = compact_date(tmp_path, DAY)
    assert result.merged_files > 1 and result.files_after == 1
    assert offsets_seen(tmp_path) == list(range(100))
    assert hidden_leftovers(tmp_path) == []


def test_writers_compaction_and_readers_together_never_lose_or_double(tmp_path: Path) -> None:
    total, batch, partitions = 2000, 25, (0, 1)
    noon = ms("2024-03-02T12:00:00")
    counts: list[int] = []
    failures: list[BaseException] = []
    finished: list[int] = []

    def write_all(partition: int) -> None:
        events = [make_event(o, noon + o, partition) for o in range(total)]
        try:
            write_batches(events_writer(tmp_path), events, batch, partition)
        except BaseException as exc:
            failures.append(exc)
        finally:
            finished.append(partition)

    def writing() -> bool:
        return len(finished) < len(partitions) and not failures

    def compact_repeatedly() -> None:
        try:
            while writing():
                compact_date(tmp_path, DAY, target_rows=1000, fsync=False, retire_grace_s=0.5)
        except BaseException as exc:
            failures.append(exc)

    def read_repeatedly() -> None:
        glob = f"{tmp_path}/*/*.parquet"
        query = f"select count(*), count(distinct event_id) from read_parquet('{glob}')"
        while writing():
            try:
                rows, distinct = duckdb.sql(query).fetchall()[0]
            except duckdb.Error:
                continue  # a file listed just before a swap is gone: readers retry
            if rows != distinct or (counts and rows < counts[-1]):
                failures.append(AssertionError(f"{rows} rows, {distinct} ids after {counts[-1:]}"))
            counts.append(rows)

    threads = [threading.Thread(target=write_all, args=(p,)) for p in partitions]
    threads += [threading.Thread(target=f) for f in (compact_repeatedly, read_repeatedly)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    compact_date(tmp_path, DAY, target_rows=1000)
    for partition in partitions:
        assert offsets_seen(tmp_path, partition) == list(range(total))
    assert len(list((tmp_path / "date=2024-03-02").glob("*.parquet"))) == 4
    assert hidden_leftovers(tmp_path) == []


def test_the_compact_command_reports_what_it_did(tmp_path: Path) -> None:
    write_batches(events_writer(tmp_path / "events"), spread_events(300), 10)
    runner = CliRunner()

    done = runner.invoke(
        compact_command, ["--date", "2024-03-02", "--data-dir", str(tmp_path), "--what", "both"]
    )

    assert done.exit_code == 0, done.output
    assert "events 2024-03-02:" in done.output and "-> 1 (" in done.output
    assert "alerts 2024-03-02: nothing to compact (0 files)." in done.output
    assert offsets_seen(tmp_path / "events") == list(range(300))
    shown = runner.invoke(compact_command, ["--help"])
    assert "Examples:" in shown.output and "--date" in shown.output
    refused = runner.invoke(compact_command, ["--date", "yesterday"])
    assert refused.exit_code == 2
