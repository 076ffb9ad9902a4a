"""GET /api/pipeline: one line per stage (ingest, windows, alert sink, Parquet sink) for the
dashboard's strip, from the same facts as /health and /metrics.

A stage's status is `failing` (the broker does not answer; undecodable input for ingest;
Parquet writes refused for the sink), else `stalled` (input waiting, no progress for
STALL_SECONDS), else `lagging` (more than LAGGING_SECONDS of input at the current rate waiting,
and at least LAGGING_RECORDS), else `ok`. Lag is the whole deployment's (the broker's view);
events/s, late events and the last Parquet write are this worker's; dead letters are the
deployment's last hour, read from DLQ_TOPIC.
"""

from __future__ import annotations

import time
from typing import Any

from faust.web import Request, Response, View

from app import metrics
from app.faust_app import ClickstreamApp
from app.time_format import iso_utc_ms
from tables.dead_letter_feed import dead_letter_log
from tables.pipeline_probe import probe_state
from tables.throughput import throughput
from tables.web.health import current_stalls, sink_failing, undecodable_partitions
from tables.web.params import reject_unknown

LAGGING_SECONDS = 10.0
LAGGING_RECORDS = 1000
STAGES = (("ingest", "ingest"), ("windows", "windows"), ("alert_sink", "alerts"),
          ("parquet_sink", "ingest"))  # fmt: skip


def stage_status(failing: bool, stalled: bool, lag: int | None, rate: float) -> str:
    if failing:
        return "failing"
    if stalled:
        return "stalled"
    if lag is not None and lag > max(LAGGING_RECORDS, rate * LAGGING_SECONDS):
        return "lagging"
    return "ok"


def pipeline_json(now: float) -> dict[str, Any]:
    """{"stages": [{stage, status, lag, events_per_second, ...}], "checked_at"}."""
    probe = probe_state.latest
    reachable = probe is not None and probe.reachable
    lags = dict(probe.lag) if probe is not None and reachable else {}
    stalls = current_stalls()
    rate = round(throughput.per_second(), 3)
    undecodable = bool(undecodable_partitions())
    last_write = metrics.PARQUET_LAST_WRITE.get()
    stages = []
    for name, probe_stage in STAGES:
        failing = probe is not None and not reachable
        failing |= (name == "ingest" and undecodable) or (name == "parquet_sink" and sink_failing())
        lag = lags.get(probe_stage)
        stage: dict[str, Any] = {
            "stage": name,
            "status": stage_status(failing, probe_stage in stalls, lag, rate),
            "lag": lag,
            "events_per_second": rate if name in ("ingest", "parquet_sink") else None,
        }
        if name == "ingest":
            stage["dead_letters_last_hour"] = dead_letter_log.last_hour(int(now * 1000))
        if name == "windows":
            stage["late_events"] = int(metrics.LATE_EVENTS.total())
        if name == "parquet_sink":
            stage["last_durable_write"] = iso_utc_ms(int(last_write * 1000)) if last_write else None
        stages.append(stage)
    return {"stages": stages, "broker_reachable": None if probe is None else reachable,
            "checked_at": iso_utc_ms(int(now * 1000))}  # fmt: skip


class PipelineView(View):
    """GET each stage's status, lag, rate, dead letters, late events and last Parquet write."""

    async def get(self, request: Request) -> Response:
        reject_unknown(request.query, ())
        return self.json(pipeline_json(time.time()))


def register(app: ClickstreamApp) -> None:
    """Serve GET /api/pipeline."""
    app.page("/api/pipeline")(PipelineView)
