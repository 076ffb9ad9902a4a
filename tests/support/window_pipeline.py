"""The ingest router and window states wired with dicts for stores, without Kafka."""

from __future__ import annotations

from dataclasses import dataclass

from agents.ingest_router import IngestRouter
from app.events import EventParser
from app.windowing.partition_windows import PartitionWindows
from app.windowing.spec import WindowSpec

SPEC = WindowSpec.from_seconds(600, 60)
NOW_MS = 2_000_000_000_000


@dataclass
class Record:
    offset: int
    value: bytes


class Pipeline:
    """Ingest router and window states wired with dicts for stores, as the worker wires them."""

    def __init__(self, sources: int, partitions: int = 2) -> None:
        self.router = IngestRouter(EventParser(262144, 3600), SPEC, 60_000, partitions)
        self.router.source_partitions = sources
        self.stores = [({}, {}) for _ in range(partitions)]
        self.states = [self.fresh_state(q) for q in range(partitions)]
        self.alerts: list[tuple[str, int, int, int, int]] = []

    def fresh_state(self, q: int) -> PartitionWindows:
        slices, alerted = self.stores[q]
        return PartitionWindows(
            SPEC, 100, 5, 3600_000, slices, alerted,  # type: ignore[arg-type]
            stored_slice_keys=list(slices), stored_alert_keys=list(alerted),
        )  # fmt: skip

    def feed(self, source: int, records: list[Record]) -> None:
        routed = self.router.route("in", source, records, NOW_MS)
        for target, batch in routed.batches.items():
            state = self.states[target]
            for alert in state.apply(batch):
                self.alerts.append((alert.product_id, alert.window_start_ms, alert.views,
                                    alert.add_to_cart, alert.purchases))  # fmt: skip
                state.mark_alerted(alert)
            state.flush()
