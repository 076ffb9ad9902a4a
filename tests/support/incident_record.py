"""An incident record as INCIDENTS_TOPIC carries it when an incident opens."""

from __future__ import annotations

OPENED: dict[str, object] = {
    "incident_id": "P0036:1764489600000", "event": "opened", "sequence": 0,
    "product_id": "P0036", "status": "open", "opened_at": "2025-11-30T08:10:01.234000Z",
    "first_window_start": "2025-11-30T08:00:00Z", "first_window_end": "2025-11-30T08:10:00Z",
    "latest_window_start": "2025-11-30T08:00:00Z", "latest_window_end": "2025-11-30T08:10:00Z",
    "windows": 1, "peak_views": 140, "purchases": 2, "views_threshold": 100,
    "purchases_threshold": 5, "emitted_at": "2025-11-30T08:10:01.300000Z",
    "resolved_at": None, "resolution": None,
}  # fmt: skip
