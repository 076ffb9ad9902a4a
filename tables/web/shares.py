"""Each worker's share of a deployment-wide answer, served to the worker that gathers them.

`GET /api/internal/watermarks`, `/api/internal/top` and `/api/internal/status` answer for the
partitions this worker owns now, and say which ones.
"""

from __future__ import annotations

from typing import Any

from faust.types import AppT
from faust.web import Request, Response, View

from app.faust_app import ClickstreamApp, settings_of
from app.windowing.spec import WindowSpec
from tables.owned_partitions import serving_states
from tables.throughput import throughput
from tables.top_products import METRICS, local_source_marks, local_top
from tables.web.guard import BadRequest
from tables.web.params import choice, epoch_ms, reject_unknown, whole_number

MAX_TOP = 100


async def watermarks_share() -> dict[str, Any]:
    """{"partitions": [...], "sources": {input partition: [watermark ms, seconds since]}}."""
    states = serving_states()
    marks = local_source_marks(states.values())
    return {
        "partitions": sorted(states),
        "sources": {str(source): [mark, age] for source, (mark, age) in marks.items()},
    }


async def top_share(spec: WindowSpec, window_start: int, metric: str, limit: int) -> dict[str, Any]:
    """{"partitions": [...], "products": [...]}: this worker's best in the window at
    `window_start` (epoch ms)."""
    states = serving_states()
    products = local_top(states.values(), spec, window_start, metric, limit)
    return {"partitions": sorted(states), "products": [p.as_json() for p in products]}


async def status_share(app: AppT) -> dict[str, Any]:
    """{"worker": its URL, "partitions": [...], "events_per_second"}."""
    return {
        "worker": str(app.conf.canonical_url),
        "partitions": sorted(serving_states()),
        "events_per_second": round(throughput.per_second(), 3),
    }


class WatermarksShareView(View):
    """This worker's newest applied watermark per input partition."""

    async def get(self, request: Request) -> Response:
        reject_unknown(request.query, ())
        return self.json(await watermarks_share())


class TopShareView(View):
    """This worker's best products in one window."""

    async def get(self, request: Request) -> Response:
        query = request.query
        reject_unknown(query, ("window_start", "metric", "limit"))
        start = epoch_ms(query, "window_start")
        spec = settings_of(self.app).window_spec
        if start % spec.step_ms:
            msg = f"window_start={start} is not a multiple of WINDOW_STEP ({spec.step_ms} ms)"
            raise BadRequest(msg, parameter="window_start")
        metric = choice(query, "metric", METRICS, "views")
        limit = whole_number(query, "limit", 5, 1, MAX_TOP)
        return self.json(await top_share(spec, start, metric, limit))


class StatusShareView(View):
    """This worker's processing rate."""

    async def get(self, request: Request) -> Response:
        reject_unknown(request.query, ())
        return self.json(await status_share(self.app))


def register(app: ClickstreamApp) -> None:
    """Serve this worker's shares to the worker that gathers them."""
    app.page("/api/internal/watermarks")(WatermarksShareView)
    app.page("/api/internal/top")(TopShareView)
    app.page("/api/internal/status")(StatusShareView)
