"""Report days are local calendar days; the daily job time survives DST changes."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from app.report_day import ReportDay, days_between, next_report_time, run_time, yesterday

NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("day", "hours", "utc_dates"),
    [
        (date(2024, 3, 9), 24, ["2024-03-09", "2024-03-10"]),
        (date(2024, 3, 10), 23, ["2024-03-10", "2024-03-11"]),
        (date(2024, 11, 3), 25, ["2024-11-03", "2024-11-04"]),
    ],
)
def test_new_york_days_and_their_utc_partitions(
    day: date, hours: int, utc_dates: list[str]
) -> None:
    report_day = ReportDay(day, NEW_YORK)
    assert report_day.hours == hours
    assert [d.isoformat() for d in report_day.utc_dates()] == utc_dates


def test_a_utc_day_reads_one_partition() -> None:
    day = ReportDay(date(2024, 3, 10), ZoneInfo("UTC"))
    assert [d.isoformat() for d in day.utc_dates()] == ["2024-03-10"]
    assert day.start == datetime(2024, 3, 10, tzinfo=UTC)
    assert day.end == datetime(2024, 3, 11, tzinfo=UTC)


def test_consecutive_days_tile_time_without_gaps() -> None:
    days = [ReportDay(d, NEW_YORK) for d in days_between(date(2024, 3, 8), date(2024, 3, 12))]
    assert all(a.end == b.start for a, b in itertools.pairwise(days))


def test_yesterday_is_local() -> None:
    now = datetime(2024, 3, 10, 3, 0, tzinfo=UTC)  # still 2024-03-09 in New York
    assert yesterday(now, NEW_YORK) == date(2024, 3, 8)
    assert yesterday(now, ZoneInfo("UTC")) == date(2024, 3, 9)


def test_run_time_is_report_time_on_the_next_local_day() -> None:
    assert run_time(date(2024, 3, 9), time(0, 15), NEW_YORK) == datetime(
        2024, 3, 10, 5, 15, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("after", "at", "expected"),
    [
        # Just before the spring-forward jump: the next 00:15 is the next calendar day.
        (datetime(2024, 3, 10, 1, 59, tzinfo=NEW_YORK), time(0, 15), "2024-03-11T00:15:00-04:00"),
        # 02:30 does not exist on 2024-03-10: it fires as the clock jumps past it.
        (datetime(2024, 3, 10, 0, 0, tzinfo=NEW_YORK), time(2, 30), "2024-03-10T03:30:00-04:00"),
        # 01:30 exists twice on 2024-11-03: the first one, then the next day.
        (datetime(2024, 11, 3, 0, 0, tzinfo=NEW_YORK), time(1, 30), "2024-11-03T01:30:00-04:00"),
        (datetime(2024, 11, 3, 5, 30, tzinfo=UTC), time(1, 30), "2024-11-04T01:30:00-05:00"),
        # Strictly after: at exactly the report time, the next one is tomorrow.
        (datetime(2024, 3, 6, 0, 15, tzinfo=NEW_YORK), time(0, 15), "2024-03-07T00:15:00-05:00"),
    ],
)
def test_next_report_time_across_dst(after: datetime, at: time, expected: str) -> None:
    assert next_report_time(after, at, NEW_YORK).isoformat() == expected
