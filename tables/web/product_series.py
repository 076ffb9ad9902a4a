"""GET /api/products/{product_id}/series: everything the product page draws, in one answer.

Answered by the worker that owns the product (forwarded there like the windows endpoint):
the product's counted events per WINDOW_STEP over its stored history (about the last hour
plus one window), each live window against the thresholds with its alert, and the product's
alerts and incidents as every worker holds them.
"""

from __future__ import annotations

import time
from typing import Any

from faust.web import Request, Response, View

from app.faust_app import ClickstreamApp, settings_of
from app.settings import Settings
from app.time_format import iso_utc_ms
from tables.alert_feed import alert_ring
from tables.incident_feed import incident_book
from tables.owned_partitions import serving_state
from tables.product_windows import read_buckets
from tables.web.guard import NotFound
from tables.web.incidents import incident_json
from tables.web.params import reject_unknown
from tables.web.product_views import checked_product, forward_to_owner, owned_state, windows_json


def series_json(product_id: str, partition: int, now_ms: int, settings: Settings) -> dict[str, Any]:
    """The answer's body; times are ISO-8601 UTC, counts whole numbers of events."""
    state = owned_state(partition)
    buckets = [
        {
            "start": iso_utc_ms(b.start_ms),
            "views": b.views,
            "add_to_cart": b.add_to_cart,
            "purchases": b.purchases,
        }
        for b in read_buckets(state, product_id)
    ]
    return {
        "product_id": product_id,
        "bucket_seconds": settings.window_step,
        "window_seconds": settings.window_size,
        "views_threshold": settings.views_threshold,
        "purchases_threshold": settings.purchases_threshold,
        "buckets": buckets,
        "windows": windows_json(product_id, partition, settings),
        "alerts": alert_ring.of_product(product_id),
        "incidents": [incident_json(i, now_ms) for i in incident_book.of_product(product_id)],
        "generated_at": iso_utc_ms(now_ms),
    }


class ProductSeriesView(View):
    """GET one product's per-step counts, windows, alerts and incidents."""

    async def get(self, request: Request, product_id: str) -> Response:
        reject_unknown(request.query, ())
        settings = settings_of(self.app)
        product_id, partition = checked_product(product_id, settings.partitions)
        if serving_state(partition) is None:
            return await forward_to_owner(self, request, partition)
        body = series_json(product_id, partition, int(time.time() * 1000), settings)
        if not (body["buckets"] or body["alerts"] or body["incidents"]):
            msg = f"no events of product {product_id!r} in about the last hour, and no alert"
            raise NotFound(msg, product_id=product_id)
        return self.json(body)


def register(app: ClickstreamApp) -> None:
    """Serve GET /api/products/{product_id}/series."""
    app.page("/api/products/{product_id}/series")(ProductSeriesView)
