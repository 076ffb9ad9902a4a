"""The backtest over real sink Parquet equals an independent replay of the stream's rule."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from batch.backtest import Backtest, epoch_ms, from_epoch_ms
from batch.backtest_rule import Thresholds, WindowRule
from tests.support.batch_stream_store import (
    DedupOracle,
    Placed,
    processing_order,
    shop_events,
    store_as_sink,
)
from tests.support.streaming_cases import edge_cases
from tests.support.window_oracle import WindowOracle

RULE = WindowRule(600_000, 60_000, 60_000)
START = 1_790_000_000_000  # 2026-09-21


def _backtest(
    data_dir: Path, oracle: WindowOracle, pairs: list[Thresholds]
) -> tuple[list[set[tuple[str, int]]], dict[tuple[str, int], tuple[int, int, int]]]:
    starts = [start for _, start in oracle.windows]
    first, end = from_epoch_ms(min(starts)), from_epoch_ms(max(starts) + 60_000)
    with Backtest.over(data_dir, first, end, RULE) as backtest:
        backtest.decide(pairs)
        alerts = [
            {(a.product_id, epoch_ms(a.window_start)) for a in backtest.alerts(n)}
            for n in range(len(pairs))
        ]
        rows = backtest.con.execute("SELECT pid, w, v, c, p FROM windows").fetchall()
    return alerts, {(pid, w): (v, c, p) for pid, w, v, c, p in rows}


def _nonzero(oracle: WindowOracle) -> dict[tuple[str, int], tuple[int, int, int]]:
    return {key: (v, c, p) for key, (v, c, p) in oracle.windows.items() if v or c or p}


@pytest.mark.parametrize("seed", [1, 2])
def test_single_partition_equals_the_stream_rule_on_every_edge_case(
    tmp_path: Path, seed: int
) -> None:
    """Window edges, 100 vs 101 views, 4 vs 5 purchases, out of order, late, partly late."""
    placed: Placed = [(0, event) for event in edge_cases(seed)]
    store_as_sink(placed, tmp_path)
    oracle = WindowOracle().feed_all(placed)
    assert oracle.late >= 150 and len(oracle.alerts) > 20
    (alerts,), windows = _backtest(tmp_path, oracle, [Thresholds(100, 5)])
    assert alerts == set(oracle.alerts)
    assert windows == _nonzero(oracle)
    named = {product for product, _ in alerts}
    assert {"p101", "p4buy", "pedge", "pooo"} <= named
    assert not named & {"p100", "p5buy", "pverylate"}


@pytest.mark.parametrize(("seed", "partitions"), [(3, 3), (4, 2), (5, 4)])
def test_several_partitions_equal_the_replay_in_processing_order(
    tmp_path: Path, seed: int, partitions: int
) -> None:
    placed = shop_events(seed, partitions, 6000, START, disorder=0.04)
    store_as_sink(placed, tmp_path)
    pairs = [Thresholds(20, 3), Thresholds(20, 5), Thresholds(40, 3), Thresholds(10, 1)]
    oracles = [WindowOracle(views=p.views, purchases=p.purchases) for p in pairs]
    for oracle in oracles:
        oracle.feed_all(processing_order(placed))
    assert oracles[0].late > 50  # some events are late for every window, more for some
    alerts, windows = _backtest(tmp_path, oracles[0], pairs)
    assert windows == _nonzero(oracles[0])
    for found, oracle in zip(alerts, oracles, strict=True):
        assert found == set(oracle.alerts)
        assert 10 < len(found) < len(windows)


def _event(product: str, kind: str, t_ms: int, event_id: str) -> dict[str, object]:
    stamp = datetime.fromtimestamp(t_ms / 1000, UTC).isoformat(timespec="milliseconds")
    return {"event_id": event_id, "user_id": "u", "product_id": product, "event_type": kind,
            "timestamp": stamp}  # fmt: skip


def test_a_repeated_event_id_counts_once_and_a_late_copy_never_wins(tmp_path: Path) -> None:
    placed = shop_events(6, 2, 3000, START)
    for n, (_, event) in enumerate(placed):
        event["event_id"] = f"id-{n}"
    retries: Placed = [((p + 1) % 2, dict(e)) for p, e in placed[::7]]  # on the other partition
    # Partition 3 runs 15 minutes ahead, so its copy of "x" is late and is processed first;
    # the original on partition 2 comes in a run that ends even later, and counts.
    x = START + 600_000
    ahead: Placed = [
        (3, _event("pa", "view", x + 900_000, "a")), (3, _event("pdup", "view", x, "x")),
        (2, _event("pdup", "view", x, "x")), (2, _event("pdup", "view", x + 960_000, "y")),
    ]  # fmt: skip
    everything = placed + retries + ahead
    store_as_sink(everything, tmp_path)
    order = processing_order(everything)
    assert [p for p, e in order if e["event_id"] == "x"] == [3, 2]
    oracle = DedupOracle(views=20, purchases=3).feed_all(order)
    (alerts,), windows = _backtest(tmp_path, oracle, [Thresholds(20, 3)])
    assert windows == _nonzero(oracle)
    assert alerts == set(oracle.alerts)
    assert sum(v for (p, _), (v, _, _) in windows.items() if p == "pdup") == 10 + 10  # x and y
    plain = WindowOracle(views=20, purchases=3).feed_all(order)
    assert _nonzero(plain) != windows  # the retries would have changed the counts


def test_no_events_gives_no_windows(tmp_path: Path) -> None:
    day = datetime(2024, 1, 1, tzinfo=UTC)
    with Backtest.over(tmp_path, day, day.replace(day=2), RULE) as backtest:
        backtest.decide([Thresholds(100, 5)])
        assert (backtest.events, backtest.window_count(), backtest.alerts()) == (0, 0, [])
