"""The scheduler with an injected clock: on time, catches up in order, never twice, one instance."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from app.kafka.broker import free_port
from app.mail_config import MailConfig
from app.mail_delivery import Mailer, RetryPolicy
from app.settings import Settings, load_settings
from app.storage.locks import LockFile
from batch.job import ReportJob
from batch.scheduler import JOB_ID, ReportScheduler
from tests.support.batch_data import generate_events, write_events_parquet
from tests.support.smtp_server import start_server

NEW_YORK = ZoneInfo("America/New_York")


class FakeClock:
    """A clock tests move by hand; the scheduler reads it through `now`."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def set_local(self, year: int, month: int, day: int, hour: int, minute: int) -> None:
        self.current = datetime(year, month, day, hour, minute, tzinfo=NEW_YORK).astimezone(UTC)


@pytest.fixture
def settings(clean_env: Path) -> Settings:
    data_dir = clean_env / "data"
    events = generate_events(
        datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 12, tzinfo=UTC),
        count=3_000, users=300, products=20, seed=9,
    )  # fmt: skip
    write_events_parquet(events, data_dir)
    return load_settings(data_dir=data_dir, report_time="00:15", report_timezone="America/New_York")


def _outbox_dates(settings: Settings) -> list[str]:
    return sorted(p.name.split("_")[1] for p in (settings.data_dir / "outbox").glob("*.eml"))


def test_runs_the_previous_day_at_report_time_and_never_twice(settings: Settings) -> None:
    clock = FakeClock(datetime(2024, 3, 5, 17, 0, tzinfo=UTC))
    scheduler = ReportScheduler(settings, now=clock)
    first = scheduler.serve(once=True)  # a fresh install runs only the latest due day
    assert [(o.day, o.status) for o in first] == [(date(2024, 3, 4), "sent")]

    clock.set_local(2024, 3, 6, 0, 14)
    assert scheduler.due_days() == []
    assert scheduler.next_run_time() == datetime(2024, 3, 6, 0, 15, tzinfo=NEW_YORK)
    assert scheduler.run_due() == []

    clock.set_local(2024, 3, 6, 0, 15)
    assert [o.day for o in scheduler.run_due()] == [date(2024, 3, 5)]
    assert scheduler.next_run_time() == datetime(2024, 3, 7, 0, 15, tzinfo=NEW_YORK)
    assert scheduler.run_due() == []
    assert _outbox_dates(settings) == ["2024-03-04", "2024-03-05"]


def test_catches_up_three_missed_days_oldest_first(settings: Settings) -> None:
    clock = FakeClock(datetime(2024, 3, 5, 17, 0, tzinfo=UTC))
    ReportScheduler(settings, now=clock).serve(once=True)  # sends 2024-03-04
    clock.set_local(2024, 3, 8, 9, 30)  # down for three report times
    restarted = ReportScheduler(settings, now=clock)
    caught_up = restarted.serve(once=True)
    assert [(o.day.isoformat(), o.status) for o in caught_up] == [
        ("2024-03-05", "sent"), ("2024-03-06", "sent"), ("2024-03-07", "sent"),
    ]  # fmt: skip
    assert restarted.serve(once=True) == []
    history = restarted.job.runs.history()
    assert [r.report_date.isoformat() for r in history] == [
        "2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07",
    ]  # fmt: skip
    assert _outbox_dates(settings) == ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07"]


def test_a_day_whose_email_failed_is_sent_once_smtp_is_back(settings: Settings) -> None:
    port = free_port()
    smtp = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port,
                                       "email_to": "ops@shop.example", "email_from": "r@shop.example"})  # fmt: skip
    mailer = Mailer(MailConfig.from_settings(smtp), smtp.data_dir / "outbox",
                    retry=RetryPolicy(attempts=2, base_delay=0), sleep=lambda _: None)  # fmt: skip
    clock = FakeClock(datetime(2024, 3, 5, 17, 0, tzinfo=UTC))
    scheduler = ReportScheduler(smtp, job=ReportJob(smtp, mailer, now=clock), now=clock)
    assert [o.status for o in scheduler.run_due()] == ["failed"]
    clock.set_local(2024, 3, 6, 1, 0)
    controller, inbox = start_server(port)
    try:
        retried = scheduler.run_due()
        again = scheduler.run_due()
    finally:
        controller.stop()
    assert [(o.day.isoformat(), o.status) for o in retried] == [
        ("2024-03-04", "sent"), ("2024-03-05", "sent"),
    ]  # fmt: skip
    assert again == []
    assert sorted(m["X-Clickstream-Report-Date"] for m in inbox.messages) == [
        "2024-03-04", "2024-03-05",
    ]  # fmt: skip


def test_apscheduler_job_is_set_for_the_next_report_time(settings: Settings) -> None:
    clock = FakeClock(datetime(2024, 3, 10, 6, 59, tzinfo=UTC))  # 03:59 EDT, after the DST jump
    scheduler = ReportScheduler(settings, now=clock).build_background_scheduler()
    job = scheduler.get_job(JOB_ID)
    assert job.next_run_time == datetime(2024, 3, 11, 0, 15, tzinfo=NEW_YORK)
    assert str(job.trigger) == "daily at 00:15 America/New_York"


def test_second_instance_refuses_while_the_first_holds_the_lock(settings: Settings) -> None:
    with LockFile(settings.data_dir / "scheduler.lock"):
        result = subprocess.run(
            [str(Path(sys.executable).parent / "clickstream"), "scheduler", "--once"],
            env={**os.environ, "DATA_DIR": str(settings.data_dir)},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert result.returncode == 1
    assert "another scheduler is already running" in result.stderr
    assert f"pid {os.getpid()}" in result.stderr
    assert not (settings.data_dir / "outbox").exists()


def _wait_for(path: Path, text: str, process: subprocess.Popen[str], deadline_s: float = 60) -> str:
    """Poll a log file until `text` appears (the process must still be running)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        content = path.read_text() if path.exists() else ""
        if text in content:
            return content
        assert process.poll() is None, content
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not logged: {path.read_text()}")


def test_running_scheduler_blocks_a_second_one_and_stops_on_sigterm(
    settings: Settings, tmp_path: Path
) -> None:
    command = str(Path(sys.executable).parent / "clickstream")
    env = {**os.environ, "DATA_DIR": str(settings.data_dir), "REPORT_TIMEZONE": "UTC"}
    log = tmp_path / "scheduler.log"
    with log.open("w") as stderr:
        first = subprocess.Popen([command, "scheduler"], env=env, stderr=stderr, text=True)
    try:
        _wait_for(log, "Next report run at", first)
        second = subprocess.run([command, "scheduler"], env=env, capture_output=True,
                                text=True, timeout=60, check=False)  # fmt: skip
        assert second.returncode == 1
        assert "another scheduler is already running" in second.stderr
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0
    finally:
        if first.poll() is None:
            first.kill()
    content = log.read_text()
    assert "Received SIGTERM" in content and "Scheduler stopped" in content
    assert "Due: " in content  # a fresh install runs the latest due day on start


def test_apscheduler_fires_the_job_which_runs_what_is_due(settings: Settings) -> None:
    clock = FakeClock(datetime(2024, 3, 5, 17, 0, tzinfo=UTC))
    report_scheduler = ReportScheduler(settings, now=clock)
    fired_at = datetime.now(UTC).replace(microsecond=0)  # already past: fires at once
    scheduler = report_scheduler.build_background_scheduler(fired_at)
    scheduler.start()
    try:
        deadline = time.monotonic() + 60
        while not report_scheduler.job.runs.history() and time.monotonic() < deadline:
            time.sleep(0.05)
        job = scheduler.get_job(JOB_ID)
    finally:
        scheduler.shutdown(wait=True)
    assert [(r.report_date, r.status) for r in report_scheduler.job.runs.history()] == [
        (date(2024, 3, 4), "sent")
    ]
    assert job.next_run_time > fired_at
    assert job.next_run_time.astimezone(NEW_YORK).time().isoformat() == "00:15:00"
