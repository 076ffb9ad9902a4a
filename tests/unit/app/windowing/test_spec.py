"""Window arithmetic against a brute-force enumeration of epoch-aligned windows."""

from __future__ import annotations

import random

import pytest

from app.windowing.spec import NO_WATERMARK, WindowSpec

SPEC = WindowSpec.from_seconds(600, 60)


def brute_windows(t: int, size: int, step: int) -> list[int]:
    """Every multiple of step near t, kept when t lies in [s, s + size)."""
    first = (t - size - step) // step * step
    return [s for s in range(first, t + step, step) if s <= t < s + size]


@pytest.mark.parametrize("t", [0, 1, 59_999, 60_000, 599_999, 600_000, 1_700_000_123_456])
def test_window_starts_match_brute_force(t: int) -> None:
    assert list(SPEC.window_starts(t)) == brute_windows(t, 600_000, 60_000)


def test_event_at_window_end_belongs_to_the_next_window() -> None:
    starts = SPEC.window_starts(600_000)
    assert 0 not in starts
    assert 600_000 in starts
    assert 0 in SPEC.window_starts(599_999)


def test_open_depth_counts_only_windows_whose_end_the_watermark_has_not_passed() -> None:
    rng = random.Random(7)
    for _ in range(5000):
        t = rng.randrange(10**6, 10**7)
        w = t + rng.randrange(-700_000, 800_000)
        depth = SPEC.open_depth(t, w)
        open_windows = [s for s in brute_windows(t, 600_000, 60_000) if not w > s + 600_000]
        assert depth == len(open_windows) - 1
        if open_windows:  # the open ones are always the newest
            assert open_windows == sorted(SPEC.window_starts(t))[-len(open_windows) :]


def test_no_watermark_means_everything_is_open() -> None:
    assert SPEC.open_depth(123, NO_WATERMARK) == 9
