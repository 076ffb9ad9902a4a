"""GET / (the live dashboard), its static assets, and GET /api/status that it polls.

Plain files shipped in the package (tables/web/static), no build step and no CDN: users run this
offline. Only the named assets are served, never a path taken from the request.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from aiohttp import web
from faust.web import Request, Response, View

from app.faust_app import ClickstreamApp, settings_of
from app.report_day import next_report_time
from app.settings import Settings
from app.time_format import iso_utc_ms
from tables.pipeline_probe import probe_state
from tables.web.cluster import gather_shares
from tables.web.guard import Unavailable
from tables.web.params import reject_unknown
from tables.web.shares import status_share

logger = logging.getLogger(__name__)

ASSETS = {
    "dashboard.css": "text/css",
    "dashboard.js": "text/javascript",
    "common.js": "text/javascript",
    "charts.js": "text/javascript",
    "panels.js": "text/javascript",
    "product.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}
UPLOT_VERSION = "1.6.32"  # vendored unmodified from npm (MIT): see static/vendor/README.md
VENDOR = {
    "uPlot.iife.min.js": "text/javascript",
    "uPlot.min.css": "text/css",
    "uPlot.LICENSE": "text/plain",
    "README.md": "text/plain",
}
NO_STORE = {"Cache-Control": "no-store"}


def asset(name: str, folder: str = "static") -> bytes:
    return resources.files("tables.web").joinpath(folder, name).read_bytes()


def html_page(name: str) -> web.Response:
    return web.Response(body=asset(name), content_type="text/html", charset="utf-8",
                        headers=NO_STORE)  # fmt: skip


class DashboardView(View):
    """GET the dashboard page."""

    async def get(self, request: Request) -> Any:
        return html_page("dashboard.html")


class ProductPageView(View):
    """GET the product page (its script reads the id from the address and asks the API)."""

    async def get(self, request: Request, product_id: str) -> Any:
        return html_page("product.html")


class StaticAssetView(View):
    """GET one of the dashboard's assets by name."""

    async def get(self, request: Request, name: str) -> Any:
        content_type = ASSETS.get(name)
        if content_type is None:
            raise web.HTTPNotFound()
        return web.Response(body=asset(name), content_type=content_type, headers=NO_STORE)


class VendorAssetView(View):
    """GET one of the vendored files (the charting library, its license) by name."""

    async def get(self, request: Request, name: str) -> Any:
        content_type = VENDOR.get(name)
        if content_type is None:
            raise web.HTTPNotFound()
        body = asset(name, "static/vendor")
        return web.Response(body=body, content_type=content_type, headers=NO_STORE)


def report_schedule(now: datetime, settings: Settings) -> dict[str, str]:
    """The next daily report after `now`: in UTC, in REPORT_TIMEZONE, and that zone's name."""
    local = next_report_time(now, settings.report_time, settings.tz)
    return {
        "next_report_at": iso_utc_ms(int(local.timestamp() * 1000)),
        "next_report_local": local.isoformat(),
        "report_timezone": settings.report_timezone,
    }


class StatusView(View):
    """GET what the dashboard shows besides windows and alerts: rate, lag, next report."""

    async def get(self, request: Request) -> Response:
        reject_unknown(request.query, ())
        settings = settings_of(self.app)

        async def local() -> dict[str, Any]:
            return await status_share(self.app)

        try:
            shares = await gather_shares(self.app, local, "/api/internal/status", {})
            partial = False
        except Unavailable as exc:
            logger.info("status: answering for this worker only: %s", exc)
            shares, partial = [await local()], True
        probe = probe_state.latest
        body = {
            "events_per_second": round(sum(float(s["events_per_second"]) for s in shares), 3),
            "workers": len(shares),
            "partial": partial,
            "consumer_lag": dict(probe.lag) if probe is not None and probe.reachable else None,
            "broker_reachable": None if probe is None else probe.reachable,
            **report_schedule(datetime.now(UTC), settings),
            "thresholds": {
                "views_above": settings.views_threshold,
                "purchases_below": settings.purchases_threshold,
                "window_seconds": settings.window_size,
                "step_seconds": settings.window_step,
            },
            "generated_at": iso_utc_ms(int(time.time() * 1000)),
        }
        return self.json(body)


def register(app: ClickstreamApp) -> None:
    """Serve the dashboard, the product page, their assets and GET /api/status."""
    app.page("/")(DashboardView)
    app.page("/products/{product_id}")(ProductPageView)
    app.page("/static/{name}")(StaticAssetView)
    app.page("/static/vendor/{name}")(VendorAssetView)
    app.page("/api/status")(StatusView)
