"""The `...SS.mmmZ` fast path gives exactly the instant written, and refuses every near miss to
the general path, which then decides as it always did."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from app.errors import InvalidEventError
from app.event_time import _utc_millis_ms, parse_timestamp_ms


def test_it_reads_the_instant_each_string_was_written_from() -> None:
    rng = random.Random(7)
    start = datetime(2000, 1, 1, tzinfo=UTC)
    for _ in range(20_000):
        ms = rng.randrange(0, 40 * 365 * 86_400_000)  # 2000-2039, any millisecond
        written = (start + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        expected = 946_684_800_000 + ms  # 2000-01-01 in epoch ms, plus the offset
        assert parse_timestamp_ms(written) == expected, written


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-30T10:00:00.001+00:00",  # another offset form: the general path
        "2026-11-30T10:00:00.0012Z",
        "2026-11-30T10:00:00,001Z",
        "2026-11-30T10:00:00.0a1Z",
        "2026-11-30T10:00:00.\u0661\u0662\u0663Z",  # non-ASCII digits
        "20261130T100000.001Z1234",
        "2026-13-30T10:00:00.001Z",  # month 13
        "2026-11-30X10:00:00.001Z",
    ],
)
def test_near_misses_go_to_the_general_path(text: str) -> None:
    assert _utc_millis_ms(text) is None


def test_the_general_path_still_decides_what_the_fast_path_refuses() -> None:
    assert parse_timestamp_ms("2026-11-30T10:00:00.001+00:00") == 1_796_032_800_001
    assert parse_timestamp_ms("2026-11-30 10:00:00.001Z") == 1_796_032_800_001
    with pytest.raises(InvalidEventError):
        parse_timestamp_ms("2026-13-30T10:00:00.001Z")
