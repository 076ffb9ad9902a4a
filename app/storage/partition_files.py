"""Exactly-once Parquet files per Kafka partition under root/date=YYYY-MM-DD/, crash-safe."""

from __future__ import annotations

import dataclasses
import logging
import os
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from app.storage.arrow import check_offsets, conform_to_schema, split_by_date
from app.storage.durable import (
    fsync_dir,
    fsync_file,
    make_dir,
    storage_error,
    temp_path_for,
    unlink_quietly,
)
from app.storage.locks import LockFile, date_dir_locks, partition_lock
from app.storage.progress_log import Intent, PartitionProgress, ProgressLog

logger = logging.getLogger(__name__)

COMPRESSION = "zstd"
ROW_GROUP_ROWS = 128 * 1024  # a few MB compressed: large enough to scan fast, small to skip
_UNACKNOWLEDGED = "and this batch stays unacknowledged until it is written (the worker retries)"


def date_dir_name(day: date) -> str:
    """The hive partition directory of a UTC calendar date."""
    return f"date={day.isoformat()}"


class PartitionedParquetWriter:
    """Writes rows of one Kafka topic into root/date=YYYY-MM-DD/ files, exactly once per offset.

    Protocol per write, under a per-partition lock and the locks of the dates it touches:
    record the intent {first, last, files} in root/_progress, write each file to a dot-temp
    name, fsync, rename, fsync the directories, then record the new durable end and drop the
    intent. `recover()` finishes an intent whose files all exist or deletes a partial set.
    """

    def __init__(
        self,
        root: Path,
        topic: str,
        schema: pa.Schema,
        time_column: str,
        *,
        fsync: bool = True,
        row_group_rows: int = ROW_GROUP_ROWS,
    ) -> None:
        if "/" in topic or not topic:
            msg = f"topic {topic!r} cannot name a file"
            raise ValueError(msg)
        field = schema.field(time_column)
        if not pa.types.is_timestamp(field.type) or field.type.tz is None:
            msg = f"{time_column} must be a timezone-aware timestamp column, not {field.type}"
            raise ValueError(msg)
        self.root = root
        self.topic = topic
        self.schema = schema
        self.time_column = time_column
        self.fsync = fsync
        self.row_group_rows = row_group_rows
        self._progress = ProgressLog(root, topic, fsync=fsync)

    def file_name(self, partition: int, first: int, last: int) -> str:
        return f"{self.topic}-p{partition}-{first:020d}-{last:020d}.parquet"

    def recover(self, partition: int) -> int:
        """Finish or undo an interrupted write for this partition, then return the highest Kafka
        offset that is durably stored for it (-1 when none). The consumer skips offsets <= it."""
        try:
            with LockFile(partition_lock(self.root, self.topic, partition), blocking=True):
                unlink_quietly(temp_path_for(self._progress.path(partition)))
                return self._settle(self._progress.load(partition)).durable_end
        except OSError as exc:
            error = storage_error("recover", self.root, exc, _UNACKNOWLEDGED)
            raise error from exc

    def write(
        self, partition: int, first_offset: int, last_offset: int, table: pa.Table
    ) -> list[Path]:
        """Durably store rows covering offsets [first_offset, last_offset] of this partition.

        Offsets already stored (a replay) are skipped, so calling twice never duplicates.
        Returns the files written; raises StorageError when the disk refuses, leaving nothing.
        """
        if first_offset > last_offset:
            msg = f"first_offset {first_offset} is after last_offset {last_offset}"
            raise ValueError(msg)
        table = conform_to_schema(table, self.schema)
        try:
            with LockFile(partition_lock(self.root, self.topic, partition), blocking=True):
                progress = self._settle(self._progress.load(partition))
                if last_offset <= progress.durable_end:
                    logger.debug(
                        "offsets %s..%s of p%s are stored already",
                        first_offset,
                        last_offset,
                        partition,
                    )
                    return []
                if first_offset <= progress.durable_end:
                    if "kafka_offset" not in table.schema.names:
                        msg = f"offsets up to {progress.durable_end} of p{partition} are stored"
                        raise ValueError(msg)
                    table = table.filter(pc.greater(table["kafka_offset"], progress.durable_end))
                    first_offset = progress.durable_end + 1
                check_offsets(table, partition, first_offset, last_offset)
                return self._write_locked(progress, first_offset, last_offset, table)
        except OSError as exc:
            error = storage_error("write to", self.root, exc, _UNACKNOWLEDGED)
            raise error from exc

    def _write_locked(
        self, progress: PartitionProgress, first: int, last: int, table: pa.Table
    ) -> list[Path]:
        parts = split_by_date(table, self.time_column)
        name = self.file_name(progress.partition, first, last)
        files = {day: self.root / date_dir_name(day) / name for day in parts}
        intent = Intent(first, last, tuple(str(p.relative_to(self.root)) for p in files.values()))
        with date_dir_locks(self.root, intent.dir_names, shared=True):
            if parts:
                self._progress.save(dataclasses.replace(progress, intent=intent))
                try:
                    for day, path in files.items():
                        self._write_file(path, parts[day], progress.partition, first, last)
                    if self.fsync:
                        for path in files.values():
                            fsync_dir(path.parent)
                except Exception:
                    self._undo_if_open(progress.partition, intent)
                    raise
            done = PartitionProgress(self.topic, progress.partition, last, None)
            try:
                self._progress.save(done)
            except Exception:
                self._undo_if_open(progress.partition, intent)
                raise
        logger.debug(
            "stored offsets %s..%s of %s p%s in %s files",
            first,
            last,
            self.topic,
            progress.partition,
            len(files),
        )
        return list(files.values())

    def _write_file(
        self, path: Path, table: pa.Table, partition: int, first: int, last: int
    ) -> None:
        metadata = {
            "clickstream.topic": self.topic,
            "clickstream.partition": str(partition),
            "clickstream.offsets": f"{first}-{last}",
        }
        temp = temp_path_for(path)
        try:
            make_dir(path.parent, fsync=self.fsync)
            pq.write_table(
                table.replace_schema_metadata(metadata),
                temp,
                compression=COMPRESSION,
                row_group_size=self.row_group_rows,
            )
            if self.fsync:
                fsync_file(temp)
            os.replace(temp, path)
        except OSError as exc:
            error = storage_error("write to", path, exc, _UNACKNOWLEDGED)
            raise error from exc

    def _settle(self, progress: PartitionProgress) -> PartitionProgress:
        """Bring an interrupted write to an end: keep it if every file made it, else remove it."""
        intent = progress.intent
        if intent is None:
            return progress
        with date_dir_locks(self.root, intent.dir_names, shared=True):
            paths = [self.root / name for name in intent.files]
            complete = all(path.exists() for path in paths)
            if not complete:
                self._remove_files(paths)
            elif self.fsync:
                for directory in {path.parent for path in paths}:
                    fsync_dir(directory)
            end = intent.last if complete else progress.durable_end
            settled = PartitionProgress(self.topic, progress.partition, end, None)
            self._progress.save(settled)
        logger.info(
            "%s p%s: %s interrupted write of offsets %s..%s",
            self.topic,
            progress.partition,
            "finished" if complete else "undid",
            intent.first,
            intent.last,
        )
        return settled

    def _undo_if_open(self, partition: int, intent: Intent) -> None:
        """After a failed write, delete its files unless the write was in fact recorded."""
        try:
            if self._progress.load(partition).intent == intent:
                self._remove_files([self.root / name for name in intent.files])
                self._progress.save(
                    dataclasses.replace(self._progress.load(partition), intent=None)
                )
        except Exception:
            logger.exception("cleanup after a failed write left an intent; recover() ends it")

    def _remove_files(self, paths: list[Path]) -> None:
        for path in paths:
            unlink_quietly(temp_path_for(path))
            unlink_quietly(path)
        if self.fsync:
            for directory in {path.parent for path in paths}:
                if directory.is_dir():
                    fsync_dir(directory)
