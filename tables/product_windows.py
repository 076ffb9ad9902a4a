"""Window counts of one product read from its partition's stored slices, for the web API.

Windows are derived here from step-long slices in event time (see `app.windowing`),
never from Faust's hopping tables, which read only the newest window, expire on wall-clock
time and misreport closed windows.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.windowing.partition_windows import PartitionWindows
from app.windowing.slices import Slice, state_key, sum_window


@dataclass(frozen=True, slots=True)
class WindowCounts:
    start_ms: int
    end_ms: int
    views: int
    add_to_cart: int
    purchases: int


def read_windows(
    state: PartitionWindows, product_id: str, newest_start_ms: int, count: int
) -> list[WindowCounts]:
    """The `count` windows of a product ending with the one starting at `newest_start_ms`.

    Reads every slice each window spans from the partition's store (what its last checkpoint
    wrote). Call it on the worker that owns the product's partition.
    """
    spec = state.spec
    step = spec.step_ms
    first = newest_start_ms - (count - 1) * step
    slices: dict[int, Slice] = {}
    for start in range(first, newest_start_ms + spec.size_ms, step):
        raw = state.slices.get(state_key(product_id, start))
        if raw is not None:
            slices[start] = Slice.decode(raw)
    windows = []
    for window_start in range(first, newest_start_ms + 1, step):
        totals = sum_window(spec, window_start, slices.get)
        windows.append(WindowCounts(window_start, window_start + spec.size_ms, *totals))
    return windows


@dataclass(frozen=True, slots=True)
class BucketCounts:
    start_ms: int
    views: int
    add_to_cart: int
    purchases: int


def read_buckets(state: PartitionWindows, product_id: str) -> list[BucketCounts]:
    """The product's counted events per step-long slice, oldest first, from its first to its
    newest stored slice with empty slices as zeros. Events too late for every window are not
    in any slice (they are only counted in `clickstream_late_events_total`)."""
    starts = state.stored_slice_starts(product_id)
    if not starts:
        return []
    buckets = []
    for start in range(starts[0], starts[-1] + 1, state.spec.step_ms):
        raw = state.slices.get(state_key(product_id, start))
        counts = Slice.decode(raw).counts_for_offset(0) if raw is not None else [0, 0, 0]
        buckets.append(BucketCounts(start, *counts))
    return buckets
