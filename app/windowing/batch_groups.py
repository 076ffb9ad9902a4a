"""A batch's rows summed per (product, slice, depth), before any of them touches the state.

Rows are `app.product_batches.Row`: `[product_id, type_index, event_time_ms, seq, depth]`,
with a sixth element `event_id` when the producer supplied one. Counts are lists
`[views, add_to_cart, purchases]`, indexed by the event's `type_index`
(`app.events.EVENT_TYPES`). Replays are recognised by `seq` as docs/design.md ("Delivery
guarantees") describes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from app.product_batches import Row
from app.windowing.seen_ids import SeenEventIds

REPLAYED = 2**63  # the `seen` seq of an expired slice: every row for it is a replay


@dataclass(slots=True)
class SliceGroup:
    """A batch's rows of one product in one slice, as they add to the slice."""

    seen_before: int  # the source's highest seq the slice held before this batch (-1: none)
    seen: int  # the source's highest seq counted so far, this batch's rows included
    by_depth: dict[int, list[int]]  # depth -> [views, add_to_cart, purchases] added
    start: int  # the slice's start, ms since the epoch
    new_ids: list[str] | None = None  # ids first counted in the slice since the last flush


Groups = dict[tuple[str, int], SliceGroup]  # (product, slice start ms) -> its rows, summed


@dataclass(slots=True)
class GroupedBatch:
    """`group_rows`' result: the groups, and the rows it skipped."""

    groups: Groups
    replays: int  # rows skipped because their seq was counted already
    copies: set[int]  # seqs of rows skipped as copies of an event id counted already


def group_rows(
    rows: Iterable[Row],
    step_ms: int,
    expired_before: int | None,
    seen_of: Callable[[str, int], int],
    seen_ids: SeenEventIds,
) -> GroupedBatch:
    """Sum one source partition's rows, in order, per (product, slice, depth).

    `seen_of(product, slice start)`: the source's highest seq the slice holds (-1: none).
    `expired_before`: slices starting before it were deleted (None: none were). A supplied id
    not seen before is entered in `seen_ids` (its `first_start` and unflushed ids) at once.
    Raises ValueError for a row of other than 5 or 6 elements, IndexError for a type_index
    outside 0..2.
    """
    groups: Groups = {}
    replays = 0
    copies: set[int] = set()
    first_start = seen_ids.first_start
    for row in rows:
        if len(row) == 5:
            product, type_index, t_ms, seq, depth = row
            event_id = None
        else:
            product, type_index, t_ms, seq, depth, event_id = row
        key = (product, t_ms - t_ms % step_ms)
        group = groups.get(key)
        if group is None:
            if expired_before is not None and key[1] < expired_before:
                # The slice was deleted, and with it the seqs that recognise a replay: an
                # event there can only be a replay (ingest re-sending after its crash).
                seen = REPLAYED
            else:
                seen = seen_of(product, key[1])
            group = groups[key] = SliceGroup(seen, seen, {}, key[1])
        if seq <= group.seen:
            replays += 1
            continue
        group.seen = seq
        if event_id is not None:
            if event_id in first_start:
                copies.add(seq)
                continue
            first_start[event_id] = group.start
            if group.new_ids is None:
                group.new_ids = seen_ids.unflushed(group.start)
            group.new_ids.append(event_id)
        counts = group.by_depth.get(depth)
        if counts is None:
            counts = group.by_depth[depth] = [0, 0, 0]
        counts[type_index] += 1
    return GroupedBatch(groups, replays, copies)


def window_additions(groups: Groups, step_ms: int) -> dict[tuple[str, int], list[int]]:
    """(product, window start ms) -> [views, add_to_cart, purchases] the groups add to it."""
    additions: dict[tuple[str, int], list[int]] = {}
    for (product, start), group in groups.items():
        for depth, counts in group.by_depth.items():
            views, carts, purchases = counts
            for window_start in range(start - depth * step_ms, start + 1, step_ms):
                key = (product, window_start)
                total = additions.get(key)
                if total is None:
                    additions[key] = [views, carts, purchases]
                else:
                    total[0] += views
                    total[1] += carts
                    total[2] += purchases
    return additions


class RowsByProduct:
    """A batch's rows of one product, in order; indexed on first use (rarely needed)."""

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows
        self.index: dict[str, list[Row]] | None = None

    def __call__(self, product: str) -> list[Row]:
        if self.index is None:
            self.index = {}
            for row in self.rows:
                self.index.setdefault(row[0], []).append(row)  # row[0]: its product_id
        return self.index.get(product, [])


def replay_to_crossing(
    rows: list[Row],
    batch: GroupedBatch,
    product: str,
    window_start: int,
    running: list[int],
    step_ms: int,
    views_threshold: int,
) -> int | None:
    """Replay one product's rows of a batch, in order, into `running` (the window's
    [views, add_to_cart, purchases] before the batch), counting only rows `group_rows`
    counted and only toward the window starting at `window_start` (ms). Stop at the first
    view past `views_threshold` and return its seq, `running` then holding the counts of that
    moment; None if no view crosses it."""
    last_seq: dict[int, int] = {}
    for row in rows:
        _, type_index, t_ms, seq, depth = row[:5]
        start = t_ms - t_ms % step_ms
        if not window_start <= start <= window_start + depth * step_ms:
            continue
        seen = last_seq.get(start)
        if seen is None:
            seen = batch.groups[(product, start)].seen_before
        if seq <= seen or seq in batch.copies:
            continue
        last_seq[start] = seq
        running[type_index] += 1
        if type_index == 0 and running[0] > views_threshold:
            crossing: int = seq
            return crossing
    return None
