"""Which window is "the latest complete one", and how shares of top products merge."""

from __future__ import annotations

from app.windowing.spec import WindowSpec
from tables.top_products import (
    ProductCounts,
    SourceMarks,
    global_watermark,
    latest_complete_window,
    merge_mark,
    rank,
)

SPEC = WindowSpec.from_seconds(600, 60)
MIN = 60_000


def test_the_latest_complete_window_is_the_newest_the_watermark_passed() -> None:
    # Closed means watermark > end: a window ending exactly at the watermark is still open.
    assert latest_complete_window(SPEC, 20 * MIN) == 9 * MIN
    assert latest_complete_window(SPEC, 20 * MIN + 1) == 10 * MIN
    assert latest_complete_window(SPEC, 21 * MIN - 1) == 10 * MIN
    assert latest_complete_window(SPEC, 5 * MIN) == -6 * MIN


def test_the_watermark_is_the_slowest_input_partitions_newest() -> None:
    marks: SourceMarks = {}
    merge_mark(marks, 0, 100, 5.0)  # input partition 0 as seen by one worker partition
    merge_mark(marks, 0, 300, 1.0)  # ... and by another, more recently
    merge_mark(marks, 1, 200, 2.0)
    assert marks == {0: (300, 1.0), 1: (200, 2.0)}
    assert global_watermark(marks) == 200


def test_silent_input_partitions_do_not_hold_the_watermark_back() -> None:
    assert global_watermark({0: (300, 1.0), 1: (50, 601.0)}) == 300
    assert global_watermark({0: (300, 700.0)}) is None
    assert global_watermark({}) is None


def test_ranking_by_metric_then_product_id_leaves_out_zeros() -> None:
    products = [
        ProductCounts("b", 5, 1, 0), ProductCounts("a", 5, 0, 2),
        ProductCounts("c", 9, 0, 0), ProductCounts("d", 0, 3, 0),
    ]  # fmt: skip
    assert [p.product_id for p in rank(products, "views", 10)] == ["c", "a", "b"]
    assert [p.product_id for p in rank(products, "views", 2)] == ["c", "a"]
    assert [p.product_id for p in rank(products, "purchases", 10)] == ["a"]
    assert [p.product_id for p in rank(products, "add_to_cart", 10)] == ["d", "b"]
