"""A report run on a day still in progress leaves the newest windows pending, not mismatched.

The stream's alerts here are the window oracle's own (tests/support/window_oracle.py) over
the events stored as the sink stores them, give or take a few planted differences; what each
class must hold is worked out here from the oracle and the documented cut-off, not by the
reconciliation's code.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from app.report_day import ReportDay
from app.settings import Settings
from batch.job import ReportJob
from batch.reconcile import pending_cutoff, reconcile_day
from batch.reconciliation import Reconciliation, WindowRef
from tests.support.batch_stream_store import (
    processing_order,
    shop_events,
    store_alerts,
    store_as_sink,
)
from tests.support.window_oracle import WindowOracle

DAY = date(2024, 6, 1)
START = int(datetime(2024, 6, 1, 9, tzinfo=UTC).timestamp() * 1000)
MIN = 60_000
SIZE = 600_000
# Run at 09:20: SINK_FLUSH_SECONDS 10 + ALLOWED_LATENESS 60 + the 30 s safety margin before
# it is 09:18:20; a window ending after that (starting after 09:08:20) is pending.
IN_PROGRESS = datetime(2024, 6, 1, 9, 20, tzinfo=UTC)
CUTOFF_MS = int(IN_PROGRESS.timestamp() * 1000) - 100_000
FINISHED = datetime(2024, 6, 2, 0, 15, tzinfo=UTC)  # the scheduled run, REPORT_TIME 00:15
Key = tuple[str, int]


def _keys(refs: tuple[WindowRef, ...]) -> set[Key]:
    return {(r.product_id, int(r.window_start.timestamp() * 1000)) for r in refs}


@pytest.fixture
def settings(clean_env: Path) -> Settings:
    return Settings(data_dir=clean_env / "data", views_threshold=40, purchases_threshold=5)


@pytest.fixture
def day_data(settings: Settings) -> tuple[set[Key], set[Key]]:
    """Store one partition's events and the stream's alerts; (backtest's, stream's) alerts.

    The stream lacks one early and one recent oracle alert, and has two windows without any
    stored event: one early, and one at 09:12 whose events (as in the bug report) had not
    reached Parquet when the report ran.
    """
    events = shop_events(7, 1, 3000, START)
    store_as_sink(events, settings.data_dir)
    oracle = WindowOracle(views=40, purchases=5).feed_all(processing_order(events))
    backtest = set(oracle.alerts)
    early = min(backtest, key=lambda k: k[1])
    recent = max(backtest, key=lambda k: k[1])
    stream = (backtest - {early, recent}) | {
        ("ghost", START - 30 * MIN),
        ("P0036", START + 12 * MIN),
    }
    store_alerts(stream, settings.data_dir)
    # Both sides of the cut-off hold alerts, or the test proves little.
    assert {w + SIZE > CUTOFF_MS for _, w in backtest} == {True, False}
    return backtest, stream


def _expected(backtest: set[Key], stream: set[Key], cutoff_ms: int | None) -> dict[str, set[Key]]:
    def judged(keys: set[Key]) -> set[Key]:
        return {k for k in keys if cutoff_ms is None or k[1] + SIZE <= cutoff_ms}

    return {
        "matched": judged(backtest & stream),
        "missing": judged(backtest - stream),
        "extra": judged(stream - backtest),
        "pending": (backtest | stream) - judged(backtest | stream),
    }


def _found(recon: Reconciliation, matched: set[Key]) -> dict[str, set[Key]]:
    assert recon.matched == len(matched)  # the class holds a count only
    return {
        "matched": matched,
        "missing": _keys(recon.missing_in_stream),
        "extra": _keys(recon.extra_in_stream),
        "pending": _keys(recon.pending),
    }


def test_windows_after_the_cutoff_of_a_day_in_progress_are_pending(
    settings: Settings, day_data: tuple[set[Key], set[Key]]
) -> None:
    backtest, stream = day_data
    recon = reconcile_day(settings, ReportDay(DAY, settings.tz), IN_PROGRESS).reconciliation
    expected = _expected(backtest, stream, CUTOFF_MS)
    assert _found(recon, expected["matched"]) == expected
    assert ("P0036", START + 12 * MIN) in expected["pending"]
    assert (recon.order_dependent, recon.imported) == ((), 0)
    assert (recon.stream_alerts, recon.backtest_alerts) == (len(stream), len(backtest))
    assert f"{len(expected['pending'])} too recent, not compared yet" in recon.headline()
    listed = recon.as_dict()["pending_not_compared_yet"]
    assert len(listed) == len(expected["pending"])  # type: ignore[arg-type]


def test_the_same_windows_are_judged_once_the_day_is_over(
    settings: Settings, day_data: tuple[set[Key], set[Key]]
) -> None:
    backtest, stream = day_data
    day = ReportDay(DAY, settings.tz)
    recon = reconcile_day(settings, day, FINISHED).reconciliation
    expected = _expected(backtest, stream, None)
    assert _found(recon, expected["matched"]) == expected
    assert ("P0036", START + 12 * MIN) in expected["extra"]
    assert recon.pending == () and "not compared yet" not in recon.headline()
    # Any later run of a finished day finds exactly the same.
    assert reconcile_day(settings, day, FINISHED + timedelta(days=400)).reconciliation == recon


def test_only_pending_windows_leave_a_clean_report_run(
    settings: Settings, day_data: tuple[set[Key], set[Key]]
) -> None:
    backtest, _ = day_data
    # The stream lost nothing early: everything it differs in is after the cut-off.
    stream = {k for k in backtest if k[1] + SIZE > CUTOFF_MS} ^ backtest
    stream |= {("P0036", START + 12 * MIN)}
    shutil.rmtree(settings.data_dir / "alerts")  # with the sink's progress record
    store_alerts(stream, settings.data_dir)

    outcome = ReportJob(settings, now=lambda: IN_PROGRESS).run(DAY, send=False)
    assert (outcome.status, outcome.mismatches) == ("written", 0)  # exit status 0, not 5
    assert outcome.report is not None
    recon = outcome.report.summary.reconciliation
    assert recon is not None and "MISMATCHED" not in recon.headline()
    assert recon.headline().startswith("Stream alerts against the backtest: all ")
    text = (settings.data_dir / "reports" / f"summary_{DAY}.txt").read_text()
    assert "not compared yet" in text and "MISMATCHED" not in text

    late = ReportJob(settings, now=lambda: FINISHED).run(DAY, send=False)
    assert late.mismatches == len({k for k in backtest if k[1] + SIZE > CUTOFF_MS}) + 1


@pytest.mark.parametrize(("after_end", "pending"), [(699, True), (700, False)])
def test_the_cutoff_passes_the_last_window_of_the_day(
    settings: Settings, after_end: int, pending: bool
) -> None:
    """No window of the day ends later than WINDOW_SIZE after midnight; its events are
    durable 100 s later (flush 10 s + lateness 60 s + margin 30 s)."""
    day = ReportDay(DAY, settings.tz)
    now = day.end + timedelta(seconds=after_end)
    assert (pending_cutoff(settings, day, now) is not None) is pending
