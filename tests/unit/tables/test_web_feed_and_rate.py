"""The in-memory alert feed (newest first, bounded, no duplicates) and the processing rate."""

from __future__ import annotations

from tables.alert_feed import AlertRing
from tables.throughput import Throughput


def alert(n: int, detected: str) -> dict[str, object]:
    return {"alert_id": f"p{n}:0", "product_id": f"p{n}", "window_start": "2026-01-01T00:00:00Z",
            "window_end": "2026-01-01T00:10:00Z", "views": 101, "add_to_cart": 0,
            "purchases": 0, "detected_at": detected}  # fmt: skip


def test_the_ring_keeps_the_newest_without_duplicates() -> None:
    ring = AlertRing(capacity=3)
    for n in range(10):
        ring.add(alert(n, f"2026-01-01T00:00:{n:02d}Z"))
    ring.add(alert(9, "2026-01-01T00:00:09Z"))  # read again after a reconnect
    assert [a["product_id"] for a in ring.newest(10)] == ["p9", "p8", "p7"]
    assert [a["product_id"] for a in ring.newest(2)] == ["p9", "p8"]
    assert len(ring) == 3


def test_rate_over_the_last_seconds() -> None:
    rate = Throughput(span_s=10.0)
    assert rate.per_second() == 0.0
    for second in range(30):
        rate.sample(total=100.0 * second, monotonic_now=float(second), wall_now=1000.0 + second)
    assert rate.per_second() == 100.0
    assert rate.last_received_at == 1029.0
    rate.sample(total=2900.0, monotonic_now=30.0, wall_now=1030.0)
    assert rate.last_received_at == 1029.0  # nothing new in the last second
