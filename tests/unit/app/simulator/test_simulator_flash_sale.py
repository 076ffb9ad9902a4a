"""Flash-sale scenario: an independent recount shows the planted products do what the plan says.

The recount below is written from docs/design.md's window rule alone (epoch-aligned hopping windows;
an event at t counts in every window with start <= t < start + size) and uses no project code.
"""

from __future__ import annotations

import collections
import time
from datetime import UTC, datetime

import pytest

from app.simulator import SimulationOptions, Thresholds, build_simulation

START = datetime(2024, 6, 1, 9, 0, 0, tzinfo=UTC)


def run_flash_sale(thresholds: Thresholds, minutes: int, pace: float = 10.0):  # type: ignore[no-untyped-def]
    options = SimulationOptions(
        seed=3,
        users=1000,
        products=100,
        pace=pace,
        start=START,
        duration=minutes * 60.0,
        scenario="flash-sale",
        thresholds=thresholds,
    )
    simulation = build_simulation(options, now=time.time())
    records = []
    while not simulation.stream.finished:
        records.extend(event[0] for event in simulation.stream.take(20_000))
    plan = simulation.plan(simulation.stream.last_time)
    return records, plan


def epoch_seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def window_counts(records, size: int, step: int):  # type: ignore[no-untyped-def]
    """(product, window start) -> [views, purchases], counted from the raw records."""
    counts: dict[tuple[str, int], list[int]] = collections.defaultdict(lambda: [0, 0])
    for record in records:
        t = epoch_seconds(record["timestamp"])
        latest = int(t // step) * step
        for start in range(latest, latest - size, -step):
            if start <= t < start + size:
                slot = counts[(record["product_id"], start)]
                if record["event_type"] == "view":
                    slot[0] += 1
                elif record["event_type"] == "purchase":
                    slot[1] += 1
    return counts


def qualifies(views: int, purchases: int, rule: Thresholds) -> bool:
    return views > rule.views and purchases < rule.purchases


@pytest.mark.parametrize(
    "rule",
    [Thresholds(100, 5, 600, 60), Thresholds(40, 3, 300, 60), Thresholds(250, 10, 1200, 120)],
    ids=["design-defaults", "smaller", "larger"],
)
def test_viral_products_alert_and_the_hot_seller_never_does(rule: Thresholds) -> None:
    records, plan = run_flash_sale(rule, minutes=50)
    viral = {b["product_id"] for b in plan["bursts"] if b["role"] == "viral"}
    hot = {b["product_id"] for b in plan["bursts"] if b["role"] == "hot_seller"}
    assert len(viral) >= 2 and len(hot) == 1
    counts = window_counts(records, rule.window_size, rule.window_step)
    for product in viral:
        assert any(qualifies(v, p, rule) for (pid, _), (v, p) in counts.items() if pid == product)
    hot_windows = [(v, p) for (pid, _), (v, p) in counts.items() if pid in hot]
    assert max(v for v, _ in hot_windows) > rule.views  # it is busy enough to matter
    assert not any(qualifies(v, p, rule) for v, p in hot_windows)


def test_hot_seller_holds_at_every_prefix_of_a_window() -> None:
    """The worker alerts the first time a window qualifies while events arrive, so the hot
    seller must have enough purchases at every moment its views pass the threshold."""
    rule = Thresholds(100, 5, 600, 60)
    records, plan = run_flash_sale(rule, minutes=20)
    hot = next(b["product_id"] for b in plan["bursts"] if b["role"] == "hot_seller")
    running: dict[int, list[int]] = collections.defaultdict(lambda: [0, 0])
    for record in records:
        if record["product_id"] != hot:
            continue
        t = epoch_seconds(record["timestamp"])
        latest = int(t // 60) * 60
        for start in range(latest, latest - 600, -60):
            slot = running[start]
            slot[0] += record["event_type"] == "view"
            slot[1] += record["event_type"] == "purchase"
            assert not qualifies(slot[0], slot[1], rule), (start, slot)


def test_first_viral_burst_passes_the_threshold_within_two_minutes_at_the_live_pace() -> None:
    rule = Thresholds(100, 5, 600, 60)
    records, plan = run_flash_sale(rule, minutes=3)
    first = plan["bursts"][0]
    assert first["role"] == "viral"
    assert epoch_seconds(first["start"]) - START.timestamp() <= 30
    views = [
        epoch_seconds(r["timestamp"])
        for r in records
        if r["product_id"] == first["product_id"] and r["event_type"] == "view"
    ]
    assert len(views) > rule.views
    assert views[rule.views] - START.timestamp() < 90  # the 101st view


def test_planted_products_get_no_steady_traffic_and_plan_times_cover_their_events() -> None:
    rule = Thresholds(100, 5, 600, 60)
    records, plan = run_flash_sale(rule, minutes=40)
    ranges = collections.defaultdict(list)
    for burst in plan["bursts"]:
        ranges[burst["product_id"]].append(
            (epoch_seconds(burst["start"]), epoch_seconds(burst["end"]) + 120)
        )
    for record in records:
        product = record["product_id"]
        if product in ranges:
            t = epoch_seconds(record["timestamp"])
            assert any(start <= t <= end for start, end in ranges[product]), record
