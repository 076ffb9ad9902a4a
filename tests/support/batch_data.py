"""Deterministic clickstream test data: events and alerts as dicts, as JSONL and as sink Parquet.

The Parquet layout mirrors the sink (docs/design.md, "Event, alert and storage formats"): DATA_DIR/events/date=YYYY-MM-DD/
by the UTC date of event time, zstd, files named after partition and offset range.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from app.storage.schema import ALERTS_SCHEMA, EVENTS_SCHEMA

CATEGORIES = ("electronics", "fashion", "home", "books", "sports", "toys", "beauty")
EVENT_WEIGHTS = (("view", 70), ("add_to_cart", 20), ("purchase", 10))


def category_of(product_index: int) -> str | None:
    # Every 17th product has no category, as an optional field allows.
    if product_index % 17 == 16:
        return None
    return CATEGORIES[product_index % len(CATEGORIES)]


def iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def generate_events(
    start: datetime, end: datetime, *, count: int, users: int, products: int, seed: int
) -> list[dict[str, object]]:
    """`count` events between `start` and `end`, skewed so products and users differ."""
    rng = random.Random(seed)
    span_ms = int((end - start).total_seconds() * 1000)
    types = [name for name, _ in EVENT_WEIGHTS]
    weights = [w for _, w in EVENT_WEIGHTS]
    events: list[dict[str, object]] = []
    for i in range(count):
        moment = start + timedelta(milliseconds=rng.randrange(span_ms))
        product = min(int(rng.paretovariate(1.2)) - 1, products - 1)
        user = rng.randrange(users)
        events.append(
            {
                "event_id": f"evt-{seed}-{i:07d}",
                "user_id": f"user_{user:05d}",
                "session_id": f"sess_{user:05d}_{moment.hour // 6}",
                "product_id": f"prod_{product:04d}",
                "product_category": category_of(product),
                "event_type": rng.choices(types, weights)[0],
                "timestamp": iso_ms(moment),
                "price": round(rng.uniform(1, 500), 2),
            }
        )
    events.sort(key=lambda e: str(e["timestamp"]))
    return events


def event_at(moment: datetime, user: str, event_type: str, product: str = "prod_edge",
             event_id: str | None = None) -> dict[str, object]:  # fmt: skip
    """One hand-placed event, for boundary cases."""
    return {
        "event_id": event_id or f"edge-{user}-{event_type}-{iso_ms(moment)}",
        "user_id": user,
        "session_id": None,
        "product_id": product,
        "product_category": "edge",
        "event_type": event_type,
        "timestamp": iso_ms(moment),
        "price": None,
    }


def generate_alerts(
    start: datetime, end: datetime, *, count: int, seed: int
) -> list[dict[str, object]]:
    rng = random.Random(seed)
    alerts = []
    for _ in range(count):
        window_start = start + timedelta(
            minutes=rng.randrange(int((end - start).total_seconds() // 60))
        )
        product = f"prod_{rng.randrange(8):04d}"
        alerts.append(
            {
                "alert_id": f"{product}-{int(window_start.timestamp())}",
                "product_id": product,
                "window_start": iso_ms(window_start),
                "window_end": iso_ms(window_start + timedelta(minutes=10)),
                "views": rng.randrange(101, 400),
                "add_to_cart": rng.randrange(0, 30),
                "purchases": rng.randrange(0, 5),
                "detected_at": iso_ms(window_start + timedelta(minutes=10, seconds=5)),
            }
        )
    return alerts


def write_jsonl(rows: Iterable[dict[str, object]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return path


def _utc(text: object) -> datetime:
    return datetime.fromisoformat(str(text))


def write_events_parquet(
    events: list[dict[str, object]], data_dir: Path, *, files_per_date: int = 2
) -> list[Path]:
    """Partition by the UTC date of event time; offsets number the events in order."""
    by_date: dict[str, list[tuple[int, dict[str, object]]]] = defaultdict(list)
    for offset, event in enumerate(events):
        by_date[_utc(event["timestamp"]).astimezone(UTC).date().isoformat()].append((offset, event))
    written = []
    for day, rows in by_date.items():
        size = -(-len(rows) // files_per_date)
        for chunk_start in range(0, len(rows), size):
            chunk = rows[chunk_start : chunk_start + size]
            table = pa.table(
                {
                    "event_id": [e["event_id"] for _, e in chunk],
                    "user_id": [e["user_id"] for _, e in chunk],
                    "session_id": [e["session_id"] for _, e in chunk],
                    "product_id": [e["product_id"] for _, e in chunk],
                    "product_category": [e["product_category"] for _, e in chunk],
                    "event_type": [e["event_type"] for _, e in chunk],
                    "event_time": [_utc(e["timestamp"]) for _, e in chunk],
                    "price": [e["price"] for _, e in chunk],
                    "extra": [None for _ in chunk],
                    "kafka_partition": [0 for _ in chunk],
                    "kafka_offset": [offset for offset, _ in chunk],
                },
                schema=EVENTS_SCHEMA,
            )
            name = f"clickstream-events-0-{chunk[0][0]:012d}-{chunk[-1][0]:012d}.parquet"
            written.append(_write(table, data_dir / "events" / f"date={day}" / name))
    return written


def write_alerts_parquet(alerts: list[dict[str, object]], data_dir: Path) -> list[Path]:
    """Partition by the UTC date of detection (the sink's choice may differ; the report copes)."""
    by_date: dict[str, list[dict[str, object]]] = defaultdict(list)
    for alert in alerts:
        by_date[_utc(alert["detected_at"]).date().isoformat()].append(alert)
    written = []
    for day, rows in by_date.items():
        columns: dict[str, list[object]] = {
            name: [row[name] for row in rows]
            for name in ("alert_id", "product_id", "views", "add_to_cart", "purchases")
        }
        for name in ("window_start", "window_end", "detected_at"):
            columns[name] = [_utc(row[name]) for row in rows]
        columns["kafka_partition"] = [0] * len(rows)
        columns["kafka_offset"] = list(range(len(rows)))
        table = pa.table({f.name: columns[f.name] for f in ALERTS_SCHEMA}, schema=ALERTS_SCHEMA)
        written.append(
            _write(
                table, data_dir / "alerts" / f"date={day}" / f"flash-sale-alerts-0-{day}.parquet"
            )
        )
    return written


def _write(table: pa.Table, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")
    return path


def flash_sale(
    product: str, start: datetime, views: int, purchases: int
) -> list[dict[str, object]]:
    """A burst over four minutes: `views` views, then `purchases` purchases at its end."""
    step = timedelta(minutes=4) / max(views, 1)
    burst = [event_at(start + i * step, f"fan_{i % 40}", "view", product) for i in range(views)]
    end = start + timedelta(minutes=4)
    burst += [event_at(end + timedelta(seconds=i), f"fan_{i}", "purchase", product)
              for i in range(purchases)]  # fmt: skip
    return [{**event, "product_category": "flash"} for event in burst]


def oracle_alerts(alerts: dict[tuple[str, int], tuple[int, int, int]]) -> list[dict[str, object]]:
    """The window oracle's alerts in the ALERTS_TOPIC shape, detected 5 minutes into the window."""
    out = []
    for (product, start_ms), (views, carts, purchases) in sorted(alerts.items()):
        start = datetime.fromtimestamp(start_ms / 1000, UTC)
        out.append({
            "alert_id": f"{product}:{start_ms}", "product_id": product,
            "window_start": iso_ms(start), "window_end": iso_ms(start + timedelta(minutes=10)),
            "views": views, "add_to_cart": carts, "purchases": purchases,
            "detected_at": iso_ms(start + timedelta(minutes=5)),
        })  # fmt: skip
    return out
