"""Input for the streaming tests: hand-placed window edge cases over hours of background traffic,
a busy shop, and poison messages with the dead-letter reason each must get."""

from __future__ import annotations

import random
from datetime import UTC, datetime

T0 = int(datetime(2026, 11, 27, 8, 0, tzinfo=UTC).timestamp() * 1000)
MIN = 60_000
SEC = 1000


def stamp(t_ms: int, form: int) -> object:
    """One of the five accepted timestamp forms."""
    moment = datetime.fromtimestamp(t_ms / 1000, tz=UTC)
    if form == 0:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if form == 1:
        return moment.isoformat(timespec="milliseconds")
    if form == 2:
        return moment.replace(tzinfo=None).isoformat(timespec="milliseconds")
    if form == 3:
        return t_ms
    return t_ms / 1000 if t_ms % 1000 else t_ms // 1000


class Timeline:
    """Events with an event time and an arrival time; sent in arrival order."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.items: list[tuple[int, int, dict[str, object]]] = []

    def add(self, product: str, kind: str, t_ms: int, delay_ms: int = 0) -> None:
        n = len(self.items)
        event = {"user_id": f"u{self.rng.randrange(500)}", "product_id": product,
                 "event_type": kind, "timestamp": stamp(t_ms, n % 5)}  # fmt: skip
        self.items.append((t_ms + delay_ms, n, event))

    def burst(self, product: str, kind: str, count: int, t_ms: int, spread_ms: int = 0,
              delay_ms: int = 0) -> None:  # fmt: skip
        for i in range(count):
            self.add(product, kind, t_ms + (i * spread_ms // max(count, 1)), delay_ms)

    def in_order(self) -> list[dict[str, object]]:
        return [event for _, _, event in sorted(self.items, key=lambda item: (item[0], item[1]))]


def edge_cases(seed: int = 1) -> list[dict[str, object]]:
    """3.5 hours of background traffic plus every window edge case the design names."""
    line = Timeline(seed)
    kinds = ["view"] * 14 + ["add_to_cart"] * 4 + ["purchase"] * 2
    for minute in range(210):
        for _ in range(20):
            t = T0 + minute * MIN + line.rng.randrange(MIN)
            line.add(f"bg{line.rng.randrange(30)}", line.rng.choice(kinds), t,
                     line.rng.randrange(20 * SEC))  # fmt: skip
    line.burst("p101", "view", 101, T0 + 30 * MIN, 50 * SEC)
    line.burst("p100", "view", 100, T0 + 40 * MIN, 50 * SEC)
    line.burst("p4buy", "purchase", 4, T0 + 50 * MIN)
    line.burst("p4buy", "view", 101, T0 + 50 * MIN + SEC, 50 * SEC)
    line.burst("p5buy", "purchase", 5, T0 + 60 * MIN)
    line.burst("p5buy", "view", 101, T0 + 60 * MIN + SEC, 50 * SEC)
    line.burst("plate_buy", "view", 101, T0 + 70 * MIN, 20 * SEC)
    line.burst("plate_buy", "purchase", 10, T0 + 70 * MIN + 25 * SEC, 10 * SEC)
    line.burst("pedge", "view", 101, T0 + 80 * MIN)  # all exactly at a window start
    line.burst("pedge", "view", 50, T0 + 90 * MIN)  # exactly at that window's end
    line.burst("pooo", "view", 60, T0 + 100 * MIN + 50 * SEC, 5 * SEC)
    line.burst("pooo", "view", 41, T0 + 100 * MIN + 10 * SEC, 5 * SEC, delay_ms=40 * SEC)
    line.burst("pverylate", "view", 150, T0 + 110 * MIN, 30 * SEC, delay_ms=120 * MIN)
    line.burst("ppartial", "view", 120, T0 + 120 * MIN, 30 * SEC, delay_ms=5 * MIN)
    return line.in_order()


def shop_events(count: int, seed: int, products: int = 150) -> list[dict[str, object]]:
    """A busy shop: a few hot products cross the alert threshold, in time order with jitter."""
    rng = random.Random(seed)
    kinds = ["view"] * 90 + ["add_to_cart"] * 7 + ["purchase"] * 3
    events = []
    for i in range(count):
        t = T0 + i * 25 + rng.randrange(20 * SEC)
        product = f"p{min(int(rng.paretovariate(1.1)), products)}"
        events.append({"user_id": f"u{rng.randrange(5000)}", "product_id": product,
                       "event_type": rng.choice(kinds), "timestamp": stamp(t, i % 5)})  # fmt: skip
    return events


POISON: list[tuple[bytes | None, str]] = [
    (b"", "empty"),
    (None, "empty"),
    (b"\xff\xfe\x00\x81garbage", "not_utf8"),
    (b'{"user_id": "u1", "product_id": "p', "not_json"),
    (b'{"user_id": NaN}', "not_json"),
    (b"[]", "empty_batch"),
    (b'"just a string"', "not_object"),
    (b"42", "not_object"),
    (b"null", "not_object"),
    (b'{"product_id": "p1", "event_type": "view", "timestamp": 1795766400000}', "missing_field"),
    (b'{"user_id": "u1", "product_id": "p1", "event_type": "view"}', "missing_field"),
    (b'{"user_id": 123, "product_id": "p1", "event_type": "view", "timestamp": 1795766400000}', "wrong_type"),
    (b'{"user_id": "u1", "product_id": "", "event_type": "view", "timestamp": 1795766400000}', "empty_field"),
    (b'{"user_id": "u1", "product_id": "   ", "event_type": "view", "timestamp": 1795766400000}', "empty_field"),
    (b'{"user_id": "u1", "product_id": "p1", "event_type": "click", "timestamp": 1795766400000}', "unknown_event_type"),
    (b'{"user_id": "u1", "product_id": "p1", "event_type": null, "timestamp": 1795766400000}', "missing_field"),
    (b'{"user_id": "u1", "product_id": "p1", "event_type": "view", "timestamp": "yesterday"}', "bad_timestamp"),
    (b'{"user_id": "u1", "product_id": "p1", "event_type": "view", "timestamp": "2026-02-30T10:00:00Z"}', "bad_timestamp"),
    (b'{"user_id": "u1", "product_id": "p1", "event_type": "view", "timestamp": -5}', "bad_timestamp"),
    (b'{"user_id": "u1", "product_id": "p1", "event_type": "view", "timestamp": "2099-01-01T00:00:00Z"}', "future_timestamp"),
    (b'{"user_id": "u1", "product_id": "p1", "event_type": "view", "timestamp": 1795766400000, "price": -1}', "bad_price"),
    (b'{"user_id": "u1", "product_id": "p1", "event_type": "view", "timestamp": 1795766400000, "price": "12.5"}', "bad_price"),
    (b'{"user_id": "u1", "product_id": "p1", "event_type": "view", "timestamp": 1795766400000, "price": true}', "bad_price"),
    (b'{"user_id": "u1", "product_id": "p1", "event_type": "view", "timestamp": 1795766400000, "session_id": 7}', "wrong_type"),
    (b'{"user_id": "u1", "product_id": "p1", "event_type": "view", "timestamp": 1795766400000, "pad": "' + b"x" * 300_000 + b'"}', "too_large"),
]  # fmt: skip
