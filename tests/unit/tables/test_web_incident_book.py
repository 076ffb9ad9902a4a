"""Incident records from the topic: tolerant parsing, newest state per incident, the order."""

from __future__ import annotations

from types import SimpleNamespace

import orjson

from app.incident_records import SKIPPED, IncidentRecordReader
from tables.incident_feed import IncidentBook
from tables.web.incidents import incident_json
from tests.support.picture_input import MIN, T0, incident


def record(value: bytes | None) -> SimpleNamespace:
    return SimpleNamespace(value=value, topic="incidents", partition=0, offset=7)


def test_malformed_records_are_skipped_and_counted() -> None:
    reader = IncidentRecordReader("unit")
    before = SKIPPED.get("unit")
    good = incident("p1", T0, 0)
    bad = [None, b"not json", b"[1]", orjson.dumps({**good, "sequence": -1}),
           orjson.dumps({**good, "status": "resolved"}),  # resolved without resolved_at
           orjson.dumps({**good, "opened_at": "2026-11-30T08:00:00+02:00"}),
           orjson.dumps({k: v for k, v in good.items() if k != "peak_views"})]  # fmt: skip
    assert [reader.incident_of(record(raw)) for raw in bad] == [None] * len(bad)
    assert SKIPPED.get("unit") - before == len(bad)
    parsed = reader.incident_of(record(orjson.dumps({**good, "extra": 1})))
    assert parsed is not None and parsed.to_dict() == good


def test_the_book_keeps_the_highest_sequence_and_orders_newest_first() -> None:
    reader = IncidentRecordReader("unit")
    book = IncidentBook(capacity=2)
    rows = [
        incident("p1", T0, 0),
        incident(
            "p1",
            T0,
            2,
            event="resolved",
            status="resolved",
            resolved_at="2026-11-30T08:40:00.000Z",
            resolution="quiet",
        ),
        incident("p1", T0, 1, event="updated", windows=2),
        incident("p2", T0 + MIN, 0),
        incident("p3", T0 + 2 * MIN, 0),
    ]
    for row in rows:
        parsed = reader.incident_of(record(orjson.dumps(row)))
        assert parsed is not None
        book.add(parsed)
    assert [i.incident_id for i in book.newest("all", 10)] == [
        f"p3:{T0 + 2 * MIN}", f"p2:{T0 + MIN}", f"p1:{T0}"]  # fmt: skip
    (p1,) = book.of_product("p1")
    assert (p1.sequence, p1.status) == (2, "resolved")
    assert [i.product_id for i in book.newest("open", 10)] == ["p3", "p2"]
    assert incident_json(p1, 0)["duration_seconds"] == 40 * 60 - 11 * 60
