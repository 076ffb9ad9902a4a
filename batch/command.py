"""`clickstream report` and `clickstream scheduler`: the daily summary from the command line."""

from __future__ import annotations

from datetime import date

import click

from app.mail_config import MailConfig
from app.mail_delivery import Mailer
from app.report_day import ReportDay, days_between, yesterday
from app.settings import get_settings
from batch.files import FORMATS
from batch.job import ReportJob, RunOutcome, utc_now
from batch.scheduler import ReportScheduler

EXIT_FAILED = 1
EXIT_NO_DATA = 3
EXIT_PARTIAL = 4
EXIT_MISMATCH = 5


class _DateParam(click.ParamType):
    name = "YYYY-MM-DD"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a date as YYYY-MM-DD", param, ctx)


DATE = _DateParam()


@click.command("report")
@click.option("--date", "day", type=DATE, help="The day in REPORT_TIMEZONE [default: yesterday].")
@click.option("--from", "first", type=DATE, help="Backfill: first day (with --to).")
@click.option("--to", "last", type=DATE, help="Backfill: last day, included.")
@click.option(
    "--send/--no-send",
    default=True,
    show_default=True,
    help="Email the report (SMTP, or an .eml in DATA_DIR/outbox without SMTP_HOST).",
)
@click.option("--force", is_flag=True, help="Send even if this day was already sent.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="What to print (all three are written to DATA_DIR/reports).")  # fmt: skip
def report_command(
    day: date | None, first: date | None, last: date | None, send: bool, force: bool, fmt: str
) -> None:
    """Build the daily summary with DuckDB over the day's Parquet files, write it, email it.

    Writes DATA_DIR/reports/summary_DATE.{json,txt,html}. A day already sent is not sent
    again unless --force. Exit status: 0 done, 1 failed, 2 bad usage or settings, 3 no data,
    4 the server refused some recipients (the others got it; a rerun retries only the refused),
    5 written and sent, but the stream's alerts disagree with the backtest's (see the report).

    \b
    Examples:
      clickstream report                          # yesterday, printed and emailed
      clickstream report --date 2024-03-10 --no-send --format json
      clickstream report --date 2024-03-10 --force
      clickstream report --from 2024-03-01 --to 2024-03-07
    """
    if day is not None and (first or last):
        msg = "use either --date or --from/--to, not both"
        raise click.UsageError(msg)
    if (first is None) != (last is None):
        msg = "--from and --to go together"
        raise click.UsageError(msg)
    settings = get_settings()
    mailer = None
    if send:
        mailer = Mailer(MailConfig.from_settings(settings), settings.data_dir / "outbox")
    job = ReportJob(settings, mailer)
    if first is not None and last is not None:
        if last < first:
            msg = f"--to {last} is before --from {first}"
            raise click.UsageError(msg)
        if send:
            job.check_over(ReportDay(last, settings.tz))
        _backfill(job, days_between(first, last), send=send, force=force)
        return
    _single(job, day or yesterday(utc_now(), settings.tz), send=send, force=force, fmt=fmt)


def _single(job: ReportJob, day: date, *, send: bool, force: bool, fmt: str) -> None:
    outcome = job.run(day, send=send, force=force)
    if outcome.status == "no_data":
        click.echo(f"error: no data for {day}: {outcome.detail}. Nothing written or sent.",
                   err=True)  # fmt: skip
        raise SystemExit(EXIT_NO_DATA)
    if outcome.report is not None:
        click.echo(outcome.report.in_format(fmt), nl=False)
    if outcome.files:
        click.echo(f"Written: {', '.join(str(p) for p in outcome.files)}", err=True)
    if outcome.status in ("failed", "partial"):
        click.echo(f"error: {outcome.detail}", err=True)
        raise SystemExit(_failure_status([outcome]))
    click.echo(f"{outcome.status.capitalize()}: {outcome.detail}", err=True)
    if outcome.mismatches:
        _report_mismatches([outcome])
        raise SystemExit(EXIT_MISMATCH)


def _report_mismatches(outcomes: list[RunOutcome]) -> None:
    """One error line per day whose stream alerts disagree with the backtest's."""
    for outcome in outcomes:
        recon = outcome.report.summary.reconciliation if outcome.report else None
        if recon is not None and recon.mismatches:
            click.echo(f"error: {outcome.day}: {recon.headline()} Windows are listed at the "
                       "top of the report; rerun after fixing the stream.", err=True)  # fmt: skip


def _backfill(job: ReportJob, days: list[date], *, send: bool, force: bool) -> None:
    outcomes: list[RunOutcome] = []
    with click.progressbar(
        days,
        label=f"Reports {days[0]} to {days[-1]}",
        file=click.get_text_stream("stderr"),
        item_show_func=lambda d: d.isoformat() if d else None,
    ) as bar:
        for day in bar:
            outcomes.append(job.run(day, send=send, force=force))
    click.echo(outcome_table(outcomes))
    _report_mismatches(outcomes)
    if failure := _failure_status(outcomes):
        raise SystemExit(failure)
    if all(o.status == "no_data" for o in outcomes):
        raise SystemExit(EXIT_NO_DATA)
    if any(o.mismatches for o in outcomes):
        raise SystemExit(EXIT_MISMATCH)


def _failure_status(outcomes: list[RunOutcome]) -> int:
    """EXIT_FAILED if a day failed, else EXIT_PARTIAL if a day reached only some; else 0."""
    if any(o.status == "failed" for o in outcomes):
        return EXIT_FAILED
    return EXIT_PARTIAL if any(o.status == "partial" for o in outcomes) else 0


def outcome_table(outcomes: list[RunOutcome]) -> str:
    """One line per day, then the count of each status."""
    lines = [f"{'date':<12}{'status':<10}detail"]
    lines += [
        f"{o.day.isoformat():<12}{o.status.replace('_', ' '):<10}{o.detail}" for o in outcomes
    ]
    statuses = ("written", "sent", "skipped", "partial", "failed", "no_data")
    counts = {s.replace("_", " "): sum(o.status == s for o in outcomes) for s in statuses}
    if not counts["partial"]:  # rare; the line keeps its usual shape without it
        del counts["partial"]
    lines.append(", ".join(f"{n} {name}" for name, n in counts.items()))
    return "\n".join(lines)


@click.command("scheduler")
@click.option("--once", is_flag=True, help="Run what is due now, then exit.")
def scheduler_command(once: bool) -> None:
    """Run the previous day's report every day at REPORT_TIME in REPORT_TIMEZONE.

    On start it catches up every day missed since the last one sent (on a fresh install,
    only the latest due day), oldest first, and days whose sending failed or reached only
    some recipients. Only one scheduler runs per DATA_DIR (lock file
    DATA_DIR/scheduler.lock). SIGTERM stops it between two reports.

    \b
    Examples:
      clickstream scheduler                # runs until stopped
      clickstream scheduler --once         # from cron or a systemd timer
      REPORT_TIME=06:00 REPORT_TIMEZONE=Europe/Berlin clickstream scheduler
    """
    settings = get_settings()
    MailConfig.from_settings(settings)  # a bad mail setting stops start-up, not the first run
    outcomes = ReportScheduler(settings).serve(once=once)
    if once:
        click.echo(outcome_table(outcomes) if outcomes else "Nothing due.")
        _report_mismatches(outcomes)
        if failure := _failure_status(outcomes):
            raise SystemExit(failure)
        if any(o.mismatches for o in outcomes):
            raise SystemExit(EXIT_MISMATCH)
