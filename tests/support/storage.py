"""Helpers shared by the storage tests: simulated events and independent read-back."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from app.events import Event
from app.storage import EVENTS_SCHEMA, PartitionedParquetWriter, events_table

TOPIC = "clickstream-events"
_CRASH_STEPS = ("replace", "fsync", "mkdir", "unlink")


def ms(text: str) -> int:
    """Epoch milliseconds of an ISO-8601 UTC time."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def make_event(offset: int, time_ms: int, partition: int = 0) -> Event:
    return Event(
        event_id=f"e-{partition}-{offset}",
        user_id=f"u{offset % 7}",
        session_id=None if offset % 3 else f"s{offset}",
        product_id=f"p{offset % 5}",
        product_category="books" if offset % 2 else None,
        event_type=("view", "add_to_cart", "purchase")[offset % 3],
        event_time_ms=time_ms,
        price=None if offset % 4 else 9.5,
        extra='{"campaign":"x"}' if offset % 5 == 0 else None,
        kafka_partition=partition,
        kafka_offset=offset,
    )


def spread_events(
    count: int, partition: int = 0, start: str = "2024-03-01T22:00:00"
) -> list[Event]:
    """`count` events, one per offset, whose times jump back and forth across three days."""
    base = ms(start)
    return [
        make_event(offset, base + (offset * 7919 % 30) * 3_600_000 + offset, partition)
        for offset in range(count)
    ]


def events_writer(root: Path, *, fsync: bool = False) -> PartitionedParquetWriter:
    return PartitionedParquetWriter(root, TOPIC, EVENTS_SCHEMA, "event_time", fsync=fsync)


def write_batches(
    writer: PartitionedParquetWriter, events: Sequence[Event], size: int, partition: int = 0
) -> None:
    """Write `events` (consecutive offsets) in batches of `size` offsets."""
    for start in range(0, len(events), size):
        batch = events[start : start + size]
        first, last = batch[0].kafka_offset, batch[-1].kafka_offset
        writer.write(partition, first, last, events_table(batch))


def read_rows(root: Path, columns: str = "*") -> list[tuple[object, ...]]:
    """Every row readers see through the documented glob, independently of our code."""
    if not any(root.glob("*/*.parquet")):
        return []
    query = f"select {columns} from read_parquet('{root}/*/*.parquet', hive_partitioning=true)"
    relation = duckdb.sql(query)
    assert relation is not None
    return relation.fetchall()


def offsets_seen(root: Path, partition: int = 0) -> list[int]:
    rows = read_rows(root, "kafka_partition, kafka_offset")
    return sorted(offset for part, offset in rows if part == partition)  # type: ignore[misc]


def hidden_leftovers(root: Path) -> list[Path]:
    """Temp files or staging directories anywhere under the root."""
    found: Iterable[Path] = root.rglob("*") if root.exists() else []
    return [
        p for p in found if p.name.endswith(".tmp") or (p.parent.name == "_staging" and p.exists())
    ]


class SimulatedCrash(BaseException):
    """Stands for the process dying: not an Exception, so no cleanup handler runs."""


@contextmanager
def crash_at(step: int) -> Iterator[dict[str, int]]:
    """Raise SimulatedCrash instead of the `step`-th file-system step (replace, fsync, ...)."""
    done = {"steps": 0}

    def counted(real: Callable[..., Any]) -> Callable[..., Any]:
        def step_or_crash(*args: Any, **kwargs: Any) -> Any:
            if done["steps"] == step:
                raise SimulatedCrash
            done["steps"] += 1
            return real(*args, **kwargs)

        return step_or_crash

    with pytest.MonkeyPatch.context() as patch:
        for name in _CRASH_STEPS:
            patch.setattr(os, name, counted(getattr(os, name)))
        yield done
