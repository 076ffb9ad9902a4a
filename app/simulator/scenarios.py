"""Scenarios: steady traffic only, or flash sales planted at known times on top of it.

In `flash-sale`, every cycle two bursts start together, `FIRST_BURST_AFTER` seconds after the
start and then every `cycle` seconds:

- a *viral* product (one of three, in turn) gets enough views to pass VIEWS_THRESHOLD within
  `cross_seconds` but only (PURCHASES_THRESHOLD - 1) // 2 purchases per burst: it must alert;
- the *hot seller* gets views at the same rate, and a cart and a purchase after every k-th
  view with k = VIEWS_THRESHOLD // (2 * PURCHASES_THRESHOLD + 4): any window holding more than
  VIEWS_THRESHOLD of its views holds at least PURCHASES_THRESHOLD purchases, so it never alerts.

Planted products take no share of steady traffic, so only the plan decides their counts.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass

from app.simulator.catalog import Catalog
from app.simulator.shoppers import ADD_TO_CART, PURCHASE, VIEW
from app.time_format import iso_utc_s

FIRST_BURST_AFTER = 20.0
BURST_SECONDS = 240.0
VIRAL_PRODUCTS = 3
PLANTED_PRODUCTS = VIRAL_PRODUCTS + 1

PlantedEvent = tuple[float, int, str, str, int]  # time, event type, user, session, product


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The alert rule the scenario is built against (from settings)."""

    views: int
    purchases: int
    window_size: int
    window_step: int


@dataclass(frozen=True, slots=True)
class Burst:
    """One planted product's surge: role is 'viral' (must alert) or 'hot_seller' (must not)."""

    product_id: str
    role: str
    start: float
    end: float

    def as_json(self) -> dict[str, str]:
        return {
            "product_id": self.product_id,
            "role": self.role,
            "start": iso_utc_s(self.start),
            "end": iso_utc_s(self.end),
        }


class FlashSale:
    """The planted bursts of a run and their events, generated one cycle at a time."""

    def __init__(
        self,
        catalog: Catalog,
        thresholds: Thresholds,
        start: float,
        users: list[str],
        rng: random.Random,
        session_prefix: str,
    ) -> None:
        if len(catalog) <= PLANTED_PRODUCTS:
            msg = f"the flash-sale scenario needs more than {PLANTED_PRODUCTS} products"
            raise ValueError(msg)
        planted = catalog.least_popular(PLANTED_PRODUCTS)
        self.viral, self.hot_seller = planted[:VIRAL_PRODUCTS], planted[VIRAL_PRODUCTS]
        self.steady_catalog = catalog.without(planted)
        self.thresholds = thresholds
        self.start = start
        self.cross_seconds = min(45.0, thresholds.window_size / 2)
        self.view_rate = (thresholds.views + 1) / self.cross_seconds
        self.viral_purchases = (thresholds.purchases - 1) // 2
        self.purchase_every = max(1, thresholds.views // (2 * thresholds.purchases + 4))
        rotation = thresholds.window_size + BURST_SECONDS + 120.0  # a viral product's rest
        self.cycle = max(900.0, math.ceil(rotation / VIRAL_PRODUCTS / 60.0) * 60.0)
        self.bursts: list[Burst] = []
        self._ids = catalog.product_ids
        self._users = users
        self._rng = rng
        self._prefix = session_prefix
        self._sessions = 0
        self._pending: deque[PlantedEvent] = deque()
        self.next_time = math.inf
        self._plan_cycle()

    def take(self) -> PlantedEvent:
        """The next planted event (the one at `next_time`)."""
        event = self._pending.popleft()
        if not self._pending:
            self._plan_cycle()
        self.next_time = self._pending[0][0]
        return event

    def bursts_until(self, end: float) -> list[Burst]:
        """Bursts that started before `end` (event time): what the run actually planted."""
        return [burst for burst in self.bursts if burst.start < end]

    def _plan_cycle(self) -> None:
        number = len(self.bursts) // 2
        begin = self.start + FIRST_BURST_AFTER + number * self.cycle
        viral = self.viral[number % VIRAL_PRODUCTS]
        events: list[PlantedEvent] = []
        for product, role in ((viral, "viral"), (self.hot_seller, "hot_seller")):
            burst = Burst(self._ids[product], role, begin, begin + BURST_SECONDS)
            self.bursts.append(burst)
            events.extend(self._burst_events(burst, product))
        events.sort(key=lambda event: event[0])
        self._pending.extend(events)
        self.next_time = self._pending[0][0]

    def _burst_events(self, burst: Burst, product: int) -> list[PlantedEvent]:
        rng = self._rng
        views = round(self.view_rate * BURST_SECONDS)
        if burst.role == "viral":
            buyers = {
                int((j + 0.5) * views / self.viral_purchases) for j in range(self.viral_purchases)
            }
            cart_lag, pay_lag = (5.0, 30.0), (20.0, 60.0)
        else:
            buyers = set(range(self.purchase_every - 1, views, self.purchase_every))
            cart_lag, pay_lag = (1.0, 3.0), (1.0, 3.0)
        events: list[PlantedEvent] = []
        for i in range(views):
            at = burst.start + (i + rng.random()) / self.view_rate
            user = self._users[int(rng.random() * len(self._users))]
            self._sessions += 1
            session = f"{self._prefix}{self._sessions}"
            events.append((at, VIEW, user, session, product))
            abandoned = burst.role == "viral" and i % 40 == 39
            if i in buyers or abandoned:
                at += rng.uniform(*cart_lag)
                events.append((at, ADD_TO_CART, user, session, product))
            if i in buyers:
                events.append((at + rng.uniform(*pay_lag), PURCHASE, user, session, product))
        return events


def plan_json(
    scenario: str, seed: int, thresholds: Thresholds, bursts: list[Burst]
) -> dict[str, object]:
    """What `--plan FILE` holds: the scenario, the alert rule and every planted burst."""
    return {
        "scenario": scenario,
        "seed": seed,
        "thresholds": {
            "views": thresholds.views,
            "purchases": thresholds.purchases,
            "window_size": thresholds.window_size,
            "window_step": thresholds.window_step,
        },
        "bursts": [burst.as_json() for burst in bursts],
    }
