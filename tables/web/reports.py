"""GET /api/reports (the daily reports of the last 14 days, from the run records) and
GET /reports/summary_YYYY-MM-DD.html (one day's HTML report, read-only).

The HTML's path is built from the parsed date, never from the request's text, so no request
can name another file: anything but `summary_<a real date>.html` is a 400.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from faust.web import Request, Response, View

from app.faust_app import ClickstreamApp, settings_of
from app.report_day import yesterday
from app.report_runs import RunLog, RunRecord
from app.settings import Settings
from tables.web.dashboard import report_schedule
from tables.web.guard import BadRequest, NotFound
from tables.web.params import reject_unknown, whole_number

REPORT_NAME = re.compile(r"summary_(\d{4}-\d{2}-\d{2})\.html")
REPORT_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
}


def reports_dir(data_dir: Path) -> Path:
    """Where the daily job writes its reports and run records, under DATA_DIR."""
    return data_dir / "reports"


def html_path(data_dir: Path, day: date) -> Path:
    return reports_dir(data_dir) / f"summary_{day.isoformat()}.html"


def day_status(runs: list[RunRecord]) -> str:
    """sent | partial (refused for some recipients) | failed | no_data | written | pending."""
    if not runs:
        return "pending"
    if any(r.status in ("sent", "skipped") for r in runs):
        return "sent"
    return runs[-1].status


def day_json(data_dir: Path, day: date, runs: list[RunRecord]) -> dict[str, Any]:
    delivered = sorted({a for r in runs for a in r.delivered_to})
    refused = sorted({a for a in (runs[-1].refused_by if runs else ()) if a not in delivered})
    has_html = html_path(data_dir, day).is_file()
    return {
        "day": day.isoformat(),
        "status": day_status(runs),
        "runs": len(runs),
        "finished_at": runs[-1].finished_at.astimezone(UTC).isoformat() if runs else None,
        "detail": runs[-1].detail if runs else "",
        "delivered_to": delivered,
        "refused_by": refused,
        "html": f"/reports/summary_{day.isoformat()}.html" if has_html else None,
    }


def reports_json(now: datetime, days: int, settings: Settings) -> dict[str, Any]:
    """The `days` report days up to yesterday (REPORT_TIMEZONE), newest first."""
    last = yesterday(now, settings.tz)
    path = reports_dir(settings.data_dir) / "runs.sqlite3"
    history = RunLog(path).history() if path.is_file() else []
    listed = []
    for n in range(days):
        day = last - timedelta(days=n)
        runs = [r for r in history if r.report_date == day]
        listed.append(day_json(settings.data_dir, day, runs))
    return {"days": listed, **report_schedule(now, settings)}


class ReportRunsView(View):
    """GET the last ?days=N (14) daily reports: status, recipients, link; the next run."""

    async def get(self, request: Request) -> Response:
        reject_unknown(request.query, ("days",))
        days = whole_number(request.query, "days", 14, 1, 366)
        return self.json(reports_json(datetime.now(UTC), days, settings_of(self.app)))


class ReportFileView(View):
    """GET one day's HTML report by its file name, summary_YYYY-MM-DD.html."""

    async def get(self, request: Request, name: str) -> Any:
        reject_unknown(request.query, ())
        match = REPORT_NAME.fullmatch(name)
        try:
            day = date.fromisoformat(match.group(1)) if match else None
        except ValueError:
            day = None
        if day is None:
            msg = f"{name[:80]!r} is not a report name: expected summary_YYYY-MM-DD.html"
            raise BadRequest(msg)
        path = html_path(settings_of(self.app).data_dir, day)
        if not path.is_file():
            msg = f"no HTML report for {day.isoformat()} (not run yet, or no data)"
            raise NotFound(msg, day=day.isoformat())
        return web.Response(body=path.read_bytes(), content_type="text/html", charset="utf-8",
                            headers=REPORT_HEADERS)  # fmt: skip


def register(app: ClickstreamApp) -> None:
    """Serve GET /api/reports and GET /reports/summary_YYYY-MM-DD.html."""
    app.page("/api/reports")(ReportRunsView)
    app.page("/reports/{name}")(ReportFileView)
