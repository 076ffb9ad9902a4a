"""The late-event rule against a direct reading of it: the watermark capped by the clock, and
an event late exactly when no window holding it is left open."""

from __future__ import annotations

import random

from app.windowing.lateness import counted_depth, source_watermark
from app.windowing.spec import NO_WATERMARK, WindowSpec

SPEC = WindowSpec.from_seconds(600, 60)
SIZE, STEP = 600_000, 60_000


def test_the_watermark_trails_the_newest_event_but_never_passes_the_clock() -> None:
    assert source_watermark(None, 5_000_000, 30_000) == NO_WATERMARK
    assert source_watermark(4_000_000, 5_000_000, 30_000) == 3_970_000
    # An event stamped ahead of the clock moves the watermark only as far as the clock.
    assert source_watermark(9_000_000, 5_000_000, 30_000) == 4_970_000


def test_an_event_is_late_exactly_when_every_window_holding_it_has_closed() -> None:
    rng = random.Random(11)
    for _ in range(5000):
        t = rng.randrange(10**6, 10**7)
        watermark = t + rng.randrange(-100_000, 800_000)
        holding = [s for s in range(t - t % STEP - SIZE, t + 1, STEP) if s <= t < s + SIZE]
        still_open = [s for s in holding if s + SIZE >= watermark]
        depth = counted_depth(SPEC, t, watermark)
        assert depth == (len(still_open) - 1 if still_open else None), (t, watermark)
