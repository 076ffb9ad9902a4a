"""The wire rows carry an event's id only when its producer supplied one, within the size bound."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from agents.ingest_router import IngestRouter
from app.events import EventParser
from app.product_batches import ProductBatch
from app.windowing.spec import WindowSpec

NOW_MS = 1_795_766_460_000


@dataclass
class Record:
    offset: int
    value: bytes | None


def routed_rows(values: list[object], topic: str = "clicks") -> list[list[object]]:
    router = IngestRouter(EventParser(262144, 3600), WindowSpec.from_seconds(600, 60), 60_000, 1)
    records = [Record(7 + i, orjson.dumps(v)) for i, v in enumerate(values)]
    batches = router.route(topic, 3, records, NOW_MS).batches
    return [row for batch in batches.values() for row in batch.rows]


def view(**fields: object) -> dict[str, object]:
    return {"user_id": "u1", "product_id": "p1", "event_type": "view",
            "timestamp": NOW_MS - 5000, **fields}  # fmt: skip


def test_a_supplied_id_rides_as_a_sixth_element_and_a_missing_one_adds_nothing() -> None:
    rows = routed_rows([view(event_id="a-1"), view(), view(event_id=""), [view(), view()]])
    assert [row[5:] for row in rows] == [["a-1"], [], [], [], []]


def test_only_the_parsers_own_name_for_this_position_counts_as_absent() -> None:
    """An id that merely looks like a position name (another topic, partition or offset) was
    supplied by the producer and is carried; the parser's name for the record's own position
    (offsets 7, 8, ... here) is not."""
    look_alikes = ["clicks-3-70", "orders-3-8", "clicks-4-9", "clicks-3-10-x", "clicks-3-1"]
    own_names = ["clicks-3-12", "clicks-3-13-0"]
    rows = routed_rows([view(event_id=i) for i in [*look_alikes, *own_names]])
    assert [row[5:] for row in rows] == [*([i] for i in look_alikes), [], []]


def test_rows_with_long_ids_still_split_under_the_message_bound() -> None:
    long_id = "\U0001f4a5" * 256  # 1 KiB of UTF-8
    rows = [["p" * 256, 0, NOW_MS, (9 << 20) | i, 9, f"{long_id}{i}"] for i in range(3000)]
    batch = ProductBatch(0, 1, NOW_MS, rows)
    chunks = batch.chunks(4000, max_bytes=200_000)
    assert len(chunks) > 1
    assert all(len(chunk.encode()) <= 200_000 for chunk in chunks)
    assert [row for chunk in chunks for row in ProductBatch.decode(chunk.encode()).rows] == rows
