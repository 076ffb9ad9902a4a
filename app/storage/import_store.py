"""Adding imported events to DATA_DIR/events: same day partitions and schema, never twice.

Rows are split by the UTC date of their event time, like the sink's. A row whose event_id is
already stored for that date (an earlier import of the same file, or the stream's copy of
the same event) is left out, as is a second copy within one batch. New rows go to a file of
their own, `import-<file hash>-<first line>-<last line>-<token>.parquet`, written to a
dot-temp name, fsynced and renamed, under the date's shared lock (compaction waits). One
import runs at a time per store (an exclusive lock), so two of them cannot both add a row.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from app.events import Event
from app.storage.arrow import events_table, split_by_date
from app.storage.durable import fsync_dir, fsync_file, make_dir, temp_path_for
from app.storage.locks import LOCKS_DIR, LockFile, date_dir_locks
from app.storage.partition_files import COMPRESSION, date_dir_name
from app.storage.schema import EVENTS_SCHEMA


@dataclass(frozen=True, slots=True)
class Added:
    """What one batch did: rows written, rows already stored (or repeated), files written."""

    written: int
    already_stored: int
    files: tuple[Path, ...]


@contextmanager
def import_lock(events_root: Path) -> Iterator[None]:
    """Hold the store's import lock: one import at a time."""
    with LockFile(events_root / LOCKS_DIR / "import.lock", blocking=True):
        yield


def add_events(events_root: Path, events: Sequence[Event], tag: str, fsync: bool = True) -> Added:
    """Store the events not stored yet; `tag` names the files (source and line range).

    Call under `import_lock`. Raises OSError when the disk refuses, duckdb.Error when a
    stored file of the same date cannot be read.
    """
    if not events:
        return Added(0, 0, ())
    written, skipped, files = 0, 0, []
    for day, table in split_by_date(events_table(events), "event_time").items():
        with date_dir_locks(events_root, [date_dir_name(day)], shared=True):
            fresh = _not_stored(events_root, day, table)
            skipped += table.num_rows - fresh.num_rows
            if fresh.num_rows:
                files.append(_write(events_root / date_dir_name(day), fresh, tag, fsync))
                written += fresh.num_rows
    return Added(written, skipped, tuple(files))


def _not_stored(events_root: Path, day: date, table: pa.Table) -> pa.Table:
    """The rows of `table` whose event_id the date holds nowhere, each id once."""
    stored = sorted(
        str(p) for p in (events_root / date_dir_name(day)).glob("*.parquet")
        if not p.name.startswith(".")
    )  # fmt: skip
    numbered = table.append_column("row", pa.array(range(table.num_rows), pa.int64()))
    anti = "ANTI JOIN read_parquet($stored) AS s USING (event_id)" if stored else ""
    with duckdb.connect() as con:
        con.register("batch", numbered)
        result = con.sql(
            f"""SELECT * EXCLUDE (row) FROM batch {anti}
            QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY row) = 1
            ORDER BY row""",
            params={"stored": stored} if stored else None,
        ).to_arrow_table()
    return result.cast(EVENTS_SCHEMA)


def _write(folder: Path, table: pa.Table, tag: str, fsync: bool) -> Path:
    make_dir(folder, fsync=fsync)
    path = folder / f"import-{tag}-{uuid.uuid4().hex[:8]}.parquet"
    temp = temp_path_for(path)
    try:
        pq.write_table(table, temp, compression=COMPRESSION)
        if fsync:
            fsync_file(temp)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(folder)
    return path
