"""The one parser of ALERTS_TOPIC: an alert as published parses, anything else is None."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import orjson
import pytest

from app.alert_records import SKIPPED, AlertRecord, AlertRecordReader, parse_alert_record

GOOD: dict[str, object] = {
    "alert_id": "p7:1796803200000",
    "product_id": "p7",
    "window_start": "2026-12-01T08:00:00Z",
    "window_end": "2026-12-01T08:10:00Z",
    "views": 101,
    "add_to_cart": 3,
    "purchases": 0,
    "detected_at": "2026-12-01T08:11:00.250000+00:00",
}


def with_(**changes: object) -> bytes:
    return orjson.dumps({**GOOD, **changes})


def test_an_alert_as_published_parses_and_round_trips() -> None:
    alert = parse_alert_record(orjson.dumps(GOOD))
    assert alert == AlertRecord(**GOOD)  # type: ignore[arg-type]
    assert alert is not None and alert.views == 101 and alert.window_start.endswith("Z")
    assert alert.to_dict() == GOOD
    assert parse_alert_record(alert.to_json()) == alert


def test_fields_it_does_not_know_are_ignored() -> None:
    alert = parse_alert_record(with_(source="replay"))
    assert alert is not None and alert.to_dict() == GOOD


BAD = {
    "no value (tombstone)": None,
    "empty": b"",
    "not JSON": b"not json {",
    "not UTF-8": b"\xff\xfe",
    "JSON array": b"[1, 2]",
    "JSON string": b'"an alert"',
    "other object": b'{"hello": "world"}',
    "missing field": orjson.dumps({k: v for k, v in GOOD.items() if k != "purchases"}),
    "count as text": with_(views="101"),
    "count as float": with_(views=101.0),
    "count as bool": with_(purchases=False),
    "id as number": with_(alert_id=7),
    "empty id": with_(product_id=""),
    "negative count": with_(add_to_cart=-1),
    "count beyond int64": with_(views=0).replace(b'"views":0', b'"views":' + b"9" * 20),
    "None value": with_(window_end=None),
    "unparseable time": with_(window_start="yesterday"),
    "time as epoch ms": with_(detected_at=1796803860250),
    "naive time": with_(window_start="2026-12-01T08:00:00"),
    "time not in UTC": with_(detected_at="2026-12-01T09:11:00+01:00"),
    "window ends before it starts": with_(window_end="2026-12-01T07:50:00Z"),
}


@pytest.mark.parametrize("raw", BAD.values(), ids=BAD.keys())
def test_anything_else_is_not_an_alert(raw: bytes | None) -> None:
    assert parse_alert_record(raw) is None


def test_a_reader_counts_every_skip_and_logs_only_the_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reader = AlertRecordReader("unit_test_reader")
    before = SKIPPED.get("unit_test_reader")
    records = [
        SimpleNamespace(topic="alerts", partition=1, offset=offset, value=value)
        for offset, value in enumerate([b'{"hello": "world"}', orjson.dumps(GOOD), b"nope"])
    ]
    with caplog.at_level(logging.WARNING, logger="app.alert_records"):
        alerts = [reader.alert_of(record) for record in records]
    assert alerts == [None, AlertRecord(**GOOD), None]  # type: ignore[arg-type]
    assert SKIPPED.get("unit_test_reader") - before == 2
    (line,) = [r.getMessage() for r in caplog.records]
    assert "unit_test_reader" in line and "alerts[1]@0" in line and "alert_id" in line
    assert 'clickstream_alert_records_skipped_total{reader="unit_test_reader"} 2' in (
        SKIPPED.render()
    )
