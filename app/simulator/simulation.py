"""One run's set-up from its options: catalog, shoppers, clock, scenario and the event stream.

The pace is events per second of event time: `--rate`, else 1 / SIMULATOR_INTERVAL (0 means
as fast as possible). Live runs send at that pace with event time = wall-clock time.
Historical runs (`--start`) are always sent as fast as possible and use the pace as the
average density of simulated traffic, shaped by the daily curve; with no finite pace they
use HISTORICAL_DEFAULT_RATE. Without --count or --duration a historical run stops at now;
into Kafka it never goes past now + MAX_CLOCK_SKEW (the broker's default
log.message.timestamp.after.max.ms is one hour, and the worker rejects such events anyway).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from app.simulator.catalog import Catalog, build_catalog
from app.simulator.clock import EventClock, HistoricalClock, PacedClock, WallClock
from app.simulator.progress import Goal
from app.simulator.scenarios import FlashSale, Thresholds, plan_json
from app.simulator.shoppers import ShopperBehaviour, ShopperPool, concurrent_sessions, user_ids
from app.simulator.stream import EventStream

SCENARIOS = ("steady", "flash-sale")
HISTORICAL_DEFAULT_RATE = 10.0


@dataclass(frozen=True)
class SimulationOptions:
    """Everything that decides which events a run produces (and so its reproducibility)."""

    seed: int
    users: int
    products: int
    pace: float  # events per second of event time; 0 = as fast as possible
    count: int | None = None
    duration: float | None = None
    start: datetime | None = None  # historical mode when set (timezone-aware)
    scenario: str = "steady"
    behaviour: ShopperBehaviour = field(default_factory=ShopperBehaviour)
    thresholds: Thresholds = field(default_factory=lambda: Thresholds(100, 5, 600, 60))
    zone: tzinfo = UTC  # the shop's time zone, for the daily curve

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            msg = f"unknown scenario {self.scenario!r}: expected one of {', '.join(SCENARIOS)}"
            raise ValueError(msg)


@dataclass
class Simulation:
    """A ready run: its event stream and what it plants."""

    options: SimulationOptions
    catalog: Catalog
    clock: EventClock
    stream: EventStream
    flash_sale: FlashSale | None
    goal: Goal

    def plan(self, until: float | None) -> dict[str, object]:
        """The `--plan` document: bursts that started before `until` (epoch seconds)."""
        bursts = self.flash_sale.bursts_until(until or self.goal.start) if self.flash_sale else []
        opts = self.options
        return plan_json(opts.scenario, opts.seed, opts.thresholds, bursts)


def build_simulation(
    options: SimulationOptions, now: float, latest: float | None = None
) -> Simulation:
    """Wire up a run; `now` (epoch seconds) is where live runs start. A historical run also
    stops at event time `latest` (Kafka rejects timestamps too far ahead of its clock)."""
    seed = options.seed
    rng = random.Random(seed)
    catalog = build_catalog(options.products)
    users = user_ids(options.users)
    if options.start is None:
        start = now
        clock: EventClock = (
            PacedClock(start, options.pace) if options.pace > 0 else WallClock(start)
        )
        density = options.pace
    else:
        start = options.start.timestamp()
        density = options.pace if options.pace > 0 else HISTORICAL_DEFAULT_RATE
        clock = HistoricalClock(start, density, options.zone, rng)
    end = start + options.duration if options.duration is not None else None
    if options.start is not None and end is None and options.count is None:
        if start >= now:
            msg = "--start is in the future: give --count or --duration to say when to stop"
            raise ValueError(msg)
        end = now
    if options.start is not None and latest is not None:
        end = latest if end is None else min(end, latest)
    flash_sale = None
    steady_catalog = catalog
    if options.scenario == "flash-sale":
        planted_rng = random.Random(f"{seed}-flash-sale")
        flash_sale = FlashSale(
            catalog, options.thresholds, start, users, planted_rng, f"sess-{seed}-f"
        )
        steady_catalog = flash_sale.steady_catalog
    open_sessions = concurrent_sessions(density, options.behaviour, len(users))
    shoppers = ShopperPool(
        steady_catalog, options.behaviour, users, open_sessions, rng, f"sess-{seed}-"
    )
    stream = EventStream(catalog, clock, shoppers, flash_sale, seed, options.count, end)
    goal = Goal(options.count, start, end if end is not None and math.isfinite(end) else None)
    return Simulation(options, catalog, clock, stream, flash_sale, goal)
