"""The notifier's one parser of INCIDENTS_TOPIC: incidents parse, anything else is skipped."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import orjson
import pytest

from app.incident_records import SKIPPED
from app.notify.records import NoticeReader, parse_incident
from tests.support.incident_record import OPENED


def with_(**changes: object) -> bytes:
    return orjson.dumps({**OPENED, **changes})


def test_an_incident_as_published_parses_with_its_delivery_id() -> None:
    notice = parse_incident(orjson.dumps(OPENED))
    assert notice.record.peak_views == 140 and notice.record.resolved_at is None
    assert notice.published == OPENED
    assert notice.delivery_id == "P0036:1764489600000/0"
    assert notice.notified


def test_updates_are_not_notified_and_unknown_fields_pass_through() -> None:
    assert not parse_incident(with_(event="updated", sequence=1)).notified
    notice = parse_incident(with_(event="resolved", sequence=4, region="eu"))
    assert notice.notified and notice.published["region"] == "eu"


def test_a_record_without_its_story_is_not_an_incident() -> None:
    """One schema for every reader: the stage always publishes every field."""
    minimal = {"incident_id": "i", "event": "resolved", "sequence": 2, "product_id": "p"}
    with pytest.raises(ValueError, match="status"):
        parse_incident(orjson.dumps(minimal))


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"not json",
        b"[1, 2]",
        with_(event="reopened"),
        with_(sequence=-1),
        with_(sequence="0"),
        with_(peak_views=True),
        with_(incident_id=""),
        with_(opened_at="2025-11-30T09:10:01+01:00"),
        orjson.dumps({k: v for k, v in OPENED.items() if k != "product_id"}),
    ],
)
def test_anything_else_is_refused_with_a_reason(raw: bytes | None) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_incident(raw)


def test_the_reader_skips_counts_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    reader = NoticeReader("unit")
    before = SKIPPED.get("unit")
    record = SimpleNamespace(topic="incidents", partition=1, offset=7, value=b"{}")
    with caplog.at_level(logging.WARNING):
        assert reader.notice_of(record) is None
        assert reader.notice_of(record) is None
    assert SKIPPED.get("unit") == before + 2
    (line,) = [r.getMessage() for r in caplog.records]
    assert "incidents[1]@7" in line and "incident_id" in line
