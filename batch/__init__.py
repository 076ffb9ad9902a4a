"""The daily summary: DuckDB queries over Parquet, rendering, email and the scheduler."""
