"""Storage benchmark: simulated events through the Parquet writer (fsync on), then compaction.

Run: `.venv/bin/python bench/storage.py [WORKDIR] [--events N]`; prints one JSON object.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import click

from app.events import EVENT_TYPES, Event
from app.storage import EVENTS_SCHEMA, PartitionedParquetWriter, compact_date, events_table

RATE = 5_000  # events/s the issue asks about
MAX_WAIT_S = 30.0  # the sink also flushes a quiet stream after this long
CATEGORIES = ("electronics", "books", "fashion", "home", "toys", "sports", "beauty", "garden")
_START = datetime(2024, 6, 1, 12, tzinfo=UTC)


def simulated_batches(total: int, batch: int, seed: int = 7) -> Iterator[list[Event]]:
    """Events at RATE per second of event time, one Kafka offset each, in consumer batches."""
    rng = random.Random(seed)
    start_ms = int(_START.timestamp() * 1000)
    for first in range(0, total, batch):
        events = []
        for offset in range(first, min(first + batch, total)):
            kind = rng.choices(EVENT_TYPES, weights=(85, 10, 5))[0]
            product = rng.randrange(1, 101)
            events.append(
                Event(
                    event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    user_id=f"U{rng.randrange(1, 1001):04d}",
                    session_id=f"S{rng.randrange(1, 20_000):06d}",
                    product_id=f"P{product:03d}",
                    product_category=CATEGORIES[product % len(CATEGORIES)],
                    event_type=kind,
                    event_time_ms=start_ms + offset * 1000 // RATE + rng.randrange(-500, 500),
                    price=product * 3 + 0.99,
                    extra=None,
                    kafka_partition=0,
                    kafka_offset=offset,
                )
            )
        yield events


def files_per_hour(flush_events: int, partitions: int, bytes_per_event: float) -> dict[str, float]:
    """Files per hour when each partition flushes at `flush_events` events or MAX_WAIT_S."""
    per_partition_rate = RATE / partitions
    interval = min(flush_events / per_partition_rate, MAX_WAIT_S)
    events_per_file = per_partition_rate * interval
    return {
        "flush_events": flush_events,
        "partitions": partitions,
        "seconds_between_flushes": round(interval, 2),
        "files_per_hour": round(partitions * 3600 / interval),
        "mb_per_file": round(events_per_file * bytes_per_event / 1e6, 2),
    }


def run(workdir: Path, events: int = 1_000_000, batch: int = 5_000) -> dict[str, object]:
    """Write `events` in batches of `batch` with fsync, compact the day, report the figures."""
    root = workdir / "events"
    writer = PartitionedParquetWriter(root, "clickstream-events", EVENTS_SCHEMA, "event_time")
    build_s = write_s = 0.0
    for batch_events in simulated_batches(events, batch):
        began = time.perf_counter()
        table = events_table(batch_events)
        built = time.perf_counter()
        writer.write(0, batch_events[0].kafka_offset, batch_events[-1].kafka_offset, table)
        build_s += built - began
        write_s += time.perf_counter() - built
    files = list(root.glob("*/*.parquet"))
    on_disk = sum(path.stat().st_size for path in files)
    began = time.perf_counter()
    compacted = compact_date(root, date(2024, 6, 1), retire_grace_s=0.0)  # no readers here
    compact_s = time.perf_counter() - began
    after = sum(path.stat().st_size for path in root.glob("*/*.parquet"))
    per_event = on_disk / events
    return {
        "events": events,
        "batch": batch,
        "fsync": True,
        "write_rows_per_s": round(events / write_s),
        "table_build_plus_write_rows_per_s": round(events / (build_s + write_s)),
        "files_written": len(files),
        "bytes_per_event": round(per_event, 1),
        "mean_file_mb": round(on_disk / len(files) / 1e6, 3),
        "compaction_s": round(compact_s, 2),
        "files_after_compaction": compacted.files_after,
        "bytes_per_event_compacted": round(after / events, 1),
        "files_per_hour_at_5000_per_s": [
            files_per_hour(n, p, per_event) for n in (5_000, 50_000, 150_000) for p in (1, 6)
        ],
    }


@click.command()
@click.argument("workdir", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--events", type=int, default=1_000_000, show_default=True)
@click.option("--batch", type=int, default=5_000, show_default=True)
def main(workdir: Path | None, events: int, batch: int) -> None:
    """Benchmark the Parquet sink; WORKDIR defaults to a fresh temporary directory."""
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as scratch:
        result = run(workdir or Path(scratch), events, batch)
    click.echo(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
