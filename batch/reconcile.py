"""The day's stream alerts against the backtest's: matched, missing, extra, and the rest.

Every window with a window start in the report day that the stream (DATA_DIR/alerts) or the
backtest alerted on, or whose outcome depends on the order of events, falls in one class:

- `order_dependent`: fed by more than one source partition, and one interleaving of those
  partitions alerts while another does not (batch.order_dependence); either answer is right,
  so these are listed whether or not either side alerted;
- `matched`: both alerted;
- `missing_in_stream`: only the backtest alerted;
- `extra_in_stream`: only the stream alerted (also when the store has no events for it);
- `imported`: holds imported events, which never went through the stream: not compared;
- `pending`: ends after the cut-off (`pending_cutoff`) of a report run while its events may
  not all be in Parquet yet, or may still arrive: not compared yet. Only a day still in
  progress (or just over) has any; a day over by WINDOW_SIZE + the cut-off's lag has none.

Missing and extra windows are mismatches: the report shows them first, in red, counts them
for /metrics and exits non-zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb

from app.errors import ReportError
from app.report_day import ReportDay
from app.settings import Settings
from app.storage.locks import date_dir_locks
from app.storage.schema import ALERTS_DIR
from batch.backtest import Backtest, epoch_ms, from_epoch_ms
from batch.backtest_rule import Thresholds, WindowRule
from batch.backtest_windows import window_sources
from batch.order_dependence import order_dependent_windows
from batch.query import partition_files
from batch.reconciliation import Reconciliation, WindowRef

# Added to SINK_FLUSH_SECONDS + ALLOWED_LATENESS for the cut-off: the ingest stage checks
# whether a buffer is due only after each poll (up to 0.5 s), a due flush waits for the one
# still writing, a write of up to SINK_FLUSH_EVENTS events and its fsync take seconds, and the
# worker's and the report's clocks may differ by a little. 30 s covers a healthy worker with
# room to spare; a worker lagging behind its topic for longer is beyond any fixed margin.
SAFETY_MARGIN = timedelta(seconds=30)


def pending_cutoff(settings: Settings, day: ReportDay, now: datetime) -> datetime | None:
    """The latest window end a report run at `now` can judge, or None when it can judge every
    window of `day` (no window starting in the day ends later than the cut-off).

    A window ending after it may still take events (ALLOWED_LATENESS), and what it took may
    still sit in the ingest stage's buffer (SINK_FLUSH_SECONDS) while its alert is already in
    DATA_DIR/alerts.
    """
    lag = timedelta(seconds=settings.sink_flush_seconds + settings.allowed_lateness)
    cutoff = now - lag - SAFETY_MARGIN
    if cutoff >= day.end + timedelta(seconds=settings.window_size):
        return None
    return cutoff


@dataclass(frozen=True, slots=True)
class DayCheck:
    """The reconciliation and the final counts of the windows the stream alerted on."""

    reconciliation: Reconciliation
    final_views: dict[tuple[str, datetime], int] = field(default_factory=dict)


def reconcile_day(settings: Settings, day: ReportDay, now: datetime) -> DayCheck:
    """Backtest `day` with the stream's settings and compare, as a report run at `now` can
    (see `pending_cutoff`). Raises ReportError."""
    rule, thresholds = WindowRule.from_settings(settings), Thresholds.from_settings(settings)
    with Backtest.over(settings.data_dir, day.start, day.end, rule,
                       settings.max_clock_skew * 1000) as backtest:  # fmt: skip
        backtest.decide([thresholds])
        con = backtest.con
        try:
            stream_count = _load_stream_alerts(con, settings, day)
        except duckdb.Error as exc:
            msg = f"cannot read the alert files of {day}: {exc}"
            raise ReportError(msg) from exc
        views, purchases = thresholds.views, thresholds.purchases
        con.execute(f"""
            CREATE TEMP TABLE compared AS
            SELECT pid, w, s.pid IS NOT NULL AS in_stream, a.pid IS NOT NULL AS in_backtest
            FROM stream_alerts s FULL JOIN (SELECT pid, w FROM alerted WHERE pair = 0) a
                 USING (pid, w);
            CREATE TEMP TABLE checked AS
            SELECT pid, w FROM compared
            UNION SELECT pid, w FROM windows WHERE v > {views} AND p >= {purchases};
        """)  # fmt: skip
        window_sources(con, rule, "checked")
        con.execute(f"""
            CREATE TEMP TABLE od_candidates AS
            SELECT pid, w FROM windows JOIN window_sources USING (pid, w)
            WHERE multi AND NOT imported AND v > {views} AND p >= {purchases}
        """)  # fmt: skip
        dependent = order_dependent_windows(con, "od_candidates", rule, thresholds)
        rows = con.execute("""
            SELECT pid, w, in_stream, in_backtest, coalesce(imported, false), v
            FROM compared LEFT JOIN window_sources USING (pid, w) LEFT JOIN windows USING (pid, w)
        """)  # fmt: skip
        cutoff = pending_cutoff(settings, day, now)
        # A window [w, w + size) ends after the cut-off when w > cut-off - size.
        open_after = None if cutoff is None else epoch_ms(cutoff) - rule.size_ms
        return _classify(rows.fetchall(), dependent, stream_count, open_after)


def _classify(
    rows: list[tuple[str, int, bool, bool, bool, int | None]],
    dependent: set[tuple[str, int]],
    stream_count: int,
    open_after: int | None = None,
) -> DayCheck:
    """Sort the compared windows; those starting after `open_after` (ms) are pending."""
    classes: dict[str, list[WindowRef]] = {"od": [], "missing": [], "extra": [], "pending": []}
    matched = imported = backtest_count = 0
    final_views: dict[tuple[str, datetime], int] = {}

    def is_pending(w: int) -> bool:
        return open_after is not None and w > open_after

    for pid, w, in_stream, in_backtest, is_imported, views in rows:
        ref = WindowRef(pid, from_epoch_ms(w))
        backtest_count += in_backtest
        if in_stream and views is not None:
            final_views[pid, ref.window_start] = int(views)
        if is_imported:
            imported += 1
        elif is_pending(w):
            classes["pending"].append(ref)
        elif (pid, w) in dependent:
            continue
        elif in_stream and in_backtest:
            matched += 1
        else:
            classes["missing" if in_backtest else "extra"].append(ref)
    # Order-dependent windows neither side alerted on are not among the rows: pending as well.
    listed = set(classes["pending"])
    for pid, w in dependent:
        ref = WindowRef(pid, from_epoch_ms(w))
        if not is_pending(w):
            classes["od"].append(ref)
        elif ref not in listed:
            classes["pending"].append(ref)
    reconciliation = Reconciliation(
        stream_alerts=stream_count,
        backtest_alerts=backtest_count,
        matched=matched,
        order_dependent=tuple(sorted(classes["od"])),
        missing_in_stream=tuple(sorted(classes["missing"])),
        extra_in_stream=tuple(sorted(classes["extra"])),
        imported=imported,
        pending=tuple(sorted(classes["pending"])),
    )
    return DayCheck(reconciliation, final_views)


def _load_stream_alerts(con: duckdb.DuckDBPyConnection, settings: Settings, day: ReportDay) -> int:
    """Table `stream_alerts` (pid, w): every stream alert whose window starts within `day`.

    The sink files alerts by window start; one more date is read, as the report does.
    """
    con.execute("CREATE TEMP TABLE stream_alerts (pid VARCHAR, w BIGINT)")
    root = settings.data_dir / ALERTS_DIR
    dates = day.utc_dates()
    dates = [*dates, dates[-1] + timedelta(days=1)]
    with date_dir_locks(root, [f"date={d}" for d in dates], shared=True):
        files = partition_files(root, dates) if root.is_dir() else []
        if files:
            con.execute(
                "INSERT INTO stream_alerts SELECT DISTINCT product_id, epoch_ms(window_start) "
                "FROM read_parquet(?) WHERE window_start >= ? AND window_start < ?",
                [files, day.start, day.end],
            )
    row = con.execute("SELECT count(*) FROM stream_alerts").fetchone()
    return int(row[0]) if row else 0
