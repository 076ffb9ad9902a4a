"""Order dependence by knapsack equals trying every interleaving of small windows."""

from __future__ import annotations

import random

import pytest

from batch.backtest_rule import Thresholds
from batch.order_dependence import SourceRun, can_alert, can_hold_back, is_order_dependent


def _interleavings(sources: list[str]) -> set[str]:
    """Every merge of the sources that keeps each source's order (brute force)."""
    if sum(map(len, sources)) == 0:
        return {""}
    merged = set()
    for i, source in enumerate(sources):
        if source:
            rest = [*sources[:i], source[1:], *sources[i + 1 :]]
            merged |= {source[0] + tail for tail in _interleavings(rest)}
    return merged


def _alerts(sequence: str, t: Thresholds) -> bool:
    views = purchases = 0
    for kind in sequence:
        if kind == "p":
            purchases += 1
        else:
            views += 1
            if views == t.views + 1:
                return purchases < t.purchases
    return False


def _run(source: str, t: Thresholds) -> SourceRun:
    before = [source[:i].count("v") for i, kind in enumerate(source) if kind == "p"]
    return SourceRun(source.count("v"), source.count("p"), tuple(before[: t.purchases]))


@pytest.mark.parametrize("seed", range(30))
def test_knapsack_answers_match_every_interleaving(seed: int) -> None:
    rng = random.Random(seed)
    while True:  # a contested window: its outcome may depend on order
        t = Thresholds(rng.randrange(2, 5), rng.randrange(1, 4))
        sources = ["".join(rng.choice("vvp") for _ in range(rng.randrange(1, 5)))
                   for _ in range(rng.randrange(2, 4))]  # fmt: skip
        joined = "".join(sources)
        if joined.count("v") > t.views and joined.count("p") >= t.purchases:
            break
    outcomes = {_alerts(merged, t) for merged in _interleavings(sources)}
    runs = [_run(source, t) for source in sources]
    assert can_alert(runs, t) == (True in outcomes)
    assert can_hold_back(runs, t) == (False in outcomes)
    assert is_order_dependent(runs, t) == (outcomes == {True, False})


def test_one_source_is_never_order_dependent() -> None:
    t = Thresholds(2, 1)
    assert not is_order_dependent([_run("vpvvv", t)], t)
