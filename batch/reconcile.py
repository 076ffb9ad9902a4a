"""The day's streaming alerts against the backtest's: matched, missing, extra, order-dependent.

Every window with a window start in the report day that the stream (DATA_DIR/alerts) or the
backtest alerted on, or whose outcome depends on the order of events, falls in one class:

- `order_dependent`: fed by more than one source partition, and one interleaving of those
  partitions alerts while another does not (batch.order_dependence); either answer is right,
  so these are listed whether or not either side alerted;
- `matched`: both alerted;
- `missing_in_stream`: only the backtest alerted;
- `extra_in_stream`: only the stream alerted (also when the store has no events for it);
- `imported`: holds imported events, which never went through the stream: not compared.

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
from batch.backtest import Backtest, from_epoch_ms
from batch.backtest_rule import Thresholds, WindowRule
from batch.backtest_windows import window_sources
from batch.order_dependence import order_dependent_windows
from batch.query import partition_files
from batch.reconciliation import Reconciliation, WindowRef


@dataclass(frozen=True, slots=True)
class DayCheck:
    """The reconciliation and the final counts of the windows the stream alerted on."""

    reconciliation: Reconciliation
    final_views: dict[tuple[str, datetime], int] = field(default_factory=dict)


def reconcile_day(settings: Settings, day: ReportDay) -> DayCheck:
    """Backtest `day` with the stream's settings and compare. Raises ReportError."""
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
        return _classify(rows.fetchall(), dependent, stream_count)


def _classify(
    rows: list[tuple[str, int, bool, bool, bool, int | None]],
    dependent: set[tuple[str, int]],
    stream_count: int,
) -> DayCheck:
    classes: dict[str, list[WindowRef]] = {"od": [], "missing": [], "extra": []}
    matched = imported = backtest_count = 0
    final_views: dict[tuple[str, datetime], int] = {}
    for pid, w, in_stream, in_backtest, is_imported, views in rows:
        ref = WindowRef(pid, from_epoch_ms(w))
        backtest_count += in_backtest
        if in_stream and views is not None:
            final_views[pid, ref.window_start] = int(views)
        if is_imported:
            imported += 1
        elif (pid, w) in dependent:
            continue
        elif in_stream and in_backtest:
            matched += 1
        else:
            classes["missing" if in_backtest else "extra"].append(ref)
    classes["od"] = [WindowRef(pid, from_epoch_ms(w)) for pid, w in dependent]
    reconciliation = Reconciliation(
        stream_alerts=stream_count,
        backtest_alerts=backtest_count,
        matched=matched,
        order_dependent=tuple(sorted(classes["od"])),
        missing_in_stream=tuple(sorted(classes["missing"])),
        extra_in_stream=tuple(sorted(classes["extra"])),
        imported=imported,
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
