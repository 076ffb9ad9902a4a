"""GET /api/incidents: the deployment's incidents, newest opened first, from memory."""

from __future__ import annotations

import time
from typing import Any

from faust.web import Request, Response, View

from app.faust_app import ClickstreamApp
from app.incident_records import IncidentRecord
from app.time_format import epoch_ms_of_iso, iso_utc_ms
from tables.incident_feed import incident_book
from tables.web.params import choice, reject_unknown, whole_number

MAX_LIMIT = 1000
STATUSES = ("all", "open", "resolved")


def incident_json(incident: IncidentRecord, now_ms: int) -> dict[str, Any]:
    """The record plus `duration_seconds`: opened to resolved, or to `now_ms` while open."""
    end = now_ms if incident.resolved_at is None else epoch_ms_of_iso(incident.resolved_at)
    duration = max(0.0, (end - epoch_ms_of_iso(incident.opened_at)) / 1000)
    return {**incident.to_dict(), "duration_seconds": round(duration, 3)}


class IncidentsView(View):
    """GET incidents newest first: ?status=open|resolved (default both), ?limit=N (50)."""

    async def get(self, request: Request) -> Response:
        query = request.query
        reject_unknown(query, ("status", "limit"))
        status = choice(query, "status", STATUSES, "all")
        limit = whole_number(query, "limit", 50, 1, MAX_LIMIT)
        now_ms = int(time.time() * 1000)
        incidents = [incident_json(i, now_ms) for i in incident_book.newest(status, limit)]
        return self.json(
            {"status": status, "limit": limit, "count": len(incidents), "incidents": incidents,
             "generated_at": iso_utc_ms(now_ms)}
        )  # fmt: skip


def register(app: ClickstreamApp) -> None:
    """Serve GET /api/incidents."""
    app.page("/api/incidents")(IncidentsView)
