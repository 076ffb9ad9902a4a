"""JSON views over the window state, answered by the worker that owns the product.

A request that reaches another worker is forwarded once to the owner, as the window stage's
consumer group assigns it (`tables.cluster.owner_url`), with the caller's token.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from faust.web import Request, Response, View
from yarl import URL

from agents.alerts import iso_utc
from app.events import MAX_ID_LENGTH
from app.faust_app import get_app
from app.product_batches import product_partition
from app.settings import get_settings
from tables.cluster import PEER_TIMEOUT_S, is_self, owner_url
from tables.owned_partitions import serving_state
from tables.product_windows import WindowCounts, read_windows
from tables.web_guard import BadRequest, Unavailable

app = get_app()
settings = get_settings()
FORWARDED_HEADER = "X-Clickstream-Forwarded"  # a forwarded request is never forwarded again


def live_windows(product_id: str) -> list[WindowCounts]:
    """Every window of the product that holds events and has not expired, oldest first."""
    partition = product_partition(product_id, settings.partitions)
    state = serving_state(partition)
    if state is None:
        msg = f"partition {partition} is not served here right now (rebalance or recovery)"
        raise Unavailable(msg, retry=True)
    starts = state.stored_slice_starts(product_id)
    if not starts:
        return []
    step, per_event = state.spec.step_ms, state.spec.per_event
    # Windows that lost slices to expiry are left out; every other one is whole.
    first = max(starts[0] - (per_event - 1) * step, state.oldest_complete_window())
    newest = starts[-1]
    if first > newest:
        return []
    windows = read_windows(state, product_id, newest, (newest - first) // step + 1)
    return [w for w in windows if w.views or w.add_to_cart or w.purchases]


def window_json(window: WindowCounts) -> dict[str, Any]:
    return {
        "window_start": iso_utc(window.start_ms),
        "window_end": iso_utc(window.end_ms),
        "views": window.views,
        "add_to_cart": window.add_to_cart,
        "purchases": window.purchases,
        "qualifies": window.views > settings.views_threshold
        and window.purchases < settings.purchases_threshold,
    }


@app.page("/api/products/{product_id}/windows")
class ProductWindowsView(View):
    """GET every live window of one product."""

    async def get(self, request: Request, product_id: str) -> Response:
        if len(product_id) > MAX_ID_LENGTH:
            msg = f"product_id is longer than {MAX_ID_LENGTH} characters"
            raise BadRequest(msg)
        partition = product_partition(product_id, settings.partitions)
        if serving_state(partition) is None:
            return await self.forward(request, partition)
        windows = [window_json(w) for w in live_windows(product_id)]
        return self.json({"product_id": product_id, "windows": windows})

    async def forward(self, request: Request, partition: int) -> Response:
        """Ask the worker that owns `partition`; 503 while none does (rebalance, recovery)."""
        owner = await owner_url(partition)
        if owner is None or is_self(owner) or request.headers.get(FORWARDED_HEADER):
            msg = f"partition {partition} is not served here right now (rebalance or recovery)"
            raise Unavailable(msg, retry=True)
        headers = {FORWARDED_HEADER: "1"}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        url = URL(owner).with_path(request.url.path).with_query(request.query)
        timeout = aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
        async with app.http_client.get(url, headers=headers, timeout=timeout) as response:
            body = await response.read()
            return self.bytes(body, content_type="application/json", status=response.status)
