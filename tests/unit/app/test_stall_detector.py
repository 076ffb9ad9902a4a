"""The stall detector: input waiting with no progress for STALL_SECONDS is a stall; idling is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import SettingsError
from app.settings import load_settings
from app.stall_detector import StallDetector, stall_problems

STALL_S = 60.0


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def detector(clock: FakeClock) -> StallDetector:
    return StallDetector(STALL_S, clock=clock)


def look_every_15_s(detector: StallDetector, clock: FakeClock, seconds: float, **at: int) -> None:
    """The periodic look of a stage standing still at `position` below `highwater`."""
    for _ in range(int(seconds // 15)):
        clock.advance(15)
        detector.observed("windows", 2, at["position"], at["highwater"])


def test_a_consumer_with_input_and_no_progress_is_stalled(
    detector: StallDetector, clock: FakeClock
) -> None:
    detector.progressed("windows", 2, 500)
    detector.observed("windows", 2, 500, 900)
    clock.advance(STALL_S - 1)
    detector.observed("windows", 2, 500, 950)  # more input, still no progress
    assert detector.stalled() == {}
    clock.advance(2)
    assert detector.stalled() == {"windows": [2]}


def test_an_idle_consumer_is_never_stalled(detector: StallDetector, clock: FakeClock) -> None:
    detector.progressed("windows", 2, 500)
    for _ in range(1000):  # more than four hours of looks at a caught-up partition
        clock.advance(15)
        detector.observed("windows", 2, 500, 500)
        assert detector.stalled() == {}


def test_a_consumer_that_keeps_progressing_is_not_stalled(
    detector: StallDetector, clock: FakeClock
) -> None:
    position, highwater = 0, 10_000
    for _ in range(100):  # far behind the log end for 25 minutes, but moving
        clock.advance(15)
        position += 50
        highwater += 60
        detector.progressed("windows", 2, position)
        detector.observed("windows", 2, position, highwater)
        assert detector.stalled() == {}


def test_input_after_a_long_idle_period_does_not_fire_at_once(
    detector: StallDetector, clock: FakeClock
) -> None:
    detector.progressed("windows", 2, 500)
    detector.observed("windows", 2, 500, 500)
    clock.advance(3 * 3600)  # a quiet night
    detector.observed("windows", 2, 500, 510)  # the first event of the morning
    assert detector.stalled() == {}
    look_every_15_s(detector, clock, STALL_S - 15, position=500, highwater=510)
    assert detector.stalled() == {}
    look_every_15_s(detector, clock, 15, position=500, highwater=510)
    assert detector.stalled() == {"windows": [2]}


def test_catching_up_ends_a_stall_and_restarts_the_clock(
    detector: StallDetector, clock: FakeClock
) -> None:
    detector.observed("windows", 2, 500, 600)
    look_every_15_s(detector, clock, 2 * STALL_S, position=500, highwater=600)
    assert detector.stalled() == {"windows": [2]}
    detector.progressed("windows", 2, 600)
    assert detector.stalled() == {}
    detector.observed("windows", 2, 600, 700)
    look_every_15_s(detector, clock, STALL_S - 15, position=600, highwater=700)
    assert detector.stalled() == {}


def test_an_unknown_log_end_keeps_the_last_one_known(
    detector: StallDetector, clock: FakeClock
) -> None:
    detector.observed("windows", 2, 500, None)  # the consumer has not fetched yet
    clock.advance(10 * STALL_S)
    assert detector.stalled() == {}
    detector.observed("windows", 2, 500, 600)
    clock.advance(STALL_S)
    detector.observed("windows", 2, 500, None)
    assert detector.stalled() == {"windows": [2]}


def test_forget_clears_revoked_partitions(detector: StallDetector, clock: FakeClock) -> None:
    for partition in (0, 1, 2):
        detector.observed("windows", partition, 500, 600)
    clock.advance(STALL_S)
    assert detector.stalled() == {"windows": [0, 1, 2]}
    detector.forget("windows", [0, 2])
    assert detector.stalled() == {"windows": [1]}
    detector.forget("windows", [1, 3])  # 3 was never seen
    assert detector.stalled() == {}
    assert detector.stages() == set()
    detector.observed("windows", 2, 500, 600)  # assigned again: a fresh clock
    assert detector.stalled() == {}


def test_stages_are_independent(detector: StallDetector, clock: FakeClock) -> None:
    detector.observed("ingest", 0, 100, 200)
    detector.observed("windows", 0, 100, 200)
    detector.observed("alert_sink", 0, 7, 7)
    clock.advance(STALL_S / 2)
    detector.observed("windows", 0, 150, 200)  # progress in windows only
    clock.advance(STALL_S / 2)
    assert detector.stalled() == {"ingest": [0]}
    detector.forget("ingest", [0])
    clock.advance(STALL_S / 2)
    assert detector.stalled() == {"windows": [0]}
    assert detector.stages() == {"windows", "alert_sink"}


def test_health_names_each_stalled_stage_and_its_partitions() -> None:
    problems = stall_problems({"ingest": [0], "windows": [1, 3]}, 60.0)
    assert problems == [
        "ingest stalled: partitions [0] have input and made no progress for 60 s",
        "windows stalled: partitions [1, 3] have input and made no progress for 60 s",
    ]
    assert stall_problems({}, 60.0) == []


def test_stall_seconds_is_a_positive_number_of_seconds(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().stall_seconds == 60
    monkeypatch.setenv("STALL_SECONDS", "5")  # the ingest stage commits every 10 s by default
    with pytest.raises(SettingsError, match=r"STALL_SECONDS.*SINK_FLUSH_SECONDS"):
        load_settings()
    monkeypatch.setenv("SINK_FLUSH_SECONDS", "1")
    monkeypatch.setenv("STALL_SECONDS", "2.5")
    assert load_settings().stall_seconds == 2.5
    monkeypatch.setenv("STALL_SECONDS", "0")
    with pytest.raises(SettingsError, match="STALL_SECONDS"):
        load_settings()
    with pytest.raises(ValueError, match="stall_seconds"):
        StallDetector(0)
