"""Merging one day's small Parquet files into a few large ones, swapped in atomically."""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from app.errors import StorageError
from app.storage.dir_swap import PARKED_SUFFIX, exchange_directories
from app.storage.durable import TEMP_SUFFIX, fsync_dir, fsync_file, make_dir, storage_error
from app.storage.locks import date_dir_locks
from app.storage.partition_files import COMPRESSION, ROW_GROUP_ROWS, date_dir_name
from app.storage.progress_log import open_intents

logger = logging.getLogger(__name__)

STAGING_DIR = "_staging"  # depth 3 below the root: invisible to root/*/*.parquet and pyarrow
TARGET_ROWS = 1_000_000
# How long the swapped-out directory stays whole. A reader that opened the day directory just
# before the swap is still listing the old one; deleting its entries under that listing would
# let it see only the files carried over (fewer rows, no error). Listings take milliseconds.
RETIRE_GRACE_S = 5.0
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class CompactionResult:
    """What one compaction of one date directory did."""

    day: date
    files_before: int
    files_after: int
    merged_files: int
    merged_rows: int


def compact_date(
    root: Path,
    day: date,
    *,
    target_rows: int = TARGET_ROWS,
    fsync: bool = True,
    on_progress: ProgressCallback | None = None,
    retire_grace_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> CompactionResult:
    """Merge the small files of root/date=DAY into files of up to `target_rows` rows.

    The merged directory is built in root/_staging and exchanged with the live one in one
    atomic rename, under the date's lock, so writers wait and readers globbing
    root/*/*.parquet see every row exactly once before and after. Files of an unfinished
    write (an open intent in root/_progress) are carried over untouched for recover().
    A reader that listed the old files just before the swap may get "file not found" and
    should retry; it never sees a duplicate. The old files are deleted `retire_grace_s` after
    the swap, so that a listing under way then still sees all of them.

    `sleep(retire_grace_s)` is that wait; a test passes its own to act in the grace period,
    after the swap and before the old files go.
    """
    day_dir = root / date_dir_name(day)
    try:
        with date_dir_locks(root, [day_dir.name], shared=False):
            grace = RETIRE_GRACE_S if retire_grace_s is None else retire_grace_s
            _clear_leftovers(root / STAGING_DIR, day_dir, grace)
            result, retired = _compact_locked(root, day, day_dir, target_rows, fsync, on_progress)
        if retired is not None:
            sleep(grace)
            _remove_tree(retired)  # the old small files, now out of every reader's sight
    except OSError as exc:
        error = storage_error("compact", day_dir, exc)
        raise error from exc
    except pa.ArrowInvalid as exc:
        msg = f"cannot compact {day_dir}: a file is not readable Parquet ({exc}); move it away"
        raise StorageError(msg) from exc
    return result


def _compact_locked(
    root: Path,
    day: date,
    day_dir: Path,
    target_rows: int,
    fsync: bool,
    on_progress: ProgressCallback | None,
) -> tuple[CompactionResult, Path | None]:
    """Compact under the date's lock; returns the result and the swapped-out old directory."""
    if not day_dir.is_dir():
        return CompactionResult(day, 0, 0, 0, 0), None
    entries = sorted(p for p in day_dir.iterdir() if p.is_file() and not _is_temp(p))
    pinned = {root / name for intent in open_intents(root) for name in intent.files}
    rows = {p: pq.read_metadata(p).num_rows for p in entries if p.suffix == ".parquet"}
    small = [p for p, n in rows.items() if n < target_rows and p not in pinned]
    before = sum(1 for p in entries if p.suffix == ".parquet")
    if len(small) < 2:
        return CompactionResult(day, before, before, 0, 0), None
    staging = root / STAGING_DIR / f"{day_dir.name}.{uuid.uuid4().hex[:12]}"
    make_dir(staging, fsync=fsync)
    try:
        written = _merge(small, staging, target_rows, fsync, on_progress)
        for path in entries:
            if path not in small:
                os.link(path, staging / path.name)
        if written != sum(rows[p] for p in small):
            msg = (
                f"merged {written} rows from {len(small)} files of {day_dir} holding another count"
            )
            raise StorageError(msg)
        if fsync:
            fsync_dir(staging)
        exchange_directories(staging, day_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if fsync:
        fsync_dir(root)
        fsync_dir(staging.parent)
    after = sum(1 for p in day_dir.glob("*.parquet"))
    logger.info("compacted %s: %s files -> %s (%s rows merged)", day_dir, before, after, written)
    return CompactionResult(day, before, after, len(small), written), staging


def _merge(
    sources: list[Path],
    staging: Path,
    target_rows: int,
    fsync: bool,
    on_progress: ProgressCallback | None,
) -> int:
    """Stream `sources` into staging/compacted-*.parquet; returns the number of rows written."""
    schema = pq.read_schema(sources[0]).remove_metadata()
    sink = _RollingParquetWriter(staging, schema, target_rows)
    try:
        for done, source in enumerate(sources, start=1):
            if not pq.read_schema(source).remove_metadata().equals(schema):
                msg = f"{source} has another schema than {sources[0]}; move it out and retry"
                raise StorageError(msg)
            with pq.ParquetFile(source) as parquet:
                for batch in parquet.iter_batches(batch_size=64 * 1024):
                    sink.write(batch)
            if on_progress is not None:
                on_progress(done, len(sources))
    finally:
        sink.close()
    if fsync:
        for path in sink.outputs:
            fsync_file(path)
    return sink.rows


class _RollingParquetWriter:
    """Writes batches into numbered files of at most `target_rows` rows each."""

    def __init__(self, directory: Path, schema: pa.Schema, target_rows: int) -> None:
        self.directory = directory
        self.schema = schema.with_metadata(
            {"clickstream.compacted_at": datetime.now(UTC).isoformat()}
        )
        self.target_rows = target_rows
        self.token = uuid.uuid4().hex[:12]
        self.outputs: list[Path] = []
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None

    def write(self, batch: pa.RecordBatch) -> None:
        while batch.num_rows:
            if self._writer is None:
                self.outputs.append(
                    self.directory / f"compacted-{self.token}-{len(self.outputs):04d}.parquet"
                )
                self._writer = pq.ParquetWriter(
                    self.outputs[-1], self.schema, compression=COMPRESSION
                )
            chunk = batch.slice(0, self.target_rows - self.rows % self.target_rows)
            self._writer.write_table(pa.Table.from_batches([chunk]), ROW_GROUP_ROWS)
            self.rows += chunk.num_rows
            batch = batch.slice(chunk.num_rows)
            if self.rows % self.target_rows == 0:
                self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _clear_leftovers(staging_root: Path, day_dir: Path, grace_s: float) -> None:
    """Remove what a crashed compaction of this day left in the staging area (all invisible).

    A directory changed within `grace_s` may be another compaction's old directory in its
    grace period: it is left for that compaction to delete.
    """
    for leftover in sorted(staging_root.glob(f"{day_dir.name}.*")):
        if leftover.name.endswith(PARKED_SUFFIX) and not day_dir.exists():
            logger.warning("restoring %s from an interrupted two-rename swap", day_dir)
            os.rename(leftover, day_dir)
            continue
        if time.time() - leftover.stat().st_mtime < grace_s:
            continue
        logger.info("removing leftover %s of an interrupted compaction", leftover)
        _remove_tree(leftover)


def _remove_tree(path: Path) -> None:
    """Delete a directory tree; one that another compaction deleted first is fine."""

    def gone_already(function: object, name: str, exc_info: tuple[type, object, object]) -> None:
        if not issubclass(exc_info[0], FileNotFoundError):
            raise exc_info[1]  # type: ignore[misc]

    shutil.rmtree(path, onerror=gone_already)


def _is_temp(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX)
