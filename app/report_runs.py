"""The record of report runs per date (SQLite), so a rerun never emails twice unless forced.

Every attempt appends one row; nothing is updated in place. A date counts as sent once it
has a `sent` row. Statuses:

- `written`: the report files were written and sending was not asked for;
- `sent`: the email was handed over for every recipient of the run, or written to the outbox;
- `partial`: the server took the email for some recipients and refused the others;
- `skipped`: the files were rewritten but the email had already been sent;
- `failed`: the email could not be delivered (the files are on disk), or the summary failed;
- `no_data`: no event fell within the day.

Each sending run also records, per recipient, whether the server took the message (table
`recipients`), so a rerun after `partial` or `failed` offers it only to those still without.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

STATUSES = ("written", "sent", "partial", "skipped", "failed", "no_data")


@dataclass(frozen=True, slots=True)
class RecipientOutcome:
    """Whether one recipient's server took the message; `reply` is its answer when it did not."""

    address: str
    delivered: bool
    reply: str = ""


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
CREATE TABLE IF NOT EXISTS recipients (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    address TEXT NOT NULL,
    delivered INTEGER NOT NULL,
    reply TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS recipients_by_run ON recipients (run_id);
"""


@dataclass(frozen=True, slots=True)
class RunRecord:
    report_date: date
    status: str
    finished_at: datetime
    forced: bool
    detail: str
    delivered_to: tuple[str, ...] = ()
    refused_by: tuple[str, ...] = ()


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
        self,
        day: date,
        status: str,
        detail: str = "",
        *,
        forced: bool = False,
        at: datetime,
        recipients: Iterable[RecipientOutcome] = (),
    ) -> None:
        if status not in STATUSES:
            msg = f"unknown run status {status!r}; expected one of {STATUSES}"
            raise ValueError(msg)
        with self._connect() as con:
            run_id = con.execute(
                "INSERT INTO runs (report_date, status, finished_at, forced, detail) "
                "VALUES (?, ?, ?, ?, ?)",
                (day.isoformat(), status, at.astimezone(UTC).isoformat(), int(forced), detail),
            ).lastrowid
            con.executemany(
                "INSERT INTO recipients (run_id, address, delivered, reply) VALUES (?, ?, ?, ?)",
                [(run_id, r.address, int(r.delivered), r.reply) for r in recipients],
            )

    def sent_record(self, day: date) -> RunRecord | None:
        """The first successful send for `day`, if any."""
        rows = self._select("WHERE report_date = ? AND status = 'sent' ORDER BY id LIMIT 1", day)
        return rows[0] if rows else None

    def delivered_recipients(self, day: date) -> set[str]:
        """Every address any run for `day` delivered the email to."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT DISTINCT address FROM recipients JOIN runs ON runs.id = run_id "
                "WHERE report_date = ? AND delivered = 1",
                (day.isoformat(),),
            ).fetchall()
        return {row[0] for row in rows}

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
        """Dates whose run failed or reached only some recipients, and not settled since.

        A day is settled by a `sent` run, or by a `skipped` one (every address had it already).
        """
        with self._connect() as con:
            rows = con.execute(
                "SELECT DISTINCT report_date FROM runs WHERE status IN ('failed', 'partial') "
                "AND report_date NOT IN "
                "(SELECT report_date FROM runs WHERE status IN ('sent', 'skipped')) "
                "ORDER BY report_date"
            ).fetchall()
        return [date.fromisoformat(row[0]) for row in rows]

    def _select(self, where: str, *params: date) -> list[RunRecord]:
        query = f"SELECT id, report_date, status, finished_at, forced, detail FROM runs {where}"
        with self._connect() as con:
            rows = con.execute(query, tuple(p.isoformat() for p in params)).fetchall()
            addresses: dict[tuple[int, bool], list[str]] = defaultdict(list)
            for run_id, address, delivered in con.execute(
                "SELECT run_id, address, delivered FROM recipients ORDER BY rowid"
            ):
                addresses[run_id, bool(delivered)].append(address)
        return [
            RunRecord(
                date.fromisoformat(d),
                s,
                datetime.fromisoformat(f),
                bool(fo),
                de,
                delivered_to=tuple(addresses[i, True]),
                refused_by=tuple(addresses[i, False]),
            )
            for i, d, s, f, fo, de in rows
        ]
