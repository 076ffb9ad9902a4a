"""`Backtest`: the stream's windows and alerts recomputed with DuckDB over the Parquet store.

    with Backtest.over(data_dir, first_window, end, rule, lookahead_ms) as backtest:
        backtest.decide([Thresholds(100, 5), Thresholds(150, 5)])
        backtest.alerts(0)          # the first pair's alerts, oldest window first
        backtest.alert_counts()     # alerts per pair

Windows are those starting in [first_window, end). The events are read once into memory
(under the store's shared date locks, so compaction cannot swap a day mid-read); every later
question is a query on that copy. Raises ReportError when the files cannot be read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

import duckdb

from app.errors import ReportError
from app.storage.locks import date_dir_locks
from app.storage.schema import EVENTS_DIR
from batch.backtest_alerts import decide_alerts
from batch.backtest_events import load_events
from batch.backtest_rule import Thresholds, WindowRule
from batch.backtest_windows import count_windows
from batch.query import partition_files

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BacktestAlert:
    """A window that alerts, with its final counts (every counted event, to the window's end)."""

    product_id: str
    window_start: datetime
    window_end: datetime
    views: int
    add_to_cart: int
    purchases: int


def epoch_ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def from_epoch_ms(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


class Backtest:
    """One DuckDB connection holding a range's counted events, windows and decisions."""

    def __init__(self, con: duckdb.DuckDBPyConnection, rule: WindowRule, events: int) -> None:
        self.con = con
        self.rule = rule
        self.events = events
        self.pairs: list[Thresholds] = []

    @classmethod
    def over(
        cls,
        data_dir: Path,
        first_window: datetime,
        end: datetime,
        rule: WindowRule,
        lookahead_ms: int = 3_600_000,
    ) -> Backtest:
        """Load the events of windows starting in [first_window, end) and count the windows.

        `lookahead_ms`: how far past the last window events are read, since an event stamped
        ahead moves its source's watermark (the stream caps that at MAX_CLOCK_SKEW).
        """
        last_event = end + timedelta(milliseconds=rule.size_ms + lookahead_ms)
        root = data_dir / EVENTS_DIR
        first_date, last_date = first_window.astimezone(UTC).date(), last_event.date()
        dates = [first_date + timedelta(days=n) for n in range((last_date - first_date).days + 1)]
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            with date_dir_locks(root, [f"date={d}" for d in dates], shared=True):
                files = partition_files(root, dates)
                events = load_events(con, files, first_window, last_event, rule) if files else 0
            if not files:
                con.execute("CREATE TEMP TABLE counted (pid VARCHAR, kind UTINYINT, t BIGINT, "
                            "s BIGINT, src INTEGER, depth INTEGER, key BIGINT)")  # fmt: skip
            count_windows(con, rule, epoch_ms(first_window), epoch_ms(end))
        except duckdb.Error as exc:
            con.close()
            msg = f"cannot backtest {first_window.isoformat()} to {end.isoformat()}: {exc}"
            raise ReportError(msg) from exc
        logger.info("Backtest: %s events read from %s files", events, len(files))
        return cls(con, rule, events)

    def __enter__(self) -> Backtest:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.con.close()

    def decide(self, pairs: list[Thresholds]) -> None:
        """Decide every window under each threshold pair (table `alerted`)."""
        self.pairs = list(pairs)
        decide_alerts(self.con, self.rule, self.pairs)

    def window_count(self) -> int:
        row = self.con.execute("SELECT count(*) FROM windows").fetchone()
        return int(row[0]) if row else 0

    def alert_counts(self) -> dict[Thresholds, int]:
        """Alerts per threshold pair, in the order the pairs were given."""
        rows = dict(self.con.execute("SELECT pair, count(*) FROM alerted GROUP BY pair").fetchall())
        return {pair: int(rows.get(index, 0)) for index, pair in enumerate(self.pairs)}

    def qualifying(self, thresholds: Thresholds) -> int:
        """Windows whose final counts qualify (views > V, purchases < P): every one of them
        alerts; so do some whose purchases reached P only after their (V+1)-th view."""
        row = self.con.execute(
            "SELECT count(*) FROM windows WHERE v > ? AND p < ?",
            [thresholds.views, thresholds.purchases],
        ).fetchone()
        return int(row[0]) if row else 0

    def alerts(self, pair: int = 0) -> list[BacktestAlert]:
        """The windows pair number `pair` alerts on, oldest first, then by product."""
        rows = self.con.execute(
            "SELECT a.pid, a.w, v, c, p FROM alerted a JOIN windows USING (pid, w) "
            "WHERE pair = ? ORDER BY a.w, a.pid",
            [pair],
        ).fetchall()
        size = timedelta(milliseconds=self.rule.size_ms)
        return [
            BacktestAlert(pid, from_epoch_ms(w), from_epoch_ms(w) + size, v, c, p)
            for pid, w, v, c, p in rows
        ]
