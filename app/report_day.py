"""A report day: one calendar day in REPORT_TIMEZONE, as an exact UTC interval."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class ReportDay:
    """The local day `day` in `tz`: [local midnight, next local midnight), 23 to 25 hours long."""

    day: date
    tz: ZoneInfo

    @property
    def start(self) -> datetime:
        """Local midnight as a UTC instant (a midnight skipped by DST maps to the transition)."""
        return datetime.combine(self.day, time(0), tzinfo=self.tz).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """The next local midnight as a UTC instant; excluded from the day."""
        return ReportDay(self.day + timedelta(days=1), self.tz).start

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600

    def utc_dates(self) -> list[date]:
        """The UTC dates the day overlaps: the `date=` partitions that can hold its events."""
        first = self.start.date()
        last = (self.end - timedelta(microseconds=1)).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]

    def __str__(self) -> str:
        return f"{self.day.isoformat()} ({self.tz.key})"


def yesterday(now: datetime, tz: ZoneInfo) -> date:
    """The local date before the one `now` falls on in `tz`."""
    return now.astimezone(tz).date() - timedelta(days=1)


def days_between(first: date, last: date) -> list[date]:
    """Every date from `first` to `last`, both included, oldest first."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def run_time(day: date, at: time, tz: ZoneInfo) -> datetime:
    """When the daily job for `day` is due: `at` local time on the next day, as UTC."""
    return datetime.combine(day + timedelta(days=1), at, tzinfo=tz).astimezone(UTC)


def next_report_time(after: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The first local `at` strictly after `after`, in `tz`, counted in calendar days.

    Calendar arithmetic keeps DST days right (APScheduler 3's CronTrigger skips the day after
    a spring-forward when asked just before the jump). A local time that does not exist that
    day fires when the clock jumps past it; one that exists twice fires at its first occurrence.
    """
    local_day = after.astimezone(tz).date()
    for offset in range(3):
        candidate = datetime.combine(local_day + timedelta(days=offset), at, tzinfo=tz)
        if candidate.astimezone(UTC) > after.astimezone(UTC):
            return candidate.astimezone(UTC).astimezone(tz)
    msg = f"no {at} in {tz.key} within three days of {after.isoformat()}"
    raise AssertionError(msg)
