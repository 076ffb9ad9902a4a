"""The daily report counts each event_id once per day, however many copies the store holds."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from app.report_day import ReportDay
from batch.query import compute_summary
from tests.support.batch_data import event_at, generate_events, write_events_parquet, write_jsonl
from tests.support.batch_recount import recount

DAY = date(2024, 3, 10)


def _summary(data_dir: Path, tz: str) -> dict[str, object]:
    summary = compute_summary(data_dir, ReportDay(DAY, ZoneInfo(tz))).as_dict()
    del summary["generated_at"]
    return summary


def test_60_views_stored_twice_with_the_same_ids_count_60(tmp_path: Path) -> None:
    """Issue 14: the sink keeps both deliveries of a producer's retry; the report counts one."""
    start = datetime(2024, 3, 10, 9, tzinfo=UTC)
    views = [
        event_at(start + timedelta(seconds=i), f"u{i}", "view", "prod_retry", f"retry-{i}")
        for i in range(60)
    ]
    write_events_parquet(views + views, tmp_path)
    summary = _summary(tmp_path, "UTC")
    assert summary["events_by_type"] == {"view": 60, "add_to_cart": 0, "purchase": 0}
    assert summary["top_5_viewed_products"] == [{"product_id": "prod_retry", "views": 60}]


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_report_over_copies_equals_the_recount_of_the_distinct_events(
    tmp_path: Path, tz: str
) -> None:
    """A fifth of the events delivered again, some minutes later in the input (another file);
    the report over everything stored equals an independent recount of the events
    without their copies."""
    events = generate_events(
        datetime(2024, 3, 9, 18, tzinfo=UTC), datetime(2024, 3, 11, 6, tzinfo=UTC),
        count=20_000, users=2_000, products=30, seed=14,
    )  # fmt: skip
    rng = random.Random(14)
    copies: dict[int, list[dict[str, object]]] = {}  # delivery slot -> copies sent then
    for i, event in enumerate(events):
        if rng.random() < 0.2:
            copies.setdefault(i + rng.randrange(500), []).append(event)
    deliveries = [e for i, event in enumerate(events) for e in [event, *copies.get(i, [])]]
    write_events_parquet(deliveries, tmp_path / "data")
    write_jsonl(events, tmp_path / "distinct.jsonl")
    write_jsonl(deliveries, tmp_path / "deliveries.jsonl")
    report = _summary(tmp_path / "data", tz)
    assert report == recount(tmp_path / "distinct.jsonl", None, DAY, tz)
    with_copies = recount(tmp_path / "deliveries.jsonl", None, DAY, tz)
    stored, counted = with_copies["total_events"], report["total_events"]
    assert isinstance(stored, int) and isinstance(counted, int)
    assert stored > counted  # the day did hold copies
