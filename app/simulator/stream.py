"""One run's events in event-time order: steady shoppers merged with planted scenario traffic.

Each event comes out as an `Emitted` tuple: the JSON-ready record (in the field order of
docs/design.md's event), the product index, the event type index and the event time in epoch
milliseconds. `event_id` is `sim-<seed>-<n>`, numbered from 1, so a seed names its events.
"""

from __future__ import annotations

import math

from app.events import EVENT_TYPES
from app.simulator.catalog import Catalog
from app.simulator.clock import EventClock
from app.simulator.scenarios import FlashSale
from app.simulator.shoppers import ShopperPool
from app.simulator.wire import MILLIS_SUFFIX, EventRecord, TimestampFormatter

Emitted = tuple[EventRecord, int, int, int]  # record, product index, event type, epoch ms


class EventStream:
    """Hands out events in time order until `count` events or `end` (epoch seconds)."""

    def __init__(
        self,
        catalog: Catalog,
        clock: EventClock,
        shoppers: ShopperPool,
        flash_sale: FlashSale | None,
        seed: int,
        count: int | None,
        end: float | None,
    ) -> None:
        self._ids = catalog.product_ids
        self._categories = [product.category for product in catalog.products]
        self._prices = [product.price for product in catalog.products]
        self._clock = clock
        self._shoppers = shoppers
        self._flash_sale = flash_sale
        self._id_prefix = f"sim-{seed}-"
        self._count = count
        self._end = math.inf if end is None else end
        self._formatter = TimestampFormatter()
        self._second = -1
        self._second_text = ""
        self._next_steady = clock.next_time()
        self.emitted = 0
        self.last_time: float | None = None

    @property
    def next_time(self) -> float:
        """Event time of the next event (epoch seconds)."""
        planted = self._flash_sale.next_time if self._flash_sale else math.inf
        return min(planted, self._next_steady)

    @property
    def finished(self) -> bool:
        if self._count is not None and self.emitted >= self._count:
            return True
        return self.next_time >= self._end

    def take(self, max_events: int, until: float = math.inf) -> list[Emitted]:
        """Up to `max_events` next events, none later than `until` (epoch seconds)."""
        if self._count is not None:
            max_events = min(max_events, self._count - self.emitted)
        limit = min(until, math.nextafter(self._end, -math.inf))
        ids, categories, prices = self._ids, self._categories, self._prices
        prefix, names, millis_suffix = self._id_prefix, EVENT_TYPES, MILLIS_SUFFIX
        second, second_text = self._second, self._second_text
        next_action, next_steady = self._shoppers.next_action, self._clock.next_time
        flash_sale = self._flash_sale
        planted = flash_sale.next_time if flash_sale else math.inf
        steady = self._next_steady
        number = self.emitted
        out: list[Emitted] = []
        append = out.append
        at = 0.0
        for _ in range(max_events):
            if planted <= steady:
                if planted > limit:
                    break
                at, event_type, user, session, product = flash_sale.take()  # type: ignore[union-attr]
                planted = flash_sale.next_time  # type: ignore[union-attr]
            else:
                if steady > limit:
                    break
                at = steady
                event_type, user, session, product = next_action()
                steady = next_steady()
            ms = int(at * 1000)
            number += 1
            if ms // 1000 != second:  # events are dense: format each second once
                second = ms // 1000
                second_text = self._formatter.second_text(second)
            record = {
                "event_id": prefix + str(number),
                "user_id": user,
                "session_id": session,
                "product_id": ids[product],
                "product_category": categories[product],
                "event_type": names[event_type],
                "timestamp": second_text + millis_suffix[ms - second * 1000],
                "price": prices[product],
            }
            append((record, product, event_type, ms))
        self._next_steady = steady
        self._second, self._second_text = second, second_text
        self.emitted = number
        if out:
            self.last_time = at
        return out
