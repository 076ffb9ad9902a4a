"""Exact per-product hopping-window counts for one worker partition, kept as step-long slices.

Durable state lives in a key-value store (the Faust table, a dict in unit tests): one value per
(product, slice) holding the slice's counts by depth (how many windows an event still counted
toward when it arrived) and, per source partition, the highest event `seq` applied. Replayed
events (after a crash, a rebalance or a duplicate delivery) are recognised by that `seq` and
skipped, so at-least-once delivery still yields exact counts. A producer's retry is a new
input record, so `seq` cannot see it: events that carry a supplied `event_id` are counted once
per id, across source partitions and restarts, until every window of the slice the id was
first counted in has closed (`SeenEventIds`): a copy after that is late, dropped by ingest.
Window totals are derived from slices and cached in memory; caches are only an optimisation
and may be dropped at any time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from types import MappingProxyType

from app.product_batches import ProductBatch, Row
from app.windowing.alert_rule import qualifies
from app.windowing.batch_groups import (
    GroupedBatch,
    RowsByProduct,
    group_rows,
    replay_to_crossing,
    window_additions,
)
from app.windowing.seen_ids import ID_KEY_PREFIX, SeenEventIds
from app.windowing.slice_cache import SliceCache
from app.windowing.slices import KeyValueStore, parse_state_key, state_key
from app.windowing.spec import NO_WATERMARK, WindowSpec
from app.windowing.watermarks import WATERMARKS_KEY, SourceMark, SourceWatermarks
from app.windowing.window_alert import WindowAlert


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
        *,
        stored_slice_keys: Iterable[bytes],
        stored_alert_keys: Iterable[bytes],
        already_alerted: Callable[[str], bool] = lambda alert_id: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`stored_*_keys`: every key of this partition that the stores hold now. The index
        they build saves a store lookup per new slice, so it must be complete."""
        self.spec = spec
        self.views_threshold = views_threshold
        self.purchases_threshold = purchases_threshold
        self.retention_ms = retention_ms
        self.slices = slices
        self.alerted = alerted
        self.already_alerted = already_alerted
        self.clock = clock
        self._watermarks = SourceWatermarks(clock)
        self._cache = SliceCache(spec, slices)
        self._alerted_cache: dict[int, set[str]] = {}  # window start -> products decided
        self._new_alerts: list[WindowAlert] = []
        self._alert_index: dict[int, set[str]] = {}  # window start -> products with a marker
        self.duplicates_skipped = 0  # replays (by seq) and copies (by event id)
        self.duplicate_ids_skipped = 0
        self.seen_ids = SeenEventIds(slices)
        self._expired_before: int | None = None  # slices before this start were deleted
        for key in stored_slice_keys:
            if key == WATERMARKS_KEY:
                self._expired_before = self._watermarks.restore(slices.get(key))
                continue
            if key.startswith(ID_KEY_PREFIX):
                self.seen_ids.restore(key)
                continue
            product, start = parse_state_key(key)
            self._cache.stored.setdefault(start, set()).add(product)
        for key in stored_alert_keys:
            product, start = parse_state_key(key)
            self._alert_index.setdefault(start, set()).add(product)

    def apply(self, batch: ProductBatch) -> list[WindowAlert]:
        """Count a batch's events; return the windows that qualified for the first time.

        The batch is first summed per (product, slice, depth), then each touched window gets
        one addition per batch instead of one per event. Only a window whose views cross the
        threshold inside this batch is replayed event by event, to read its counts at the
        crossing view, as per-event processing would see them. A row with a sixth element
        carries a supplied event id: a copy of an id already counted is skipped. A row in a
        slice older than the expiry horizon is a replay whose slice is gone: skipped too.
        Rows as `app.product_batches.Row`; raises ValueError for a row of other than 5 or 6
        elements, IndexError for a type_index outside 0..2, and what the stores raise.
        """
        step = self.spec.step_ms
        source = batch.source_partition
        cache = self._cache

        def seen_of(product: str, start: int) -> int:
            return cache.slice(product, start).seen.get(source, -1)

        grouped = group_rows(batch.rows, step, self._expired_before, seen_of, self.seen_ids)
        groups, copies = grouped.groups, grouped.copies
        self.duplicates_skipped += grouped.replays + len(copies)
        self.duplicate_ids_skipped += len(copies)
        # Windows before slices: a window not yet cached is summed from the stored slices,
        # which must not hold this batch yet.
        rows_of = RowsByProduct(batch.rows)
        for (product, window_start), added in window_additions(groups, step).items():
            window = cache.window(product, window_start)
            window[0] += added[0]
            window[1] += added[1]
            window[2] += added[2]
            if added[0] and window[0] > self.views_threshold:
                self._check_crossing(rows_of, grouped, product, window_start, window, added)
        cache.add(groups, source)
        self._watermarks.advance(source, batch.watermark_ms, batch.source_partitions)
        alerts, self._new_alerts = self._new_alerts, []
        return alerts

    def _check_crossing(
        self,
        rows_of: Callable[[str], list[Row]],
        grouped: GroupedBatch,
        product: str,
        window_start: int,
        window: list[int],
        added: list[int],
    ) -> None:
        """A window past the views threshold got views from this batch. Unless decided
        already, replay the batch's events of that window in order and check the alert at
        the first view past the threshold, with the counts of that moment: exactly what
        checking after every event would have seen."""
        if product in self._alerted_cache.get(window_start, ()):
            return
        running = [window[0] - added[0], window[1] - added[1], window[2] - added[2]]
        seq = replay_to_crossing(
            rows_of(product), grouped, product, window_start, running,
            self.spec.step_ms, self.views_threshold,
        )  # fmt: skip
        if seq is not None:
            self._check_alert(product, window_start, running, seq)

    @property
    def watermark_ms(self) -> int:
        """The lowest watermark (ms) of the source partitions that feed this one, or
        NO_WATERMARK (`SourceWatermarks.lowest`)."""
        return self._watermarks.lowest()

    def flush(self) -> int:
        """Write changed slices to the store, expire old state; return how many keys changed
        (written or deleted). Raises what the stores raise."""
        writes = self._cache.write_dirty()
        writes += self.seen_ids.flush() + self._expire()
        # After the deletes, in the same write: a reader after a restart knows exactly which
        # windows are whole (see oldest_complete_window).
        record = self._watermarks.changed_record(self._expired_before)
        if record is not None:
            self.slices[WATERMARKS_KEY] = record
            writes += 1
        return writes

    def mark_alerted(self, alert: WindowAlert) -> None:
        """Record durably that this window's alert went out (after the send was acknowledged)."""
        self.alerted[state_key(alert.product_id, alert.window_start_ms)] = b"1"
        self._alert_index.setdefault(alert.window_start_ms, set()).add(alert.product_id)

    def stored_slice_starts(self, product: str) -> list[int]:
        """Starts (ms) of the slices of a product that the store holds, oldest first."""
        stored = self._cache.stored
        return sorted(start for start, products in stored.items() if product in products)

    def stored_slices(self) -> Mapping[int, AbstractSet[str]]:
        """Slice start (ms) -> products with a stored slice: a read-only view for the web."""
        return MappingProxyType(self._cache.stored)

    def source_watermarks(self) -> dict[int, SourceMark]:
        """Source partition -> (its watermark ms, clock time s of its last batch here)."""
        return dict(self._watermarks.marks)

    def oldest_complete_window(self) -> int:
        """Start of the oldest window whose slices are all still stored: the expiry horizon
        applied so far (stored with the watermarks, so known right after a restart), or
        NO_WATERMARK while nothing has expired yet (every window with events is whole)."""
        return NO_WATERMARK if self._expired_before is None else self._expired_before

    def window_counts(self, product: str, window_start: int) -> list[int]:
        """[views, add_to_cart, purchases] of the window starting at `window_start` (ms), from
        cache or store (a copy). Raises what the slices store raises."""
        return list(self._cache.window(product, window_start))

    def _check_alert(self, product: str, window_start: int, window: list[int], seq: int) -> None:
        """Decide a window at its first view past the threshold. Purchases only grow, so
        one with too many purchases then never qualifies: it is decided as well."""
        done = self._alerted_cache.setdefault(window_start, set())
        if product in done:
            return
        done.add(product)
        if not qualifies(window[0], window[2], self.views_threshold, self.purchases_threshold):
            return
        end = window_start + self.spec.size_ms
        views, carts, purchases = window
        alert = WindowAlert(product, window_start, end, views, carts, purchases, seq)
        key = state_key(product, window_start)
        if self.alerted.get(key) is None and not self.already_alerted(alert.alert_id):
            self._new_alerts.append(alert)

    def _expire(self) -> int:
        """Drop caches and seen ids of closed windows; delete stored state older than the
        retention."""
        if self.watermark_ms == NO_WATERMARK:
            return 0
        closed_before = self.watermark_ms - self.spec.size_ms
        for cache in (self._cache.slices, self._cache.windows, self._alerted_cache):
            for start in [s for s in cache if s < closed_before]:
                del cache[start]
        deletes = 0
        expired_before = closed_before - self.retention_ms
        if self._expired_before is None or expired_before > self._expired_before:
            self._expired_before = expired_before
        indexes = ((self._cache.stored, self.slices), (self._alert_index, self.alerted))
        for index, store in indexes:
            for start in [s for s in index if s < expired_before]:
                for product in index.pop(start):
                    del store[state_key(product, start)]
                    deletes += 1
        # Supplied event ids go once every window of their slice is closed, not with the
        # slice an hour later: a copy arriving after that is late for all of its windows
        # (its own input partition's watermark is at least this partition's), so ingest
        # drops it before it gets here. At 5,000 events/s the ids of an hour were most of
        # a worker's memory.
        return deletes + self.seen_ids.expire(closed_before)
