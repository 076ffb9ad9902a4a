"""GET /api/top and GET /api/alerts: answers any worker gives for the whole deployment."""

from __future__ import annotations

import time
from typing import Any

from faust.types import AppT
from faust.web import Request, Response, View

from app.faust_app import ClickstreamApp, settings_of
from app.time_format import iso_utc_ms
from tables.alert_feed import RING_SIZE, alert_ring
from tables.pipeline_probe import probe_state
from tables.top_products import (
    METRICS,
    ProductCounts,
    SourceMarks,
    global_watermark,
    latest_complete_window,
    merge_mark,
    rank,
)
from tables.web.cluster import gather_shares, require_all_partitions
from tables.web.params import choice, reject_unknown, whole_number
from tables.web.shares import MAX_TOP, top_share, watermarks_share

PROBE_FRESH_S = 30.0

COMPLETE_WINDOW = (
    "the newest window whose end the watermark has passed (watermark > window_end); the "
    "watermark is the lowest, over input partitions, of (newest event time - ALLOWED_LATENESS) "
    "the window agent has applied, so no later event can change this window"
)
OPEN_WINDOW = (
    "the oldest window the watermark has not closed yet (the one after the latest complete "
    "window): it holds the most recent WINDOW_SIZE of events and is still counting"
)
WINDOWS = ("open", "complete")


def committed_marks(allowed_lateness_s: int) -> SourceMarks:
    """Watermarks from the ingest group's commits, once the window agent has applied all.

    Right after a restart no batch has been applied yet; if the window agent has no lag, every
    input the ingest stage committed is already in the windows, so its watermark holds.
    """
    probe = probe_state.latest
    if probe is None or not probe.reachable or time.time() - probe.at > PROBE_FRESH_S:
        return {}
    if probe.lag.get("windows", 1) != 0:
        return {}
    lateness = allowed_lateness_s * 1000
    return {source: (seen - lateness, 0.0) for source, seen in probe.committed_max_event_ms.items()}


async def deployment_watermark(app: AppT) -> int | None:
    """The lowest, over input partitions, of the newest watermark any worker applied (epoch
    ms); None before any is known. Unavailable while partitions are missing or doubled."""
    settings = settings_of(app)
    shares = await gather_shares(app, watermarks_share, "/api/internal/watermarks", {})
    require_all_partitions(shares, settings.partitions)
    marks: SourceMarks = {}
    for share in shares:
        for source, (mark, age) in share["sources"].items():
            merge_mark(marks, int(source), int(mark), float(age))
    return global_watermark(marks or committed_marks(settings.allowed_lateness))


class TopProductsView(View):
    """GET the top products of the latest complete (default) or the open window, across workers."""

    async def get(self, request: Request) -> Response:
        query = request.query
        reject_unknown(query, ("metric", "limit", "window"))
        metric = choice(query, "metric", METRICS, "views")
        limit = whole_number(query, "limit", 5, 1, MAX_TOP)
        which = choice(query, "window", WINDOWS, "complete")
        body: dict[str, Any] = {
            "metric": metric,
            "limit": limit,
            "window": which,
            "still_counting": which == "open",
            "complete_window": COMPLETE_WINDOW,
            "open_window": OPEN_WINDOW,
            "watermark": None,
            "window_start": None,
            "window_end": None,
            "products": [],
        }
        watermark = await deployment_watermark(self.app)
        if watermark is None:
            return self.json(body)
        settings = settings_of(self.app)
        spec = settings.window_spec
        start = latest_complete_window(spec, watermark)
        if which == "open":
            start += spec.step_ms
        params = {"window_start": str(start), "metric": metric, "limit": str(limit)}

        async def local() -> dict[str, Any]:
            return await top_share(spec, start, metric, limit)

        shares = await gather_shares(self.app, local, "/api/internal/top", params)
        require_all_partitions(shares, settings.partitions)
        found = [ProductCounts(**p) for share in shares for p in share["products"]]
        products = [{"rank": n, **p.as_json()} for n, p in enumerate(rank(found, metric, limit), 1)]
        body.update(
            watermark=iso_utc_ms(watermark),
            window_start=iso_utc_ms(start),
            window_end=iso_utc_ms(start + spec.size_ms),
            products=products,
        )
        return self.json(body)


class AlertsView(View):
    """GET the newest flash-sale alerts, newest first (by detected_at)."""

    async def get(self, request: Request) -> Response:
        reject_unknown(request.query, ("limit",))
        limit = whole_number(request.query, "limit", 50, 1, RING_SIZE)
        alerts = alert_ring.newest(limit)
        return self.json({"limit": limit, "count": len(alerts), "alerts": alerts})


def register(app: ClickstreamApp) -> None:
    """Serve GET /api/top and GET /api/alerts."""
    app.page("/api/top")(TopProductsView)
    app.page("/api/alerts")(AlertsView)
