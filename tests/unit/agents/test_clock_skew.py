"""One event stamped ahead of the clock must not make the rest of its partition late."""

from __future__ import annotations

import orjson

from tests.support.window_pipeline import NOW_MS, SPEC, Pipeline, Record

MINUTE_MS = 60_000


def view(product: str, t_ms: int, i: int) -> dict[str, object]:
    return {"event_id": f"e{i}", "user_id": f"u{i}", "product_id": product,
            "event_type": "view", "timestamp": t_ms}  # fmt: skip


def test_a_view_50_minutes_ahead_does_not_silence_the_flash_sale_after_it() -> None:
    ahead = NOW_MS + 50 * MINUTE_MS  # accepted: MAX_CLOCK_SKEW is 1 h
    flash = NOW_MS - 30_000
    events = [view("p-future", ahead, 0)] + [view("p-flash", flash, i) for i in range(1, 151)]
    pipeline = Pipeline(sources=1)
    routed = pipeline.router.route(
        "in", 0, [Record(i, orjson.dumps(e)) for i, e in enumerate(events)], NOW_MS
    )
    assert routed.late == 0
    assert len(routed.events) == 151  # the future view is valid: it is stored all the same
    assert pipeline.router.max_seen[0] == ahead  # committed with the offsets as it was
    assert {b.watermark_ms for b in routed.batches.values()} == {NOW_MS - 60_000}

    pipeline = Pipeline(sources=1)
    pipeline.feed(0, [Record(i, orjson.dumps(e)) for i, e in enumerate(events)])
    # Independent recount: 10-minute windows every minute, epoch-aligned; all still open.
    newest = flash - flash % MINUTE_MS
    starts = [newest - k * MINUTE_MS for k in range(10)]
    state = pipeline.states[0 if pipeline.states[0].stored_slice_starts("p-flash") else 1]
    for start in starts:
        assert state.window_counts("p-flash", start) == [150, 0, 0], start
    # Each window alerts once, at its 101st view (views > 100, purchases < 5).
    assert sorted(pipeline.alerts) == sorted(("p-flash", s, 101, 0, 0) for s in starts)
    assert SPEC.size_ms == 10 * MINUTE_MS and SPEC.step_ms == MINUTE_MS


def test_events_of_the_clock_s_own_time_keep_the_usual_watermark() -> None:
    """Without events ahead of the clock, the watermark is max event time - lateness."""
    pipeline = Pipeline(sources=1)
    t = NOW_MS - 5 * MINUTE_MS
    routed = pipeline.router.route("in", 0, [Record(0, orjson.dumps(view("p", t, 0)))], NOW_MS)
    assert {b.watermark_ms for b in routed.batches.values()} == {t - 60_000}
