"""Input for the incident tests: bursts of one product over quiet traffic, as (product, event
type, event time ms), and how to read incident records back into the oracle's summary form."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

MIN = 60_000
T0 = 1_795_766_400_000  # a whole hour, days before the tests run
Event = tuple[str, str, int]


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def burst(
    product: str, start: int, views: int, purchases: int = 0, spread: int = MIN
) -> list[Event]:
    events = [(product, "view", start + i * spread // views) for i in range(views)]
    events += [(product, "purchase", start + spread + i) for i in range(purchases)]
    return events


def filler(start: int, end: int, every: int = 20_000, products: int = 7) -> list[Event]:
    """Quiet traffic of other products, one view every `every` ms spread over `products`
    products: moves the watermark and, with at most 100 views per product and window, never
    alerts."""
    return [(f"q{n % products}", "view", t) for n, t in enumerate(range(start, end, every))]


def scenarios() -> dict[str, list[Event]]:
    rng = random.Random(5)
    shop = filler(T0, T0 + 90 * MIN, 5_000)
    for product, at in (("hot-1", 10), ("hot-2", 12), ("hot-1", 70)):
        shop += burst(product, T0 + at * MIN + rng.randrange(MIN), 130 + rng.randrange(80))
    shop.sort(key=lambda e: e[2])
    return {
        "two bursts an hour apart": sorted(
            burst("a", T0, 150) + burst("a", T0 + 60 * MIN, 150) + filler(T0, T0 + 90 * MIN),
            key=lambda e: e[2],
        ),
        "a burst that ends by purchases": burst("b", T0, 150, purchases=5, spread=30_000)
        + filler(T0 + 2 * MIN, T0 + 40 * MIN),
        "one window only": sorted(
            burst("c", T0, 60) + burst("c", T0 + 9 * MIN, 50) + filler(T0, T0 + 40 * MIN),
            key=lambda e: e[2],
        ),
        "a shop with three flash sales": shop,
    }


def summary_of_records(values: list[dict[str, Any]]) -> list[tuple[str, str | None, int, int, int]]:
    """As IncidentOracle.summary, from incident records in order: each incident's latest."""
    latest = {v["incident_id"]: v for v in values}
    return sorted(
        (i, v["resolution"], v["windows"], ms(v["first_window_start"]),
         ms(v["latest_window_start"]))
        for i, v in latest.items()
    )  # fmt: skip
