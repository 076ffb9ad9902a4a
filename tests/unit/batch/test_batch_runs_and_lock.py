"""The run record remembers what was sent; the lock file lets one holder in at a time."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from app.errors import SchedulerLockedError
from app.report_runs import RunLog
from app.storage.locks import LockFile

AT = datetime(2024, 3, 11, 0, 15, tzinfo=UTC)


def test_sent_record_and_last_sent_date(tmp_path: Path) -> None:
    runs = RunLog(tmp_path / "runs.sqlite3")
    assert runs.last_sent_date() is None
    runs.record(date(2024, 3, 9), "failed", "smtp down", at=AT)
    runs.record(date(2024, 3, 10), "sent", "smtp host:25 <id>", at=AT)
    runs.record(date(2024, 3, 10), "skipped", "already sent", at=AT)
    assert runs.last_sent_date() == date(2024, 3, 10)
    sent = runs.sent_record(date(2024, 3, 10))
    assert sent is not None and sent.detail == "smtp host:25 <id>" and sent.finished_at == AT
    assert runs.sent_record(date(2024, 3, 9)) is None
    assert runs.failed_unsent_dates() == [date(2024, 3, 9)]
    runs.record(date(2024, 3, 9), "sent", "smtp host:25 <id2>", forced=False, at=AT)
    assert runs.failed_unsent_dates() == []
    assert [r.status for r in runs.history(date(2024, 3, 9))] == ["failed", "sent"]


def test_the_record_survives_reopening(tmp_path: Path) -> None:
    RunLog(tmp_path / "runs.sqlite3").record(date(2024, 3, 10), "sent", at=AT)
    assert RunLog(tmp_path / "runs.sqlite3").last_sent_date() == date(2024, 3, 10)


def test_unknown_status_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown run status"):
        RunLog(tmp_path / "runs.sqlite3").record(date(2024, 3, 10), "done", at=AT)


def test_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.lock"
    with (
        LockFile(path),
        pytest.raises(SchedulerLockedError, match=r"already running \(pid \d+"),
    ):
        LockFile(path).acquire()
    with LockFile(path):  # released on exit: free again
        pass
