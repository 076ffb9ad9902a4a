"""JSON views over one product's window state, answered by the worker that owns the product.

A request that reaches another worker is forwarded once to the owner, as the window stage's
consumer group assigns it (`tables.web.cluster.owner_url`), with the caller's token.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from faust.types import AppT
from faust.web import Request, Response, View
from yarl import URL

from app.events import MAX_ID_LENGTH
from app.faust_app import ClickstreamApp, settings_of
from app.product_batches import product_partition
from app.settings import Settings
from app.time_format import iso_utc_ms
from app.windowing.alert_rule import qualifies
from app.windowing.partition_windows import PartitionWindows
from app.windowing.slices import state_key
from tables.alert_feed import alert_ring
from tables.owned_partitions import serving_state
from tables.product_windows import WindowCounts, read_windows
from tables.web.cluster import PEER_TIMEOUT_S, is_self, owner_url
from tables.web.guard import BadRequest, Unavailable

FORWARDED_HEADER = "X-Clickstream-Forwarded"  # a forwarded request is never forwarded again
ALERT_FIELDS = ("alert_id", "views", "add_to_cart", "purchases", "detected_at")


def checked_product(product_id: str, partitions: int) -> tuple[str, int]:
    """(product_id, its worker partition of `partitions`); BadRequest for an id no event
    could carry."""
    if len(product_id) > MAX_ID_LENGTH:
        msg = f"product_id is longer than {MAX_ID_LENGTH} characters"
        raise BadRequest(msg)
    return product_id, product_partition(product_id, partitions)


def owned_state(partition: int) -> PartitionWindows:
    """The partition's window state; Unavailable while this worker cannot answer for it."""
    state = serving_state(partition)
    if state is None:
        msg = f"partition {partition} is not served here right now (rebalance or recovery)"
        raise Unavailable(msg, retry=True)
    return state


def live_windows(product_id: str, partition: int) -> list[WindowCounts]:
    """Every window of the product (of worker `partition`) that holds events and has not
    expired, oldest first."""
    state = owned_state(partition)
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


def alerted_at(state: PartitionWindows, product_id: str, start_ms: int) -> dict[str, Any] | None:
    """The window's alert as ALERTS_TOPIC carries it (counts at alert time), or None when it
    did not alert. An alert this worker recorded but no longer holds in memory (older than the
    newest ~1000) has null counts."""
    alert_id = f"{product_id}:{start_ms}"
    alert = alert_ring.get(alert_id)
    if alert is not None:
        return {name: alert[name] for name in ALERT_FIELDS}
    if state.alerted.get(state_key(product_id, start_ms)) is None:
        return None
    return {name: alert_id if name == "alert_id" else None for name in ALERT_FIELDS}


def window_json(
    window: WindowCounts, alerted: dict[str, Any] | None, settings: Settings
) -> dict[str, Any]:
    """One window's counts against VIEWS_THRESHOLD and PURCHASES_THRESHOLD, with its alert."""
    meets_rule = qualifies(
        window.views, window.purchases, settings.views_threshold, settings.purchases_threshold
    )
    return {
        "window_start": iso_utc_ms(window.start_ms),
        "window_end": iso_utc_ms(window.end_ms),
        "views": window.views,
        "add_to_cart": window.add_to_cart,
        "purchases": window.purchases,
        "qualifies": meets_rule,
        "qualifies_now": meets_rule,
        "alerted": alerted,
    }


def windows_json(product_id: str, partition: int, settings: Settings) -> list[dict[str, Any]]:
    """Every live window of the product (of worker `partition`) as JSON, oldest first."""
    state = owned_state(partition)
    return [
        window_json(w, alerted_at(state, product_id, w.start_ms), settings)
        for w in live_windows(product_id, partition)
    ]


async def forward_to_owner(view: View, request: Request, partition: int) -> Response:
    """Ask the worker that owns `partition`; 503 while none does (rebalance, recovery)."""
    app: AppT = view.app
    owner = await owner_url(app, partition)
    if owner is None or is_self(app, owner) or request.headers.get(FORWARDED_HEADER):
        msg = f"partition {partition} is not served here right now (rebalance or recovery)"
        raise Unavailable(msg, retry=True)
    headers = {FORWARDED_HEADER: "1"}
    if "Authorization" in request.headers:
        headers["Authorization"] = request.headers["Authorization"]
    url = URL(owner).with_path(request.url.path).with_query(request.query)
    timeout = aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
    async with app.http_client.get(url, headers=headers, timeout=timeout) as response:
        body = await response.read()
        return view.bytes(body, content_type="application/json", status=response.status)


class ProductWindowsView(View):
    """GET every live window of one product."""

    async def get(self, request: Request, product_id: str) -> Response:
        settings = settings_of(self.app)
        product_id, partition = checked_product(product_id, settings.partitions)
        if serving_state(partition) is None:
            return await forward_to_owner(self, request, partition)
        windows = windows_json(product_id, partition, settings)
        return self.json({"product_id": product_id, "windows": windows})


def register(app: ClickstreamApp) -> None:
    """Serve GET /api/products/{product_id}/windows."""
    app.page("/api/products/{product_id}/windows")(ProductWindowsView)
