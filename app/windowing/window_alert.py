"""A window that met the alert rule: the record the window stage sends on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WindowAlert:
    product_id: str
    window_start_ms: int
    window_end_ms: int
    views: int
    add_to_cart: int
    purchases: int
    decided_at_seq: int = -1  # `seq` of the view that decided it (orders a batch's alerts)

    @property
    def alert_id(self) -> str:
        return f"{self.product_id}:{self.window_start_ms}"
