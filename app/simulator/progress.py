"""Progress while a run goes: a live line with rate and ETA on a terminal, log lines otherwise."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import click

from app.simulator.delivery import DeliveryStats

logger = logging.getLogger(__name__)

TTY_INTERVAL = 0.5
LOG_INTERVAL = 10.0


@dataclass(frozen=True)
class Goal:
    """How the run ends: after `count` events and/or at event time `end` (epoch seconds)."""

    count: int | None
    start: float
    end: float | None


class Progress:
    """Reports generated and acknowledged events; `update` is cheap to call often."""

    def __init__(self, goal: Goal, on_terminal: bool) -> None:
        self._goal = goal
        self._tty = on_terminal
        self._interval = TTY_INTERVAL if on_terminal else LOG_INTERVAL
        self._began = time.monotonic()
        self._last = (self._began, 0)
        self._shown = False

    def update(self, generated: int, event_time: float | None, stats: DeliveryStats) -> None:
        now = time.monotonic()
        last_at, last_generated = self._last
        if now - last_at < self._interval:
            return
        self._last = (now, generated)
        rate = (generated - last_generated) / (now - last_at)
        eta = self._eta(generated, event_time, now)
        line = (
            f"{generated:,} generated, {stats.sent:,} sent, {stats.failed:,} failed, "
            f"{rate:,.0f} ev/s{_percent(self._fraction(generated, event_time))}"
            f"{'' if eta is None else f', ETA {_clock(eta)}'}"
        )
        if self._tty:
            click.echo(f"\r\x1b[2K{line}", nl=False, err=True)
            self._shown = True
        else:
            logger.info("progress: %s", line)

    def finish(self) -> None:
        if self._shown:
            click.echo("\r\x1b[2K", nl=False, err=True)

    def _fraction(self, generated: int, event_time: float | None) -> float | None:
        goal = self._goal
        fractions = []
        if goal.count:
            fractions.append(generated / goal.count)
        if goal.end is not None and event_time is not None and goal.end > goal.start:
            fractions.append((event_time - goal.start) / (goal.end - goal.start))
        return min(1.0, max(fractions)) if fractions else None

    def _eta(self, generated: int, event_time: float | None, now: float) -> float | None:
        fraction = self._fraction(generated, event_time)
        if not fraction or fraction <= 0:
            return None
        elapsed = now - self._began
        return elapsed * (1.0 - fraction) / fraction


def _percent(fraction: float | None) -> str:
    return "" if fraction is None else f", {fraction:.0%}"


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"
