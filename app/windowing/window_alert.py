"""A window that met the alert rule: the record the window stage sends on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WindowAlert:
    """One window's alert: its product, bounds (ms since the epoch) and counts when decided."""

    product_id: str
    window_start_ms: int
    window_end_ms: int
    views: int
    add_to_cart: int
    purchases: int
    decided_at_seq: int = -1  # `seq` of the view that decided it (orders a batch's alerts)

    @property
    def alert_id(self) -> str:
        """`product_id:window start ms`, the alert's id on ALERTS_TOPIC."""
        return f"{self.product_id}:{self.window_start_ms}"
