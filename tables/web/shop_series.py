"""GET /api/shop/series: the whole shop's counted events per WINDOW_STEP by type, over the
last 60 minutes of event time (ending with the newest step any product has events in).

Each worker sums the stored slices of the partitions it owns (`/api/internal/shop-series`);
the asked worker adds the shares up, refusing an answer that misses partitions. Events too
late for every window are in no slice, so they are not drawn (see `late_events`).
"""

from __future__ import annotations

from typing import Any

from faust.web import Request, Response, View

from app.faust_app import ClickstreamApp, settings_of
from app.time_format import iso_utc_ms
from app.windowing.slices import Slice, state_key
from tables.owned_partitions import serving_states
from tables.web.cluster import gather_shares, require_all_partitions
from tables.web.params import reject_unknown

SPAN_MS = 3600_000


async def shop_share() -> dict[str, Any]:
    """{"partitions": [...], "buckets": {start_ms: [views, carts, purchases]}} of this worker,
    the last SPAN_MS of each partition's stored slices."""
    states = serving_states()
    totals: dict[int, list[int]] = {}
    for state in states.values():
        stored = state.stored_slices()
        if not stored:
            continue
        since = max(stored) - SPAN_MS
        for start, products in stored.items():
            if start <= since:
                continue
            row = totals.setdefault(start, [0, 0, 0])
            for product in products:
                raw = state.slices.get(state_key(product, start))
                if raw is not None:
                    counts = Slice.decode(raw).counts_for_offset(0)
                    for i in range(3):
                        row[i] += counts[i]
    return {"partitions": sorted(states), "buckets": {str(s): c for s, c in totals.items()}}


def merge_buckets(shares: list[dict[str, Any]], step_ms: int) -> list[dict[str, Any]]:
    """Every step of the last SPAN_MS up to the newest with events, oldest first, zeros kept."""
    totals: dict[int, list[int]] = {}
    for share in shares:
        for start, counts in share["buckets"].items():
            row = totals.setdefault(int(start), [0, 0, 0])
            for i in range(3):
                row[i] += int(counts[i])
    if not totals:
        return []
    newest = max(totals)
    first = newest - SPAN_MS + step_ms
    return [
        {"start": iso_utc_ms(s), "views": c[0], "add_to_cart": c[1], "purchases": c[2]}
        for s in range(first, newest + 1, step_ms)
        for c in [totals.get(s, [0, 0, 0])]
    ]


class ShopSeriesView(View):
    """GET the shop's events per step by type over the last hour of event time."""

    async def get(self, request: Request) -> Response:
        reject_unknown(request.query, ())
        settings = settings_of(self.app)
        shares = await gather_shares(self.app, shop_share, "/api/internal/shop-series", {})
        require_all_partitions(shares, settings.partitions)
        buckets = merge_buckets(shares, settings.window_step * 1000)
        return self.json({"bucket_seconds": settings.window_step, "buckets": buckets})


class ShopShareView(View):
    """This worker's share of the shop series."""

    async def get(self, request: Request) -> Response:
        reject_unknown(request.query, ())
        return self.json(await shop_share())


def register(app: ClickstreamApp) -> None:
    """Serve GET /api/shop/series and this worker's share of it."""
    app.page("/api/shop/series")(ShopSeriesView)
    app.page("/api/internal/shop-series")(ShopShareView)
