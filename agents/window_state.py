"""Exact per-product hopping-window counts for one worker partition, kept as step-long slices.

Durable state lives in a key-value store (the Faust table, a dict in unit tests): one value per
(product, slice) holding the slice's counts by depth (how many windows an event still counted
toward when it arrived) and, per source partition, the highest event `seq` applied. Replayed
events (after a crash, a rebalance or a duplicate delivery) are recognised by that `seq` and
skipped, so at-least-once delivery still yields exact counts. Window totals are derived from
slices and cached in memory; caches are only an optimisation and may be dropped at any time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

import orjson

from app.product_batches import ProductBatch
from app.windows import NO_WATERMARK, WindowSpec

SEP = "\x1f"
SOURCE_IDLE_S = 600.0


class KeyValueStore(Protocol):
    def get(self, key: bytes, /) -> bytes | None: ...
    def __setitem__(self, key: bytes, value: bytes) -> None: ...
    def __delitem__(self, key: bytes) -> None: ...


def state_key(product_id: str, start_ms: int) -> bytes:
    return f"{product_id}{SEP}{start_ms}".encode()


def parse_state_key(key: bytes) -> tuple[str, int]:
    product, _, start = key.decode().rpartition(SEP)
    return product, int(start)


@dataclass(slots=True)
class Slice:
    """Counts of one product in one step-long slice: depth -> [views, carts, purchases]."""

    by_depth: dict[int, list[int]] = field(default_factory=dict)
    seen: dict[int, int] = field(default_factory=dict)

    def encode(self) -> bytes:
        return orjson.dumps([[[d, *c] for d, c in self.by_depth.items()], list(self.seen.items())])

    @classmethod
    def decode(cls, raw: bytes) -> Slice:
        depths, seen = orjson.loads(raw)
        return cls({row[0]: row[1:] for row in depths}, {sp: seq for sp, seq in seen})

    def counts_for_offset(self, offset: int) -> list[int]:
        """Counts this slice adds to the window starting `offset` steps before it."""
        total = [0, 0, 0]
        for depth, counts in self.by_depth.items():
            if depth >= offset:
                total[0] += counts[0]
                total[1] += counts[1]
                total[2] += counts[2]
        return total


@dataclass(frozen=True, slots=True)
class WindowAlert:
    product_id: str
    window_start_ms: int
    window_end_ms: int
    views: int
    add_to_cart: int
    purchases: int

    @property
    def alert_id(self) -> str:
        return f"{self.product_id}:{self.window_start_ms}"


class PartitionWindows:
    """Window state of the products one worker partition owns."""

    def __init__(
        self,
        spec: WindowSpec,
        views_threshold: int,
        purchases_threshold: int,
        retention_ms: int,
        slices: KeyValueStore,
        alerted: KeyValueStore,
        already_alerted: Callable[[str], bool] = lambda alert_id: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self.views_threshold = views_threshold
        self.purchases_threshold = purchases_threshold
        self.retention_ms = retention_ms
        self.slices = slices
        self.alerted = alerted
        self.already_alerted = already_alerted
        self.clock = clock
        self._created = clock()
        self._source_count = 1
        self._source_watermarks: dict[int, tuple[int, float]] = {}
        self._slice_cache: dict[int, dict[str, Slice]] = {}
        self._window_cache: dict[int, dict[str, list[int]]] = {}
        self._alerted_cache: dict[int, set[str]] = {}
        self._dirty: set[tuple[str, int]] = set()
        self._new_alerts: list[WindowAlert] = []
        self._stored: dict[int, set[str]] = {}  # slice start -> products with a stored slice
        self._alert_index: dict[int, set[str]] = {}  # window start -> products with a marker
        self.duplicates_skipped = 0

    def index_stored_keys(self, slice_keys: Iterable[bytes], alert_keys: Iterable[bytes]) -> None:
        """Learn which keys the store already holds, so that they expire in time."""
        for key in slice_keys:
            product, start = parse_state_key(key)
            self._stored.setdefault(start, set()).add(product)
        for key in alert_keys:
            product, start = parse_state_key(key)
            self._alert_index.setdefault(start, set()).add(product)

    def apply(self, batch: ProductBatch) -> list[WindowAlert]:
        """Count a batch's events; return the windows that qualified for the first time."""
        step = self.spec.step_ms
        source = batch.source_partition
        for product, type_index, t_ms, seq, depth in batch.rows:
            start = t_ms - t_ms % step
            slice_ = self._slice(product, start)
            if seq <= slice_.seen.get(source, -1):
                self.duplicates_skipped += 1
                continue
            slice_.seen[source] = seq
            # Windows first: one not yet cached is summed from slices that must not hold
            # this event yet.
            for i in range(depth + 1):
                window_start = start - i * step
                window = self._window(product, window_start)
                window[type_index] += 1
                if type_index == 0 and window[0] > self.views_threshold:
                    self._check_alert(product, window_start, window)
            counts = slice_.by_depth.get(depth)
            if counts is None:
                counts = slice_.by_depth[depth] = [0, 0, 0]
            counts[type_index] += 1
            self._dirty.add((product, start))
        self._source_watermarks[source] = (batch.watermark_ms, self.clock())
        self._source_count = max(self._source_count, batch.source_partitions)
        alerts, self._new_alerts = self._new_alerts, []
        return alerts

    @property
    def watermark_ms(self) -> int:
        """The lowest watermark of the source partitions that feed this one.

        A source partition that lags may still add to windows the others have closed, so
        state expires only behind the slowest one, including sources not heard from yet. A
        source silent for SOURCE_IDLE_S stops holding expiry back (memory stays bounded).
        """
        now = self.clock()
        marks = []
        for source in range(self._source_count):
            entry = self._source_watermarks.get(source)
            if entry is None:
                if now - self._created < SOURCE_IDLE_S:
                    return NO_WATERMARK
            elif now - entry[1] < SOURCE_IDLE_S:
                marks.append(entry[0])
        return min(marks) if marks else NO_WATERMARK

    def flush(self) -> int:
        """Write changed slices to the store, expire old state; return how many keys changed."""
        writes = 0
        for product, start in self._dirty:
            self.slices[state_key(product, start)] = self._slice_cache[start][product].encode()
            self._stored.setdefault(start, set()).add(product)
            writes += 1
        self._dirty.clear()
        return writes + self._expire()

    def mark_alerted(self, alert: WindowAlert) -> None:
        """Record durably that this window's alert went out (after the send was acknowledged)."""
        self.alerted[state_key(alert.product_id, alert.window_start_ms)] = b"1"
        self._alert_index.setdefault(alert.window_start_ms, set()).add(alert.product_id)

    def stored_slice_starts(self, product: str) -> list[int]:
        """Starts of the slices of a product that the store holds, oldest first."""
        return sorted(start for start, products in self._stored.items() if product in products)

    def stored_slices(self) -> Mapping[int, AbstractSet[str]]:
        """Slice start -> products with a stored slice: a read-only view for the web."""
        return MappingProxyType(self._stored)

    def source_watermarks(self) -> dict[int, tuple[int, float]]:
        """Source partition -> (its watermark, clock time of its last batch here)."""
        return dict(self._source_watermarks)

    def oldest_complete_window(self) -> int:
        """Start of the oldest window whose slices are all still stored (not yet expired)."""
        if self.watermark_ms == NO_WATERMARK:
            return NO_WATERMARK
        return self.spec.first_open_start(self.watermark_ms) - self.retention_ms

    def window_counts(self, product: str, window_start: int) -> list[int]:
        """[views, add_to_cart, purchases] of one window, from cache or store."""
        return list(self._window(product, window_start))

    def _check_alert(self, product: str, window_start: int, window: list[int]) -> None:
        if window[2] >= self.purchases_threshold:
            return
        done = self._alerted_cache.setdefault(window_start, set())
        if product in done:
            return
        done.add(product)
        alert = WindowAlert(product, window_start, window_start + self.spec.size_ms, *window)
        key = state_key(product, window_start)
        if self.alerted.get(key) is None and not self.already_alerted(alert.alert_id):
            self._new_alerts.append(alert)

    def _slice(self, product: str, start: int) -> Slice:
        by_product = self._slice_cache.get(start)
        if by_product is None:
            by_product = self._slice_cache[start] = {}
        slice_ = by_product.get(product)
        if slice_ is None:
            raw = self.slices.get(state_key(product, start))
            slice_ = by_product[product] = Slice.decode(raw) if raw is not None else Slice()
        return slice_

    def _window(self, product: str, window_start: int) -> list[int]:
        by_product = self._window_cache.get(window_start)
        if by_product is None:
            by_product = self._window_cache[window_start] = {}
        window = by_product.get(product)
        if window is None:
            window = [0, 0, 0]
            step = self.spec.step_ms
            for offset in range(self.spec.per_event):
                part = self._slice(product, window_start + offset * step).counts_for_offset(offset)
                window[0] += part[0]
                window[1] += part[1]
                window[2] += part[2]
            by_product[product] = window
        return window

    def _expire(self) -> int:
        """Drop caches of closed windows; delete stored state older than the retention."""
        if self.watermark_ms == NO_WATERMARK:
            return 0
        closed_before = self.watermark_ms - self.spec.size_ms
        for cache in (self._slice_cache, self._window_cache, self._alerted_cache):
            for start in [s for s in cache if s < closed_before]:
                del cache[start]
        deletes = 0
        expired_before = closed_before - self.retention_ms
        for index, store in ((self._stored, self.slices), (self._alert_index, self.alerted)):
            for start in [s for s in index if s < expired_before]:
                for product in index.pop(start):
                    del store[state_key(product, start)]
                    deletes += 1
        return deletes
