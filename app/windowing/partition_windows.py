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
from typing import Any

import orjson

from app.product_batches import ProductBatch, Row
from app.windowing.alert_rule import qualifies
from app.windowing.seen_ids import ID_KEY_PREFIX, SeenEventIds
from app.windowing.slices import (
    KeyValueStore,
    Slice,
    parse_state_key,
    state_key,
    sum_window,
)
from app.windowing.spec import NO_WATERMARK, WindowSpec
from app.windowing.watermarks import SOURCE_IDLE_S, WATERMARKS_KEY
from app.windowing.window_alert import WindowAlert

REPLAYED = 2**63  # the `seen` seq of an expired slice: every row for it is a replay


class _RowsByProduct:
    """A batch's rows of one product, in order; indexed on first use (rarely needed)."""

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows
        self.index: dict[str, list[Row]] | None = None

    def __call__(self, product: str) -> list[Row]:
        if self.index is None:
            self.index = {}
            for row in self.rows:
                self.index.setdefault(row[0], []).append(row)
        return self.index.get(product, [])


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
        self.duplicates_skipped = 0  # replays (by seq) and copies (by event id)
        self.duplicate_ids_skipped = 0
        self.seen_ids = SeenEventIds(slices)
        self._watermarks_stored: dict[int, int] = {}
        self._expired_before: int | None = None  # slices before this start were deleted
        self._expired_stored: int | None = None
        for key in stored_slice_keys:
            if key == WATERMARKS_KEY:
                self._restore_watermarks(slices.get(key))
                continue
            if key.startswith(ID_KEY_PREFIX):
                self.seen_ids.restore(key)
                continue
            product, start = parse_state_key(key)
            self._stored.setdefault(start, set()).add(product)
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
        """
        step = self.spec.step_ms
        source = batch.source_partition
        # (product, slice start) -> [seq seen before the batch, seq seen now, {depth: counts},
        # slice start, the ids first counted in that slice since the last flush (or None)]
        groups: dict[tuple[str, int], list[Any]] = {}
        duplicates = 0
        copies: set[int] = set()  # seqs of rows skipped as copies of a counted event id
        first_start = self.seen_ids.first_start
        expired_before = self._expired_before
        for row in batch.rows:
            if len(row) == 5:
                product, type_index, t_ms, seq, depth = row
                event_id = None
            else:
                product, type_index, t_ms, seq, depth, event_id = row
            key = (product, t_ms - t_ms % step)
            group = groups.get(key)
            if group is None:
                if expired_before is not None and key[1] < expired_before:
                    # The slice was deleted, and with it the seqs that recognise a replay: an
                    # event there can only be a replay (ingest re-sending after its crash).
                    seen = REPLAYED
                else:
                    seen = self._slice(product, key[1]).seen.get(source, -1)
                group = groups[key] = [seen, seen, {}, key[1], None]
            if seq <= group[1]:
                duplicates += 1
                continue
            group[1] = seq
            if event_id is not None:
                if event_id in first_start:
                    copies.add(seq)
                    continue
                first_start[event_id] = group[3]
                if group[4] is None:
                    group[4] = self.seen_ids.unflushed(group[3])
                group[4].append(event_id)
            counts = group[2].get(depth)
            if counts is None:
                counts = group[2][depth] = [0, 0, 0]
            counts[type_index] += 1
        self.duplicates_skipped += duplicates + len(copies)
        self.duplicate_ids_skipped += len(copies)
        # Windows before slices: a window not yet cached is summed from the stored slices,
        # which must not hold this batch yet.
        rows_of = _RowsByProduct(batch.rows)
        for (product, window_start), added in self._window_additions(groups).items():
            window = self._window(product, window_start)
            window[0] += added[0]
            window[1] += added[1]
            window[2] += added[2]
            if added[0] and window[0] > self.views_threshold:
                self._check_crossing(rows_of, groups, copies, product, window_start, window, added)
        for (product, start), (_, seen, by_depth, *_) in groups.items():
            if not by_depth:
                continue
            slice_ = self._slice(product, start)
            slice_.seen[source] = seen
            for depth, added in by_depth.items():
                counts = slice_.by_depth.get(depth)
                if counts is None:
                    slice_.by_depth[depth] = added
                else:
                    counts[0] += added[0]
                    counts[1] += added[1]
                    counts[2] += added[2]
            self._dirty.add((product, start))
        previous = self._source_watermarks.get(source)
        # A replayed batch carries an older watermark: expiry never goes back.
        watermark = batch.watermark_ms if previous is None else max(previous[0], batch.watermark_ms)
        self._source_watermarks[source] = (watermark, self.clock())
        self._source_count = max(self._source_count, batch.source_partitions)
        alerts, self._new_alerts = self._new_alerts, []
        return alerts

    def _restore_watermarks(self, raw: bytes | None) -> None:
        if raw is None:
            return
        stored = orjson.loads(raw)
        now = self.clock()
        for source, watermark in stored["marks"]:
            self._source_watermarks[source] = (watermark, now)
            self._watermarks_stored[source] = watermark
        self._source_count = max(self._source_count, stored["sources"])
        self._expired_before = self._expired_stored = stored.get("expired")

    def _window_additions(
        self, groups: dict[tuple[str, int], list[Any]]
    ) -> dict[tuple[str, int], list[int]]:
        """(product, window start) -> counts this batch adds to that window."""
        step = self.spec.step_ms
        additions: dict[tuple[str, int], list[int]] = {}
        for (product, start), (_, _, by_depth, *_) in groups.items():
            for depth, counts in by_depth.items():
                views, carts, purchases = counts
                for window_start in range(start - depth * step, start + 1, step):
                    key = (product, window_start)
                    total = additions.get(key)
                    if total is None:
                        additions[key] = [views, carts, purchases]
                    else:
                        total[0] += views
                        total[1] += carts
                        total[2] += purchases
        return additions

    def _check_crossing(
        self,
        rows_of: Callable[[str], list[Row]],
        groups: dict[tuple[str, int], list[Any]],
        copies: set[int],
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
        step, threshold = self.spec.step_ms, self.views_threshold
        running = [window[0] - added[0], window[1] - added[1], window[2] - added[2]]
        last_seq: dict[int, int] = {}
        for row in rows_of(product):
            _, type_index, t_ms, seq, depth = row[:5]
            start = t_ms - t_ms % step
            if not window_start <= start <= window_start + depth * step:
                continue
            seen = last_seq.get(start)
            if seen is None:
                seen = groups[(product, start)][0]
            if seq <= seen or seq in copies:
                continue
            last_seq[start] = seq
            running[type_index] += 1
            if type_index == 0 and running[0] > threshold:
                self._check_alert(product, window_start, running, seq)
                return

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
        writes += self.seen_ids.flush() + self._expire()
        marks = {source: mark for source, (mark, _) in self._source_watermarks.items()}
        if marks != self._watermarks_stored or self._expired_before != self._expired_stored:
            # After the deletes, in the same write: a reader after a restart knows exactly
            # which windows are whole (see oldest_complete_window).
            record = {
                "marks": list(marks.items()),
                "sources": self._source_count,
                "expired": self._expired_before,
            }
            self.slices[WATERMARKS_KEY] = orjson.dumps(record)
            self._watermarks_stored = marks
            self._expired_stored = self._expired_before
            writes += 1
        return writes

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
        """Start of the oldest window whose slices are all still stored: the expiry horizon
        applied so far (stored with the watermarks, so known right after a restart), or
        NO_WATERMARK while nothing has expired yet (every window with events is whole)."""
        return NO_WATERMARK if self._expired_before is None else self._expired_before

    def window_counts(self, product: str, window_start: int) -> list[int]:
        """[views, add_to_cart, purchases] of one window, from cache or store."""
        return list(self._window(product, window_start))

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

    def _slice(self, product: str, start: int) -> Slice:
        by_product = self._slice_cache.get(start)
        if by_product is None:
            by_product = self._slice_cache[start] = {}
        slice_ = by_product.get(product)
        if slice_ is None:
            # The index of stored keys spares a store lookup for every new slice.
            stored = product in self._stored.get(start, ())
            raw = self.slices.get(state_key(product, start)) if stored else None
            slice_ = by_product[product] = Slice.decode(raw) if raw is not None else Slice()
        return slice_

    def _window(self, product: str, window_start: int) -> list[int]:
        by_product = self._window_cache.get(window_start)
        if by_product is None:
            by_product = self._window_cache[window_start] = {}
        window = by_product.get(product)
        if window is None:
            cached, stored = self._slice_cache, self._stored

            def cached_or_stored(start: int) -> Slice | None:
                """The slice if cached or stored; an absent one would be empty."""
                if product in cached.get(start, ()) or product in stored.get(start, ()):
                    return self._slice(product, start)
                return None

            window = by_product[product] = sum_window(self.spec, window_start, cached_or_stored)
        return window

    def _expire(self) -> int:
        """Drop caches and seen ids of closed windows; delete stored state older than the
        retention."""
        if self.watermark_ms == NO_WATERMARK:
            return 0
        closed_before = self.watermark_ms - self.spec.size_ms
        for cache in (self._slice_cache, self._window_cache, self._alerted_cache):
            for start in [s for s in cache if s < closed_before]:
                del cache[start]
        deletes = 0
        expired_before = closed_before - self.retention_ms
        if self._expired_before is None or expired_before > self._expired_before:
            self._expired_before = expired_before
        for index, store in ((self._stored, self.slices), (self._alert_index, self.alerted)):
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
