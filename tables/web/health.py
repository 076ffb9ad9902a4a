"""GET /health (200 or 503, with the reasons) and GET /metrics (Prometheus text format).

This worker is unhealthy (503) while the broker does not answer, while window state recovers,
while Parquet writes fail (reading is paused), while a stage is stalled (input waiting and no
progress for STALL_SECONDS, see app/stall_detector), while an incident notification channel
fails (app/notify/status), or before its first look at the broker. The ingest stage's own
troubles are asked of the running stage (`tables.stage_links`), not read back from /metrics.
Consumer lag and the last event are reported, not judged: a quiet shop is not a fault.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from faust.web import Request, Response, View

from app import metrics
from app.faust_app import ClickstreamApp, settings_of
from app.notify.status import notification_problems
from app.settings import Settings
from app.stall_detector import get_stall_detector, stall_problems
from app.time_format import iso_utc_ms
from tables.owned_partitions import owned_partitions, settled
from tables.pipeline_probe import PROBE_EVERY_S, probe_state
from tables.stage_links import stages
from tables.throughput import newest_event_ms, throughput
from tables.web.params import reject_unknown

PROBE_STALE_S = 6 * PROBE_EVERY_S


def current_stalls() -> dict[str, list[int]]:
    """Stage -> stalled partitions now, with `clickstream_stage_stalled` set to match."""
    detector = get_stall_detector()
    stalled = detector.stalled()
    # Stages seen before keep a 0, so that a recovered or revoked stage does not stay at 1.
    seen = {stage for (stage,) in metrics.STAGE_STALLED.values()}
    for stage in detector.stages() | seen:
        metrics.STAGE_STALLED.set(1 if stage in stalled else 0, stage)
    return stalled


def _refresh_stage_stalled() -> None:
    current_stalls()


def sink_failing() -> bool:
    """The ingest stage's Parquet writes fail and its reading is paused; False where no
    ingest stage runs (no sink here to fail)."""
    ingest = stages.ingest()
    return ingest is not None and ingest.sink_failing()


def undecodable_partitions() -> list[int]:
    """Input partitions whose reading is stopped at a batch this worker cannot decode, in
    order; [] where no ingest stage runs."""
    ingest = stages.ingest()
    return [] if ingest is None else sorted(ingest.undecodable_partitions())


def health_report(now: float, settings: Settings) -> tuple[bool, dict[str, Any]]:
    """(healthy, body) at `now` (wall clock, seconds): the body GET /health answers."""
    problems: list[str] = []
    probe = probe_state.latest
    broker: dict[str, Any] = {"reachable": None, "checked_at": None, "error": None}
    if probe is None:
        problems.append("starting: the broker has not been checked yet")
    else:
        broker.update(reachable=probe.reachable, checked_at=iso_utc_ms(int(probe.at * 1000)))
        if not probe.reachable:
            broker["error"] = probe.error
            problems.append(f"broker unreachable: {probe.error}")
        elif now - probe.at > PROBE_STALE_S:
            problems.append(f"broker not checked for {now - probe.at:.0f} s")
    if not settled():
        problems.append("window state is being recovered from its changelog (start or rebalance)")
    if sink_failing():
        problems.append("Parquet writes are failing; input reading is paused")
    for partition in undecodable_partitions():
        problems.append(
            f"input partition {partition} holds a batch this worker cannot decode; its reading "
            "is stopped there (the worker log says where and what to do)"
        )
    stalled = current_stalls()
    problems.extend(stall_problems(stalled, get_stall_detector().stall_seconds))
    problems.extend(notification_problems())
    newest = newest_event_ms(settings.allowed_lateness)
    received = throughput.last_received_at
    body = {
        "status": "unavailable" if problems else "ok",
        "problems": problems,
        "broker": broker,
        "consumer_lag": dict(probe.lag) if probe is not None and probe.reachable else None,
        "last_event_time": None if newest is None else iso_utc_ms(newest),
        "last_event_received_at": None if received is None else iso_utc_ms(int(received * 1000)),
        "events_per_second": round(throughput.per_second(), 3),
        "partitions": sorted(owned_partitions()),
        "rebalancing": not settled(),
        "stalled": stalled,
        "checked_at": iso_utc_ms(int(now * 1000)),
    }
    return not problems, body


class HealthView(View):
    """GET this worker's health: 200 when it can do its job, 503 with the reasons when not."""

    async def get(self, request: Request) -> Response:
        reject_unknown(request.query, ())
        healthy, body = health_report(time.time(), settings_of(self.app))
        return self.json(body, status=200 if healthy else 503)


class MetricsView(View):
    """GET every counter and gauge of this worker in Prometheus text format."""

    async def get(self, request: Request) -> Any:
        reject_unknown(request.query, ())
        return web.Response(body=metrics.render(), headers={"Content-Type": metrics.CONTENT_TYPE})


def register(app: ClickstreamApp) -> None:
    """Serve GET /health and GET /metrics; keep `clickstream_stage_stalled` fresh in /metrics."""
    metrics.on_collect(_refresh_stage_stalled)
    app.page("/health")(HealthView)
    app.page("/metrics")(MetricsView)
