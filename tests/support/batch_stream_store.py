"""Events stored the way the worker stores them, and an independent replay of them.

`store_as_sink` parses each event with the worker's parser and writes it with the sink's own
writer, partition by partition in offset order, so the Parquet store looks exactly as after
a real run. `processing_order` and `DedupOracle` recount in plain Python what the backtest
must find: the stream's rule (tests/support/window_oracle.py) fed in the backtest's documented
order.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import orjson

from app.events import EventParser
from app.storage.arrow import alerts_table, events_table
from app.storage.partition_files import PartitionedParquetWriter
from app.storage.schema import ALERTS_SCHEMA, EVENTS_SCHEMA
from tests.support.window_oracle import WindowOracle, timestamp_ms

TOPIC = "clickstream-events"
FAR_FUTURE_MS = 4_102_444_800_000  # 2100: no test event is ahead of this "clock"
Placed = list[tuple[int, dict[str, object]]]


def store_as_sink(placed: Placed, data_dir: Path, flush_every: int = 700) -> None:
    """Write (partition, event) pairs to data_dir/events as the ingest stage would."""
    parser = EventParser(262_144, 3600)
    writer = PartitionedParquetWriter(data_dir / "events", TOPIC, EVENTS_SCHEMA, "event_time",
                                      fsync=False)  # fmt: skip
    by_partition: dict[int, list[dict[str, object]]] = defaultdict(list)
    for partition, event in placed:
        by_partition[partition].append(event)
    for partition, events in by_partition.items():
        parsed = []
        for offset, event in enumerate(events):
            valid, rejected = parser.parse_message(
                orjson.dumps(event), TOPIC, partition, offset, FAR_FUTURE_MS
            )
            assert not rejected, rejected
            parsed += valid
        for first in range(0, len(parsed), flush_every):
            chunk = parsed[first : first + flush_every]
            writer.write(partition, chunk[0].kafka_offset, chunk[-1].kafka_offset,
                         events_table(chunk))  # fmt: skip


def store_alerts(alerts: Iterable[tuple[str, int]], data_dir: Path, size_ms: int = 600_000) -> None:
    """Alerts for (product, window start ms) as the alert sink writes them, one file per alert
    and partition 0, so that deleting one file removes exactly one alert."""
    writer = PartitionedParquetWriter(data_dir / "alerts", "flash-sale-alerts", ALERTS_SCHEMA,
                                      "window_start", fsync=False)  # fmt: skip
    for offset, (product, start) in enumerate(sorted(alerts)):
        row = {"alert_id": f"{product}:{start}", "product_id": product, "window_start": start,
               "window_end": start + size_ms, "views": 101, "add_to_cart": 0, "purchases": 0,
               "detected_at": start + size_ms // 2, "kafka_partition": 0, "kafka_offset": offset}  # fmt: skip
        writer.write(0, offset, offset, alerts_table([row]))


def processing_order(placed: Placed, block: int = 64, first_offset: int = 0) -> Placed:
    """The backtest's interleaving: each partition's events in offset order, in runs of
    `block` offsets (offsets counted from `first_offset`: 1 for imported lines); runs ordered
    by the newest event time their partition had seen by the end of the run, then by
    partition, then by offset."""
    by_partition: dict[int, list[dict[str, object]]] = defaultdict(list)
    for partition, event in placed:
        by_partition[partition].append(event)
    runs = []
    for partition, events in by_partition.items():
        newest: int | None = None
        cuts = [0] + [n for n in range(1, len(events)) if (first_offset + n) % block == 0]
        for first, end in zip(cuts, [*cuts[1:], len(events)], strict=True):
            run = events[first:end]
            times = [timestamp_ms(e["timestamp"]) for e in run]
            newest = max(times) if newest is None else max(newest, *times)
            runs.append((newest, partition, first, run))
    runs.sort(key=lambda item: item[:3])
    return [(partition, event) for _, partition, _, run in runs for event in run]


class DedupOracle(WindowOracle):
    """WindowOracle that counts a supplied event_id once: its first copy that counts at all.

    Every copy still moves its partition's watermark, as in the worker's ingest stage.
    """

    def __init__(self, **kwargs: int) -> None:
        super().__init__(**kwargs)
        self.counted_ids: set[str] = set()

    def feed(self, partition: int, event: dict[str, object]) -> None:
        event_id = event.get("event_id")
        if event_id is None:
            super().feed(partition, event)
            return
        if event_id in self.counted_ids:
            t = timestamp_ms(event["timestamp"])
            self.max_seen[partition] = max(self.max_seen.get(partition, t), t)
            return
        late_before = self.late
        super().feed(partition, event)
        if self.late == late_before:
            self.counted_ids.add(str(event_id))


def shop_events(
    seed: int, partitions: int, count: int, start_ms: int, *, disorder: float = 0.0
) -> Placed:
    """Traffic of a few products, a few of them busy enough to alert at low thresholds; a
    share `disorder` arrives up to 20 minutes late (some past the lateness, some not)."""
    rng = random.Random(seed)
    placed = []
    for n in range(count):
        t = start_ms + n * 300 + rng.randrange(2000)
        if rng.random() < disorder:
            t -= rng.randrange(1_200_000)
        kind = rng.choices(["view", "add_to_cart", "purchase"], [80, 10, 10])[0]
        event = {"user_id": f"u{rng.randrange(300)}",
                 "product_id": f"p{min(int(rng.paretovariate(1.0)), 8)}", "event_type": kind,
                 "timestamp": datetime.fromtimestamp(t / 1000, UTC).isoformat(timespec="milliseconds")}  # fmt: skip
        placed.append((rng.randrange(partitions), event))
    return placed
