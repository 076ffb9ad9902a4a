"""Hostile and unusual input at the edge: id limits, control characters, time units, a BOM."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from app.events import MAX_ID_LENGTH, EventParser
from app.rejections import Rejected

NOW_MS = 1795766400000 + 3600_000  # 2026-11-27T09:00:00Z
VALID: dict[str, object] = {
    "event_id": "e-1",
    "user_id": "u-1",
    "session_id": "s-1",
    "product_id": "p-1",
    "event_type": "view",
    "timestamp": 1795766400000,
}
ID_FIELDS = ("product_id", "user_id", "session_id", "event_id")


def parse(raw: bytes) -> tuple[list[int], list[Rejected]]:
    """Event times (ms) and rejections of one message."""
    events, rejected = EventParser(262_144, 3600).parse_message(raw, "in", 0, 7, NOW_MS)
    return [e.event_time_ms for e in events], rejected


def with_(**changes: object) -> bytes:
    return orjson.dumps(VALID | changes)


def only_rejection(raw: bytes) -> Rejected:
    times, rejected = parse(raw)
    assert times == []
    assert len(rejected) == 1
    return rejected[0]


@pytest.mark.parametrize("field", ID_FIELDS)
def test_an_id_of_the_limit_passes_and_one_longer_is_dead_lettered(field: str) -> None:
    assert MAX_ID_LENGTH == 256
    assert parse(with_(**{field: "x" * 256})) == ([1795766400000], [])
    rejected = only_rejection(with_(**{field: "x" * 257}))
    assert rejected.reason == "id_too_long"
    assert field in rejected.detail
    assert "257" in rejected.detail and "256" in rejected.detail


def test_a_long_url_as_product_id_is_counted() -> None:
    url = "https://shop.example.com/products/" + "a" * 206
    assert len(url) == 240
    assert parse(with_(product_id=url)) == ([1795766400000], [])


@pytest.mark.parametrize("field", ID_FIELDS)
@pytest.mark.parametrize(
    ("character", "code"),
    [("\x00", "U+0000"), ("\x1b", "U+001B"), ("\x7f", "U+007F"), ("\x9b", "U+009B"),
     ("\t", "U+0009")],
)  # fmt: skip
def test_a_control_character_in_an_id_is_dead_lettered(
    field: str, character: str, code: str
) -> None:
    rejected = only_rejection(with_(**{field: f"p{character}[31mred"}))
    assert rejected.reason == "control_character"
    assert field in rejected.detail
    assert code in rejected.detail


@pytest.mark.parametrize(
    "product_id", ["caf\u00e9", "a\u00a0b", "\U0001f469\u200d\U0001f4bb", "x y"]
)
def test_ids_with_spaces_accents_or_emoji_are_not_control_characters(product_id: str) -> None:
    assert parse(with_(product_id=product_id)) == ([1795766400000], [])


def test_in_a_batched_message_only_the_hostile_element_is_dead_lettered() -> None:
    batch = [VALID, VALID | {"product_id": "p\x1b]0;pwned\x07"}, VALID | {"user_id": "u" * 300}]
    times, rejected = parse(orjson.dumps(batch))
    assert times == [1795766400000]
    assert [(r.reason, r.index) for r in rejected] == [
        ("control_character", 1),
        ("id_too_long", 2),
    ]


@pytest.mark.parametrize(
    "stamp",
    [1795766400, 1795766400.0, 1795766400000, 1795766400000000, 1795766400000000000,
     "1795766400000000", "2026-11-27T08:00:00Z", "2026-11-27T08:00:00"],
)  # fmt: skip
def test_epoch_seconds_ms_us_and_ns_are_told_apart(stamp: object) -> None:
    assert parse(with_(timestamp=stamp)) == ([1795766400000], [])


@pytest.mark.parametrize("stamp", [1e21, 1.5e20])
def test_a_number_too_large_for_any_epoch_unit_is_a_bad_timestamp(stamp: float) -> None:
    rejected = only_rejection(with_(timestamp=stamp))
    assert rejected.reason == "bad_timestamp"
    assert "nanoseconds" in rejected.detail


@pytest.mark.parametrize(
    ("seconds", "iso", "expected_ms"),
    [
        (1795766399.9999, "2026-11-27T07:59:59.9999Z", 1795766399999),  # a window's last ms
        (1795766400.123, "2026-11-27T08:00:00.123Z", 1795766400123),
        (1795766400.0005, "2026-11-27T08:00:00.000500+00:00", 1795766400000),
        (1795766459.9996, "2026-11-27T09:00:59.9996+01:00", 1795766459999),
    ],
)
def test_float_seconds_and_iso_of_one_instant_give_the_same_millisecond(
    seconds: float, iso: str, expected_ms: int
) -> None:
    instant = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC)
    assert int(instant.timestamp()) * 1000 + instant.microsecond // 1000 == expected_ms
    assert parse(with_(timestamp=seconds)) == ([expected_ms], [])
    assert parse(with_(timestamp=iso)) == ([expected_ms], [])


@pytest.mark.parametrize("body", [orjson.dumps(VALID), orjson.dumps([VALID, VALID])])
def test_a_utf8_byte_order_mark_before_the_json_is_ignored(body: bytes) -> None:
    times, rejected = parse(b"\xef\xbb\xbf" + body)
    assert rejected == []
    assert times and set(times) == {1795766400000}


def test_a_byte_order_mark_alone_is_still_not_json() -> None:
    assert only_rejection(b"\xef\xbb\xbf").reason == "not_json"
