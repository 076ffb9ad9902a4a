"""The record of report runs per date (SQLite), so a rerun never emails twice unless forced.

Every attempt appends one row; nothing is updated in place. A date counts as sent once it
has a `sent` row. Statuses:

- `written`: the report files were written and sending was not asked for;
- `sent`: the email was handed to the SMTP server, or written to the outbox;
- `skipped`: the files were rewritten but the email had already been sent;
- `failed`: the email could not be delivered (the files are on disk), or the summary failed;
- `no_data`: no event fell within the day.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

STATUSES = ("written", "sent", "skipped", "failed", "no_data")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    report_date TEXT NOT NULL,
    status TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    forced INTEGER NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS runs_by_date ON runs (report_date, status);
"""


@dataclass(frozen=True, slots=True)
class RunRecord:
    report_date: date
    status: str
    finished_at: datetime
    forced: bool
    detail: str


class RunLog:
    """Append-only run history in one SQLite file (DATA_DIR/reports/runs.sqlite3)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30)) as con, con:
            yield con

    def record(
        self, day: date, status: str, detail: str = "", *, forced: bool = False, at: datetime
    ) -> None:
        if status not in STATUSES:
            msg = f"unknown run status {status!r}; expected one of {STATUSES}"
            raise ValueError(msg)
        with self._connect() as con:
            con.execute(
                "INSERT INTO runs (report_date, status, finished_at, forced, detail) "
                "VALUES (?, ?, ?, ?, ?)",
                (day.isoformat(), status, at.astimezone(UTC).isoformat(), int(forced), detail),
            )

    def sent_record(self, day: date) -> RunRecord | None:
        """The first successful send for `day`, if any."""
        rows = self._select("WHERE report_date = ? AND status = 'sent' ORDER BY id LIMIT 1", day)
        return rows[0] if rows else None

    def history(self, day: date | None = None) -> list[RunRecord]:
        """Every attempt, oldest first; only those for `day` when given."""
        if day is None:
            return self._select("ORDER BY id")
        return self._select("WHERE report_date = ? ORDER BY id", day)

    def last_sent_date(self) -> date | None:
        with self._connect() as con:
            row = con.execute("SELECT max(report_date) FROM runs WHERE status = 'sent'").fetchone()
        return date.fromisoformat(row[0]) if row and row[0] else None

    def failed_unsent_dates(self) -> list[date]:
        """Dates whose run failed and that were never sent since, oldest first."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT DISTINCT report_date FROM runs WHERE status = 'failed' "
                "AND report_date NOT IN (SELECT report_date FROM runs WHERE status = 'sent') "
                "ORDER BY report_date"
            ).fetchall()
        return [date.fromisoformat(row[0]) for row in rows]

    def _select(self, where: str, *params: date) -> list[RunRecord]:
        query = f"SELECT report_date, status, finished_at, forced, detail FROM runs {where}"
        with self._connect() as con:
            rows = con.execute(query, tuple(p.isoformat() for p in params)).fetchall()
        return [
            RunRecord(date.fromisoformat(d), s, datetime.fromisoformat(f), bool(fo), de)
            for d, s, f, fo, de in rows
        ]
