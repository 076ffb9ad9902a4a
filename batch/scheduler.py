"""The daily job: APScheduler runs the previous day's report at REPORT_TIME in REPORT_TIMEZONE.

A day D is due from REPORT_TIME on D + 1 (local). On start, and at every run, the scheduler
runs every due day after the last one sent (on a fresh install only the latest due day),
plus days whose sending failed or reached only some recipients, oldest first; a day already
sent is never run again. One instance at a time holds DATA_DIR/scheduler.lock. SIGTERM or
SIGINT stops it between days.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from types import FrameType
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from app.report_day import days_between, next_report_time, run_time, yesterday
from app.settings import Settings
from app.storage.locks import LockFile
from batch.job import Clock, ReportJob, RunOutcome, utc_now

logger = logging.getLogger(__name__)

JOB_ID = "daily-report"


class DailyReportTrigger(BaseTrigger):  # type: ignore[misc]
    """Fires daily at a local time, by calendar arithmetic (see `next_report_time`)."""

    def __init__(self, at: time, tz: ZoneInfo) -> None:
        self.at = at
        self.tz = tz

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        if previous_fire_time is None:
            return next_report_time(now - timedelta(microseconds=1), self.at, self.tz)
        return next_report_time(previous_fire_time, self.at, self.tz)

    def __str__(self) -> str:
        return f"daily at {self.at.strftime('%H:%M')} {self.tz.key}"


class ReportScheduler:
    """Catch-up plus a daily cron job; `now` is injectable so tests control the clock."""

    def __init__(self, settings: Settings, job: ReportJob | None = None, now: Clock = utc_now):
        self.tz = settings.tz
        self.report_time = settings.report_time
        self.now = now
        self.job = job or ReportJob(settings, now=now)
        self.lock = LockFile(settings.data_dir / "scheduler.lock")
        self.trigger = DailyReportTrigger(self.report_time, self.tz)
        self._stop_requested = False
        self._idle = threading.Event()

    def latest_due_day(self) -> date:
        """The newest day whose report time has come."""
        now = self.now()
        day = yesterday(now, self.tz)
        if run_time(day, self.report_time, self.tz) > now:
            day -= timedelta(days=1)
        return day

    def due_days(self) -> list[date]:
        """Days to run now, oldest first: missed days since the last sent one, failed, partial."""
        latest = self.latest_due_day()
        last_sent = self.job.runs.last_sent_date()
        first = latest if last_sent is None else last_sent + timedelta(days=1)
        missed = days_between(first, latest) if first <= latest else []
        failed = [d for d in self.job.runs.failed_unsent_dates() if d <= latest]
        return sorted(set(missed) | set(failed))

    def next_run_time(self) -> datetime:
        """The first report time strictly after now (a run due now is the catch-up's job)."""
        return next_report_time(self.now(), self.report_time, self.tz)

    def run_due(self) -> list[RunOutcome]:
        """Run every due day in order; a stop request is honoured between days."""
        outcomes: list[RunOutcome] = []
        due = self.due_days()
        if due:
            logger.info("Due: %s", ", ".join(d.isoformat() for d in due))
        for day in due:
            if self._stop_requested:
                logger.info("Stopping before %s; it stays due for the next start", day)
                break
            outcome = self.job.run(day, send=True)
            level = logging.INFO if outcome.ok else logging.ERROR
            logger.log(level, "Report %s: %s (%s)", day, outcome.status, outcome.detail)
            outcomes.append(outcome)
        return outcomes

    def request_stop(self) -> None:
        self._stop_requested = True

    def serve(self, *, once: bool = False) -> list[RunOutcome]:
        """Hold the lock, catch up, then (unless `once`) run daily until asked to stop."""
        with self.lock:
            restore = self._install_signal_handlers()
            try:
                logger.info("Scheduler started: report at %s %s, lock %s",
                            self.report_time.strftime("%H:%M"), self.tz.key,
                            self.lock.path)  # fmt: skip
                # Taken before the catch-up, so a report time passing during it still fires.
                first_fire = self.next_run_time()
                outcomes = self.run_due()
                if not once and not self._stop_requested:
                    self._run_daily(first_fire)
                elif once:
                    self._log_next_run()
            finally:
                restore()
        logger.info("Scheduler stopped")
        return outcomes

    def build_background_scheduler(self, first_fire: datetime | None = None) -> BackgroundScheduler:
        """An unstarted APScheduler with the daily job; one job at a time, late runs kept."""
        scheduler = BackgroundScheduler(
            timezone=self.tz,
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        scheduler.add_job(
            self._scheduled_run,
            self.trigger,
            id=JOB_ID,
            next_run_time=first_fire or self.next_run_time(),
        )
        return scheduler

    def _run_daily(self, first_fire: datetime) -> None:
        scheduler = self.build_background_scheduler(first_fire)
        scheduler.start()
        self._log_next_run()
        try:
            # The signal handler only sets a flag; polling it keeps the handler trivial.
            while not self._stop_requested:
                self._idle.wait(0.5)
        finally:
            logger.info("Stop requested: waiting for a running report to finish")
            scheduler.shutdown(wait=True)

    def _scheduled_run(self) -> None:
        self.run_due()
        self._log_next_run()

    def _log_next_run(self) -> None:
        fire = self.next_run_time()
        day = fire.date() - timedelta(days=1)
        logger.info("Next report run at %s (for %s)", fire.isoformat(), day.isoformat())

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def on_signal(signum: int, frame: FrameType | None) -> None:
            logger.info("Received %s", signal.Signals(signum).name)
            self.request_stop()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore
