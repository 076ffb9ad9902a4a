"""DuckDB over one day's Parquet files: the numbers of a `DailySummary`."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from app.errors import NoDataError, ReportError
from app.events import EVENT_TYPES
from app.report_day import ReportDay
from app.storage.locks import date_dir_locks
from app.storage.schema import ALERTS_DIR, EVENTS_DIR
from batch.summary import (
    AlertedProduct,
    AlertSummary,
    CategoryConversion,
    DailySummary,
    Funnel,
    HourlyTraffic,
    ProductViews,
    percent,
)

logger = logging.getLogger(__name__)

TOP_N = 5
Row = tuple[Any, ...]

# The day's events, each event_id once: a producer's retry is stored as delivered (with its
# own Kafka position) but reported once, as its copy at the lowest position. Ids the parser
# generated for id-less events name a Kafka position, so they never collide. Reads only the
# day's files and filters to the exact local day; `?` is the list of files, then the UTC
# start (included) and end (excluded).
_DAY_EVENTS = """
CREATE TEMP TABLE day_events AS
SELECT event_type, product_id, product_category, user_id, event_time
FROM read_parquet(?)
WHERE event_time >= ? AND event_time < ?
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY kafka_partition, kafka_offset) = 1
"""
_EVENT_COUNTS = """
SELECT event_type, product_id, product_category, count(*)
FROM day_events
GROUP BY ALL
"""
_USERS = """
WITH per_user AS (
    SELECT bool_or(event_type = 'view') AS viewed,
           bool_or(event_type = 'add_to_cart') AS added,
           bool_or(event_type = 'purchase') AS purchased
    FROM day_events
    GROUP BY user_id
)
SELECT count(*),
       count(*) FILTER (WHERE purchased),
       count(*) FILTER (WHERE viewed),
       count(*) FILTER (WHERE viewed AND added),
       count(*) FILTER (WHERE viewed AND added AND purchased)
FROM per_user
"""
# Events per hour of the local day, counted from its first instant (`?` is that instant).
_HOURLY = """
SELECT (epoch_ms(event_time) - epoch_ms(?::TIMESTAMPTZ)) // 3600000 AS hour, event_type, count(*)
FROM day_events
GROUP BY ALL
"""
_ALERTS = """
SELECT product_id, count(*), max(views)
FROM read_parquet(?)
WHERE window_start >= ? AND window_start < ?
GROUP BY product_id
"""


def partition_files(root: Path, dates: Iterable[date]) -> list[str]:
    """The finished Parquet files of the `date=` partitions named by `dates`, sorted."""
    files: list[str] = []
    for day in dates:
        folder = root / f"date={day}"
        files.extend(
            str(path) for path in sorted(folder.glob("*.parquet")) if not path.name.startswith(".")
        )
    return files


def compute_summary(
    data_dir: Path, day: ReportDay, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> DailySummary:
    """The summary of `day`; NoDataError when no event falls within it."""
    events_root, alerts_root = data_dir / EVENTS_DIR, data_dir / ALERTS_DIR
    event_dates = day.utc_dates()
    # An alert is detected after its window starts: look one UTC date further, whatever
    # timestamp the alert sink partitions by.
    alert_dates = (
        [*event_dates, event_dates[-1] + timedelta(days=1)] if alerts_root.is_dir() else []
    )
    # Shared date locks: compaction cannot swap a directory between listing and reading it.
    with (
        date_dir_locks(events_root, [f"date={d}" for d in event_dates], shared=True),
        date_dir_locks(alerts_root, [f"date={d}" for d in alert_dates], shared=True),
    ):
        event_files = partition_files(events_root, event_dates)
        if not event_files:
            folders = ", ".join(f"date={d}" for d in event_dates)
            msg = f"no event files for {day} under {events_root} ({folders})"
            raise NoDataError(msg)
        logger.info("Summarising %s from %s Parquet files", day, len(event_files))
        counts, users, alerts, hourly = _query(
            event_files, partition_files(alerts_root, alert_dates), day
        )
    if not counts or users is None:
        msg = f"no events within {day} ({day.start.isoformat()} to {day.end.isoformat()})"
        raise NoDataError(msg)
    summary = _build(day, counts, users, alerts, now())
    return replace(summary, hourly_traffic=hourly_traffic(day, hourly))


def hourly_traffic(day: ReportDay, rows: list[Row]) -> tuple[HourlyTraffic, ...]:
    """Every hour of the local day from (hour index, event type, count) rows, empty hours too.

    An hour is labelled by its local start; on a day with a DST change (23 or 25 hours) the
    label adds the zone's abbreviation, so the repeated or skipped hour reads right.
    """
    counts: dict[int, Counter[str]] = {}
    for hour, event_type, n in rows:
        counts.setdefault(int(hour), Counter())[event_type] += int(n)
    hours = round(day.hours)
    label = "%H:00" if hours == 24 else "%H:00 %Z"
    out = []
    for index in range(hours):
        start = day.start + timedelta(hours=index)
        n = counts.get(index, Counter())
        name = start.astimezone(day.tz).strftime(label)
        out.append(HourlyTraffic(name, start, n["view"], n["add_to_cart"], n["purchase"]))
    return tuple(out)


def _query(
    event_files: list[str], alert_files: list[str], day: ReportDay
) -> tuple[list[Row], Row | None, list[Row], list[Row]]:
    bounds = [day.start, day.end]
    try:
        with duckdb.connect() as con:
            con.execute("SET TimeZone = 'UTC'")
            con.execute(_DAY_EVENTS, [event_files, *bounds])
            counts = con.execute(_EVENT_COUNTS).fetchall()
            users = con.execute(_USERS).fetchone()
            hourly = con.execute(_HOURLY, [day.start]).fetchall()
            alerts = con.execute(_ALERTS, [alert_files, *bounds]).fetchall() if alert_files else []
    except duckdb.Error as exc:
        msg = f"cannot read the Parquet files of {day}: {exc}"
        raise ReportError(msg) from exc
    return counts, users, alerts, hourly


def _build(
    day: ReportDay,
    counts: list[Row],
    users: Row,
    alert_rows: list[Row],
    generated_at: datetime,
) -> DailySummary:
    by_type: Counter[str] = Counter({name: 0 for name in EVENT_TYPES})
    views: Counter[str] = Counter()
    category_views: Counter[str | None] = Counter()
    category_purchases: Counter[str | None] = Counter()
    for event_type, product_id, category, n in counts:
        by_type[event_type] += n
        if event_type == "view":
            views[product_id] += n
            category_views[category] += n
        elif event_type == "purchase":
            category_purchases[category] += n
        else:
            category_views[category] += 0
    top = sorted(views.items(), key=lambda item: (-item[1], item[0]))[:TOP_N]
    categories = sorted(
        set(category_views) | set(category_purchases),
        key=lambda c: (-category_views[c], c is None, c or ""),
    )
    unique_users, buyers, viewed, added, purchased = (int(v) for v in users)
    alerted = sorted(alert_rows, key=lambda row: (-row[1], row[0]))
    return DailySummary(
        date=day.day,
        timezone=day.tz.key,
        period_start=day.start,
        period_end=day.end,
        total_events=sum(by_type.values()),
        events_by_type=dict(by_type),
        unique_users=unique_users,
        buyers=buyers,
        top_5_viewed_products=tuple(ProductViews(p, n) for p, n in top),
        conversion_by_category=tuple(
            CategoryConversion(
                c,
                category_views[c],
                category_purchases[c],
                percent(category_purchases[c], category_views[c]),
            )
            for c in categories
        ),
        funnel=Funnel(viewed=viewed, added_to_cart=added, purchased=purchased),
        flash_sale_alerts=AlertSummary(
            count=sum(int(row[1]) for row in alert_rows),
            top_products=tuple(
                AlertedProduct(p, int(n), peak_views=None, views_at_alert=int(v))
                for p, n, v in alerted[:TOP_N]
            ),
        ),
        generated_at=generated_at,
    )
