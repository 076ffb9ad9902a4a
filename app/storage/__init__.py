"""Parquet storage: the documented schemas, exactly-once partition files, compaction."""

from app.storage.arrow import alerts_table, events_table
from app.storage.compaction import CompactionResult, compact_date
from app.storage.partition_files import PartitionedParquetWriter, date_dir_name
from app.storage.schema import ALERTS_DIR, ALERTS_SCHEMA, EVENTS_DIR, EVENTS_SCHEMA

__all__ = [
    "ALERTS_DIR",
    "ALERTS_SCHEMA",
    "EVENTS_DIR",
    "EVENTS_SCHEMA",
    "CompactionResult",
    "PartitionedParquetWriter",
    "alerts_table",
    "compact_date",
    "date_dir_name",
    "events_table",
]
