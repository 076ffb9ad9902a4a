"""Router + window state, without Kafka, against the independent recount (tests/oracle.py)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import orjson
import pytest

from agents.ingest_router import IngestRouter
from agents.window_state import PartitionWindows
from app.events import EventParser
from app.product_batches import product_partition
from app.windows import NO_WATERMARK, WindowSpec
from tests.integration.streaming_cases import edge_cases
from tests.oracle import WindowOracle

SPEC = WindowSpec.from_seconds(600, 60)
NOW_MS = 2_000_000_000_000


@dataclass
class Record:
    offset: int
    value: bytes


class Pipeline:
    """Ingest router and window states wired with dicts for stores, as the worker wires them."""

    def __init__(self, sources: int, partitions: int = 2) -> None:
        self.router = IngestRouter(EventParser(262144, 3600), SPEC, 60_000, partitions)
        self.router.source_partitions = sources
        self.stores = [({}, {}) for _ in range(partitions)]
        self.states = [self.fresh_state(q) for q in range(partitions)]
        self.alerts: list[tuple[str, int, int, int, int]] = []

    def fresh_state(self, q: int) -> PartitionWindows:
        slices, alerted = self.stores[q]
        return PartitionWindows(
            SPEC, 100, 5, 3600_000, slices, alerted,  # type: ignore[arg-type]
            stored_slice_keys=list(slices), stored_alert_keys=list(alerted),
        )  # fmt: skip

    def feed(self, source: int, records: list[Record]) -> None:
        routed = self.router.route("in", source, records, NOW_MS)
        for target, batch in routed.batches.items():
            state = self.states[target]
            for alert in state.apply(batch):
                self.alerts.append((alert.product_id, alert.window_start_ms, alert.views,
                                    alert.add_to_cart, alert.purchases))  # fmt: skip
                state.mark_alerted(alert)
            state.flush()


def placed(partitions: int, seed: int) -> list[tuple[int, dict[str, object]]]:
    rng = random.Random(seed)
    return [(rng.randrange(partitions), e) for e in edge_cases(seed)]


def polls(events: list[tuple[int, dict[str, object]]], size: int):  # type: ignore[no-untyped-def]
    """Interleave per-partition polls of up to `size` records, keeping each partition's order."""
    offsets: dict[int, int] = {}
    pending: dict[int, list[Record]] = {}
    for source, event in events:
        offset = offsets[source] = offsets.get(source, -1) + 1
        pending.setdefault(source, []).append(Record(offset, orjson.dumps(event)))
    while any(pending.values()):
        for source in sorted(pending):
            chunk, pending[source] = pending[source][:size], pending[source][size:]
            if chunk:
                yield source, chunk


@pytest.mark.parametrize(("sources", "poll_size"), [(1, 1), (1, 500), (3, 7), (3, 1000)])
def test_alerts_and_windows_equal_the_recount(sources: int, poll_size: int) -> None:
    events = placed(sources, seed=sources)
    oracle = WindowOracle().feed_all(events)
    pipeline = Pipeline(sources)
    for source, records in polls(events, poll_size):
        pipeline.feed(source, records)
    keys = [(p, s) for p, s, *_ in pipeline.alerts]
    assert len(keys) == len(set(keys))
    if sources == 1:
        assert {(p, s): tuple(c) for p, s, *c in pipeline.alerts} == oracle.alerts
    else:
        assert oracle.qualifying() <= set(keys)
    for (product, start), counts in oracle.windows.items():
        if start >= max(oracle.max_seen.values()) - 3600_000 - 600_000:
            q = product_partition(product, 2)
            assert pipeline.states[q].window_counts(product, start) == counts, (product, start)


def test_replayed_polls_are_not_counted_twice_even_after_losing_every_cache() -> None:
    events = placed(2, seed=5)
    oracle = WindowOracle().feed_all(events)
    pipeline = Pipeline(2)
    all_polls = list(polls(events, 50))
    rng = random.Random(9)
    for i, (source, records) in enumerate(all_polls):
        pipeline.feed(source, records)
        if rng.random() < 0.2:  # crash: caches gone, a few polls replayed
            pipeline.states = [pipeline.fresh_state(q) for q in range(2)]
            for replay_source, replay in all_polls[max(0, i - 3) : i + 1]:
                if replay_source == source:
                    pipeline.feed(replay_source, replay)
    keys = [(p, s) for p, s, *_ in pipeline.alerts]
    assert len(keys) == len(set(keys))
    assert oracle.qualifying() <= set(keys)


def test_a_restarted_state_knows_every_source_watermark_before_they_report_again() -> None:
    events = placed(3, seed=6)
    pipeline = Pipeline(3)
    for source, records in polls(events, 200):
        pipeline.feed(source, records)
    before = [state.oldest_complete_window() for state in pipeline.states]
    pipeline.states = [pipeline.fresh_state(q) for q in range(2)]  # a restart: caches gone
    assert [state.oldest_complete_window() for state in pipeline.states] == before
    assert all(mark > NO_WATERMARK for mark in before)


def test_sent_alert_markers_expire_with_their_windows() -> None:
    """Alert markers are state like slices: once their windows are an hour past closing they
    leave the store, so memory stays bounded by live windows, not by alert history."""
    events = placed(1, seed=7)
    oracle = WindowOracle().feed_all(events)
    pipeline = Pipeline(1)
    for source, records in polls(events, 100):
        pipeline.feed(source, records)
    assert pipeline.alerts
    closed_before = max(oracle.max_seen.values()) - 60_000 - 600_000
    for q in range(2):
        alerted = pipeline.stores[q][1]
        kept = {int(key.decode().rpartition("\x1f")[2]) for key in alerted}
        assert all(start >= closed_before - 3600_000 for start in kept)
    expired = [s for _, s, *_ in pipeline.alerts if s < closed_before - 3600_000]
    assert expired  # the data spans more than the retention, so some markers had to go
