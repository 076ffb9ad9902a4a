"""When simulated events happen: live (paced to the wall clock) or historical (simulated time).

Every clock hands out the event time of the next steady-traffic event, in epoch seconds:

- `PacedClock`: live at a fixed rate; event i is due at start + i / rate. The sender waits
  for each event's time, so event time is wall-clock time.
- `WallClock`: live as fast as possible; event time is the wall clock when it is generated.
- `HistoricalClock`: simulated time from `--start`, sent as fast as possible; the gaps
  between events follow a daily traffic curve in the shop's time zone (quiet nights, an
  evening peak) around an average rate.
"""

from __future__ import annotations

import math
import random
import time
from datetime import UTC, datetime, tzinfo
from typing import Protocol

# Relative traffic at each local hour (0..23); the curve is scaled to average 1 over a day.
_HOURLY = (
    0.35,
    0.22,
    0.15,
    0.12,
    0.12,
    0.18,
    0.35,
    0.6,
    0.8,
    0.95,
    1.05,
    1.1,
    1.2,
    1.15,
    1.1,
    1.1,
    1.15,
    1.25,
    1.45,
    1.75,
    1.95,
    1.85,
    1.3,
    0.7,
)
_MEAN = sum(_HOURLY) / len(_HOURLY)
MAX_LAG_SECONDS = 1.0  # a live sender further behind than this skips ahead instead of bursting


def daily_traffic(hour: float) -> float:
    """Traffic at a local time of day (hours, 0 <= hour < 24) relative to the daily average."""
    position = (hour - 0.5) % 24.0  # each hourly value sits at the middle of its hour
    low = int(position)
    frac = position - low
    value = _HOURLY[low] * (1.0 - frac) + _HOURLY[(low + 1) % 24] * frac
    return value / _MEAN


class EventClock(Protocol):
    """The time of the next steady-traffic event."""

    live: bool  # event time is wall-clock time
    paced: bool  # events must wait for their time
    start: float

    def next_time(self) -> float: ...


class PacedClock:
    """Live traffic at `rate` events per second, from `start` (epoch seconds)."""

    live = True
    paced = True

    def __init__(self, start: float, rate: float) -> None:
        self.start = start
        self._base = start
        self._interval = 1.0 / rate
        self._issued = 0

    def next_time(self) -> float:
        due = self._base + self._issued * self._interval
        self._issued += 1
        if self._issued % 64 == 0:
            now = time.time()
            if now - due > MAX_LAG_SECONDS:  # the sender cannot keep up: do not burst later
                self._base, self._issued = now, 0
                return now
        return due


class WallClock:
    """Live traffic as fast as it can be generated: event time is now."""

    live = True
    paced = False

    def __init__(self, start: float) -> None:
        self.start = start

    def next_time(self) -> float:
        return max(time.time(), self.start)


class HistoricalClock:
    """Simulated traffic from `start` averaging `rate` events per simulated second."""

    live = False
    paced = False

    def __init__(self, start: float, rate: float, zone: tzinfo, rng: random.Random) -> None:
        self.start = start
        self._now = start
        self._rate = rate
        self._zone = zone
        self._random = rng.random
        self._minute = -1
        self._mean_gap = 1.0 / rate

    def next_time(self) -> float:
        minute = int(self._now // 60)
        if minute != self._minute:  # the curve changes slowly: evaluate it once a minute
            self._minute = minute
            local = datetime.fromtimestamp(minute * 60, tz=UTC).astimezone(self._zone)
            rate = self._rate * daily_traffic(local.hour + local.minute / 60)
            self._mean_gap = 1.0 / rate
        # Exponential gaps (a Poisson process), as random.expovariate draws them, inlined.
        self._now -= math.log(1.0 - self._random()) * self._mean_gap
        return self._now
