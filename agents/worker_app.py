"""The worker: the Faust app with every stage, feed and page registered on it.

This is the one place the worker is wired. `faust -A agents.worker_app worker` (what
`clickstream worker` runs in each process) reads this module's `app`, built on first use: no
module registers itself on import (docs/design.md, "Where things live").
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from agents import alert_sink, ingest, notifier, stall_watchdog, window_stage
from agents.ingest import IngestService
from agents.window_stage import MEMBER_PREFIX, WindowStage
from app.errors import SettingsError
from app.faust_app import ClickstreamApp, build_app
from app.mail_config import incident_mail_config
from app.settings import get_settings
from tables import alert_feed, dead_letter_feed, incident_feed, pipeline_probe, throughput
from tables.stage_links import link_stages
from tables.web import (
    api,
    dashboard,
    guard,
    health,
    incidents,
    pipeline,
    product_series,
    product_views,
    reports,
    shares,
    shop_series,
)

REGISTRATIONS: tuple[Callable[[ClickstreamApp], None], ...] = (
    guard.register,  # its middleware must be in place before the web server starts
    ingest.register,
    window_stage.register,
    alert_sink.register,
    notifier.register,
    stall_watchdog.register,
    alert_feed.register,
    incident_feed.register,
    dead_letter_feed.register,
    pipeline_probe.register,
    throughput.register,
    health.register,
    pipeline.register,
    incidents.register,
    shares.register,
    api.register,
    product_views.register,
    product_series.register,
    shop_series.register,
    reports.register,
    dashboard.register,
)


def wire(app: ClickstreamApp) -> ClickstreamApp:
    """Register every stage, feed and page on `app`, and hand the stages down to tables/."""
    for register in REGISTRATIONS:
        register(app)
    link_stages(
        window=lambda: WindowStage.running,
        ingest=lambda: IngestService.running,
        member_prefix=MEMBER_PREFIX,
    )
    return app


@functools.cache
def worker_app() -> ClickstreamApp:
    """This process's worker; a bad setting ends start-up with one line, not a traceback."""
    try:
        settings = get_settings()  # refuses a non-loopback WEB_HOST without WEB_TOKEN
        incident_mail_config(settings)  # ALERT_EMAIL_TO with the mail settings
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return wire(build_app(settings))


def __getattr__(name: str) -> Any:
    if name == "app":
        return worker_app()
    raise AttributeError(name)
