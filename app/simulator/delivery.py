"""What happened to the events a run produced: queued, acknowledged (sent) or failed, by type."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.events import EVENT_TYPES


@dataclass
class DeliveryStats:
    """Running totals; `sent` only counts events the destination acknowledged."""

    sent: int = 0
    failed: int = 0
    pending: int = 0
    sent_by_type: list[int] = field(default_factory=lambda: [0] * len(EVENT_TYPES))

    def queued(self, counts: list[int]) -> None:
        self.pending += sum(counts)

    def acknowledged(self, counts: list[int]) -> None:
        total = sum(counts)
        self.pending -= total
        self.sent += total
        for event_type, count in enumerate(counts):
            self.sent_by_type[event_type] += count

    def failed_with(self, counts: list[int]) -> None:
        total = sum(counts)
        self.pending -= total
        self.failed += total

    def by_type(self) -> dict[str, int]:
        return dict(zip(EVENT_TYPES, self.sent_by_type, strict=True))
