"""One report run for one day: summarise, write the files, send once, record what happened."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from app.errors import DeliveryError, NoDataError, ReportError
from app.mail_config import MailConfig
from app.mail_delivery import Delivery, Mailer
from app.report_day import ReportDay
from app.report_runs import RecipientOutcome, RunLog
from app.settings import Settings
from app.storage.locks import LockFile
from batch.checks import with_checks
from batch.files import RenderedReport, write_report
from batch.mail import build_message
from batch.query import compute_summary

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What one run did: `status` is one of app.report_runs.STATUSES."""

    day: date
    status: str
    detail: str
    files: tuple[Path, ...] = ()
    report: RenderedReport | None = None
    recipients: tuple[RecipientOutcome, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status in ("written", "sent", "skipped")

    @property
    def mismatches(self) -> int:
        """Alert windows the stream and the backtest disagree on (see batch.reconcile)."""
        if self.report is None or self.report.summary.reconciliation is None:
            return 0
        return self.report.summary.reconciliation.mismatches


class ReportJob:
    """Runs the daily report for any date; safe to call twice for the same date."""

    def __init__(self, settings: Settings, mailer: Mailer | None = None, now: Clock = utc_now):
        self.data_dir = settings.data_dir
        self.reports_dir = settings.data_dir / "reports"
        self.tz = settings.tz
        self.runs = RunLog(self.reports_dir / "runs.sqlite3")
        self.now = now
        self._settings = settings
        self._mailer = mailer

    @property
    def mailer(self) -> Mailer:
        if self._mailer is None:
            config = MailConfig.from_settings(self._settings)
            self._mailer = Mailer(config, self.data_dir / "outbox")
        return self._mailer

    def run(self, day: date, *, send: bool, force: bool = False) -> RunOutcome:
        report_day = ReportDay(day, self.tz)
        if send:
            self.check_over(report_day)
        try:
            summary = compute_summary(self.data_dir, report_day, self.now)
            summary = with_checks(summary, self._settings, report_day, self.now())
        except NoDataError as exc:
            return self._finish(RunOutcome(day, "no_data", str(exc)), force)
        except ReportError as exc:
            logger.error("The report for %s failed: %s", report_day, exc)
            return self._finish(RunOutcome(day, "failed", str(exc)), force)
        report = RenderedReport.of(summary)
        try:
            files = tuple(write_report(self.reports_dir, report))
        except OSError as exc:
            detail = f"cannot write the report files under {self.reports_dir}: {exc}"
            return self._finish(RunOutcome(day, "failed", detail, (), report), force)
        logger.info("Wrote the report for %s: %s", report_day, ", ".join(map(str, files)))
        if not send:
            return self._finish(RunOutcome(day, "written", "not sent (--no-send)", files, report))
        # The check and the send happen under one lock so that a manual run and the
        # scheduler cannot both send the same day.
        with LockFile(self.reports_dir / ".send.lock", blocking=True, purpose="report sender"):
            return self._send(report, files, force)

    def check_over(self, day: ReportDay) -> None:
        """Refuse to send a day that has not ended: its partial report would count as sent."""
        if day.end > self.now():
            msg = (
                f"{day} has not ended yet (it ends at {day.end.isoformat()}); "
                "use --no-send for a partial preview"
            )
            raise ReportError(msg)

    def _send(self, report: RenderedReport, files: tuple[Path, ...], force: bool) -> RunOutcome:
        """Send to every recipient, or (without `force`) to those no earlier run reached."""
        day = report.summary.date
        previous = self.runs.sent_record(day)
        if previous is not None and not force:
            detail = (
                f"already sent at {previous.finished_at.isoformat()} ({previous.detail}); "
                "use --force to send again"
            )
            return self._finish(RunOutcome(day, "skipped", detail, files, report))
        recipients = self.mailer.config.recipients
        if not force:
            reached = self.runs.delivered_recipients(day)
            recipients = tuple(r for r in recipients if r not in reached)
            if not recipients:
                detail = "already sent to every address in EMAIL_TO; use --force to send again"
                return self._finish(RunOutcome(day, "skipped", detail, files, report))
        message = build_message(report, self.mailer.config, self.now())
        try:
            delivery = self.mailer.deliver(message, recipients)
        except DeliveryError as exc:
            logger.error("The report for %s was written but not sent: %s", day, exc)
            return self._finish(RunOutcome(day, "failed", str(exc), files, report), force)
        status, detail = _delivery_status(delivery)
        if status != "sent":
            logger.error("The report for %s was not sent to everyone: %s", day, detail)
        outcome = RunOutcome(day, status, detail, files, report, delivery.recipients)
        return self._finish(outcome, force)

    def _finish(self, outcome: RunOutcome, force: bool = False) -> RunOutcome:
        self.runs.record(outcome.day, outcome.status, outcome.detail, forced=force, at=self.now(),
                         recipients=outcome.recipients)  # fmt: skip
        return outcome


def _delivery_status(delivery: Delivery) -> tuple[str, str]:
    """`sent`, `partial` or `failed`, and one line naming who got the email and who did not."""
    where = f"{delivery.channel} {delivery.target} {delivery.message_id}"
    if not delivery.refused:
        return "sent", f"{where} to {', '.join(delivery.delivered)}"
    refused = "; ".join(f"{r.address} ({r.reply})" for r in delivery.refused)
    if not delivery.delivered:
        return "failed", f"refused by {refused} via {where}; run again to retry"
    return "partial", (
        f"sent to {', '.join(delivery.delivered)} but refused by {refused} via {where}; "
        "run again to send to the refused only, or --force to send to all"
    )
