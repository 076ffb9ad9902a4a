"""The late-event rule: an event counts only toward windows its source's watermark left open.

A source partition's watermark is min(max event time seen on it, the worker's clock) minus
ALLOWED_LATENESS. The clock cap keeps one event stamped ahead of time (MAX_CLOCK_SKEW lets it
in) from closing every window of the present. An event at t counts toward the windows holding
t whose end the watermark has not passed (`WindowSpec.open_depth`); with none left it is late
and counted nowhere (docs/design.md, "Window semantics"). The ingest stage applies the rule in
consumption order (agents.ingest_router).
"""

from __future__ import annotations

from app.windowing.spec import NO_WATERMARK, WindowSpec


def source_watermark(max_seen_ms: int | None, now_ms: int, lateness_ms: int) -> int:
    """The watermark (epoch ms) of a source partition whose newest event time is
    `max_seen_ms` (None: no event yet, so NO_WATERMARK) at wall-clock `now_ms`."""
    if max_seen_ms is None:
        return NO_WATERMARK
    return (max_seen_ms if max_seen_ms < now_ms else now_ms) - lateness_ms


def counted_depth(spec: WindowSpec, t_ms: int, watermark_ms: int) -> int | None:
    """How many windows older than the newest holding `t_ms` the event still counts toward
    (0 .. spec.per_event - 1), or None when it is late: every window holding it has closed."""
    depth = spec.open_depth(t_ms, watermark_ms)
    return None if depth < 0 else depth
