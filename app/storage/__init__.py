"""Parquet storage: the documented schemas, atomic partition files, compaction."""
