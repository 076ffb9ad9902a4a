"""This worker's processing rate and freshness, sampled once a second, plus window-table gauges."""

from __future__ import annotations

import time
from collections import deque

from app import metrics
from app.faust_app import ClickstreamApp
from tables.owned_partitions import serving_states

RATE_SPAN_S = 10.0


class Throughput:
    """Samples of the ingested-events counter: (monotonic time, total)."""

    def __init__(self, span_s: float = RATE_SPAN_S) -> None:
        self.span_s = span_s
        self.samples: deque[tuple[float, float]] = deque()
        self.last_received_at: float | None = None

    def sample(self, total: float, monotonic_now: float, wall_now: float) -> None:
        """Record the counter; events counted since the last sample arrived by `wall_now`."""
        previous = self.samples[-1][1] if self.samples else 0.0
        if total > previous:
            self.last_received_at = wall_now
        self.samples.append((monotonic_now, total))
        while len(self.samples) > 2 and monotonic_now - self.samples[1][0] >= self.span_s:
            self.samples.popleft()

    def per_second(self) -> float:
        if len(self.samples) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self.samples[0], self.samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0


throughput = Throughput()


async def sample_throughput() -> None:
    """Sample the ingested-events counter into `throughput` and set the rate gauges."""
    throughput.sample(metrics.EVENTS_IN.total(), time.monotonic(), time.time())
    metrics.EVENTS_PER_SECOND.set(round(throughput.per_second(), 3))
    if throughput.last_received_at is not None:
        metrics.LAST_EVENT_RECEIVED.set(round(throughput.last_received_at, 3))


def newest_event_ms(allowed_lateness_s: int) -> int | None:
    """Newest event time applied here (epoch ms): the highest source watermark plus the
    lateness (ALLOWED_LATENESS, seconds); None before any window state is served here."""
    marks = [
        watermark
        for state in serving_states().values()
        for watermark, _ in state.source_watermarks().values()
    ]
    return max(marks) + allowed_lateness_s * 1000 if marks else None


def collect_window_gauges(allowed_lateness_s: int) -> None:
    """Set the window-table gauges from the state served here."""
    slices, products = 0, set[str]()
    for state in serving_states().values():
        for members in state.stored_slices().values():
            slices += len(members)
            products.update(members)
    metrics.WINDOW_SLICES.set(slices)
    metrics.WINDOW_PRODUCTS.set(len(products))
    newest = newest_event_ms(allowed_lateness_s)
    metrics.NEWEST_EVENT_TIME.set(0 if newest is None else newest / 1000)


def register(app: ClickstreamApp) -> None:
    """Sample the rate once a second, and set the window-table gauges before each /metrics."""
    lateness = app.settings.allowed_lateness
    app.timer(interval=1.0)(sample_throughput)
    metrics.on_collect(lambda: collect_window_gauges(lateness))
