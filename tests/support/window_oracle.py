"""An independent recount of windows and alerts: plain Python, no Faust, no project code.

It replays the same input in the same per-partition order and applies docs/design.md's window semantics literally:
epoch-aligned windows [k*step, k*step + size); watermark per partition = max event time seen
(including the event at hand) - lateness; a window is closed once the watermark passes its end
(watermark > end) and closed windows ignore later events; a window alerts the first time
views > V and purchases < P.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

TYPES = {"view": 0, "add_to_cart": 1, "purchase": 2}


def timestamp_ms(value: object) -> int:
    if isinstance(value, (int, float)):
        return int(value) if value > 10**11 else int(value * 1000)
    text = str(value)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return round(parsed.timestamp() * 1000)


class WindowOracle:
    def __init__(self, size_s: int = 600, step_s: int = 60, lateness_s: int = 60,
                 views: int = 100, purchases: int = 5) -> None:  # fmt: skip
        self.size, self.step, self.lateness = size_s * 1000, step_s * 1000, lateness_s * 1000
        self.views, self.purchases = views, purchases
        self.windows: dict[tuple[str, int], list[int]] = {}
        self.alerts: dict[tuple[str, int], tuple[int, int, int]] = {}
        self.max_seen: dict[int, int] = {}
        self.late = 0

    def feed(self, partition: int, event: dict[str, object]) -> None:
        t = timestamp_ms(event["timestamp"])
        self.max_seen[partition] = max(self.max_seen.get(partition, t), t)
        watermark = self.max_seen[partition] - self.lateness
        counted = False
        start = t - self.size
        start -= start % self.step
        while start <= t:
            if start <= t < start + self.size and not watermark > start + self.size:
                key = (str(event["product_id"]), start)
                counts = self.windows.setdefault(key, [0, 0, 0])
                counts[TYPES[str(event["event_type"])]] += 1
                counted = True
                if counts[0] > self.views and counts[2] < self.purchases and key not in self.alerts:
                    self.alerts[key] = (counts[0], counts[1], counts[2])
            start += self.step
        if not counted:
            self.late += 1

    def feed_all(self, events: Iterable[tuple[int, dict[str, object]]]) -> WindowOracle:
        for partition, event in events:
            self.feed(partition, event)
        return self

    def qualifying(self) -> set[tuple[str, int]]:
        """Windows that qualify on their final counts."""
        return {k for k, (v, _, p) in self.windows.items() if v > self.views and p < self.purchases}
