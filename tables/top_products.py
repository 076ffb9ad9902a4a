"""Top products of the latest complete window: the window, one worker's share, and the merge.

"Latest complete window": the newest window whose end the global watermark has passed
(watermark > end, the rule that closes a window). The global watermark is the lowest, over
the input partitions, of the newest watermark the window agent has applied for that input
partition on any worker partition; once it passes a window's end, no input partition can add
to that window any more. Input partitions silent for SOURCE_IDLE_S do not hold it back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.windowing.partition_windows import PartitionWindows
from app.windowing.spec import WindowSpec
from app.windowing.watermarks import SOURCE_IDLE_S
from tables.product_windows import read_windows

METRICS = ("views", "add_to_cart", "purchases")

SourceMarks = dict[int, tuple[int, float]]  # input partition -> (watermark ms, seconds since)


@dataclass(frozen=True, slots=True)
class ProductCounts:
    product_id: str
    views: int
    add_to_cart: int
    purchases: int

    def metric(self, name: str) -> int:
        return int(getattr(self, name))

    def as_json(self) -> dict[str, object]:
        return {
            "product_id": self.product_id,
            "views": self.views,
            "add_to_cart": self.add_to_cart,
            "purchases": self.purchases,
        }


def local_source_marks(states: Iterable[PartitionWindows]) -> SourceMarks:
    """Per input partition, the newest watermark any of these partitions applied, and its age."""
    marks: SourceMarks = {}
    for state in states:
        now = state.clock()
        for source, (watermark, at) in state.source_watermarks().items():
            merge_mark(marks, source, watermark, now - at)
    return marks


def merge_mark(marks: SourceMarks, source: int, watermark: int, age: float) -> None:
    known = marks.get(source)
    if known is None:
        marks[source] = (watermark, age)
    else:
        marks[source] = (max(known[0], watermark), min(known[1], age))


def global_watermark(marks: Mapping[int, tuple[int, float]]) -> int | None:
    """The lowest watermark over input partitions heard from recently; None if none was."""
    live = [watermark for watermark, age in marks.values() if age < SOURCE_IDLE_S]
    return min(live) if live else None


def latest_complete_window(spec: WindowSpec, watermark: int) -> int:
    """Start of the newest window with watermark > end."""
    newest_end = watermark - 1
    start = newest_end - spec.size_ms
    return start - start % spec.step_ms


def local_top(
    states: Iterable[PartitionWindows],
    spec: WindowSpec,
    window_start: int,
    metric: str,
    limit: int,
) -> list[ProductCounts]:
    """This worker's best `limit` products in one window, from the stored slices."""
    end = window_start + spec.size_ms
    counted = []
    for state in states:
        candidates: set[str] = set()
        for start, products in state.stored_slices().items():
            if window_start <= start < end:
                candidates.update(products)
        for product in candidates:
            w = read_windows(state, product, window_start, 1)[0]
            counted.append(ProductCounts(product, w.views, w.add_to_cart, w.purchases))
    return rank(counted, metric, limit)


def rank(products: Iterable[ProductCounts], metric: str, limit: int) -> list[ProductCounts]:
    """Highest `metric` first, then product_id ascending; products with none are left out."""
    ranked = sorted(
        (p for p in products if p.metric(metric) > 0),
        key=lambda p: (-p.metric(metric), p.product_id),
    )
    return ranked[:limit]
