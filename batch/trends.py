"""The day's headline figures beside the previous day's and the same weekday's a week earlier.

The earlier days are summarised afresh from the store, with the same definitions, so a
backfill or a late correction shows in the comparison; a day with no data gives None.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.errors import NoDataError
from app.report_day import ReportDay
from batch.query import compute_summary
from batch.summary import DailySummary, Trend

# (name, figure of a summary, whether it is a rate in percent)
FIGURES: tuple[tuple[str, Callable[[DailySummary], float | None], bool], ...] = (
    ("events", lambda s: s.total_events, False),
    ("unique users", lambda s: s.unique_users, False),
    ("buyers", lambda s: s.buyers, False),
    ("buyer rate", lambda s: s.buyer_rate, True),
    ("conversion", lambda s: s.conversion_rate, True),
)
EARLIER_DAYS = (1, 7)


def _summary_or_none(data_dir: Path, day: ReportDay) -> DailySummary | None:
    try:
        return compute_summary(data_dir, day, lambda: datetime.now(UTC))
    except NoDataError:
        return None


def compute_trends(data_dir: Path, summary: DailySummary, day: ReportDay) -> tuple[Trend, ...]:
    """Each figure of `summary` with its values 1 and 7 days earlier (local calendar days).

    Raises ReportError when an earlier day's files exist but cannot be read.
    """
    earlier = [
        _summary_or_none(data_dir, ReportDay(day.day - timedelta(days=n), day.tz))
        for n in EARLIER_DAYS
    ]
    trends = []
    for name, figure, is_rate in FIGURES:
        then = [None if s is None else figure(s) for s in earlier]
        trends.append(Trend(name, figure(summary), then[0], then[1], is_rate))
    return tuple(trends)
