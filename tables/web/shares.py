"""Each worker's share of a deployment-wide answer, served to the worker that gathers them.

`GET /api/internal/watermarks`, `/api/internal/top` and `/api/internal/status` answer for the
partitions this worker owns now, and say which ones.
"""

from __future__ import annotations

from typing import Any

from faust.web import Request, Response, View

from app.faust_app import get_app
from app.settings import get_settings
from tables.owned_partitions import serving_states
from tables.throughput import throughput
from tables.top_products import METRICS, local_source_marks, local_top
from tables.web.guard import BadRequest
from tables.web.params import choice, epoch_ms, reject_unknown, whole_number

app = get_app()
settings = get_settings()
SPEC = settings.window_spec
MAX_TOP = 100


async def watermarks_share() -> dict[str, Any]:
    states = serving_states()
    marks = local_source_marks(states.values())
    return {
        "partitions": sorted(states),
        "sources": {str(source): [mark, age] for source, (mark, age) in marks.items()},
    }


async def top_share(window_start: int, metric: str, limit: int) -> dict[str, Any]:
    states = serving_states()
    products = local_top(states.values(), SPEC, window_start, metric, limit)
    return {"partitions": sorted(states), "products": [p.as_json() for p in products]}


async def status_share() -> dict[str, Any]:
    return {
        "worker": str(app.conf.canonical_url),
        "partitions": sorted(serving_states()),
        "events_per_second": round(throughput.per_second(), 3),
    }


@app.page("/api/internal/watermarks")
class WatermarksShareView(View):
    """This worker's newest applied watermark per input partition."""

    async def get(self, request: Request) -> Response:
        reject_unknown(request.query, ())
        return self.json(await watermarks_share())


@app.page("/api/internal/top")
class TopShareView(View):
    """This worker's best products in one window."""

    async def get(self, request: Request) -> Response:
        query = request.query
        reject_unknown(query, ("window_start", "metric", "limit"))
        start = epoch_ms(query, "window_start")
        if start % SPEC.step_ms:
            msg = f"window_start={start} is not a multiple of WINDOW_STEP ({SPEC.step_ms} ms)"
            raise BadRequest(msg, parameter="window_start")
        metric = choice(query, "metric", METRICS, "views")
        limit = whole_number(query, "limit", 5, 1, MAX_TOP)
        return self.json(await top_share(start, metric, limit))


@app.page("/api/internal/status")
class StatusShareView(View):
    """This worker's processing rate."""

    async def get(self, request: Request) -> Response:
        reject_unknown(request.query, ())
        return self.json(await status_share())
