"""Router + window state, without Kafka, against the independent recount (the window oracle)."""

from __future__ import annotations

import random

import orjson
import pytest

from agents.ingest_router import IngestRouter
from app.events import EventParser
from app.product_batches import product_partition
from app.windowing.spec import NO_WATERMARK
from tests.support.streaming_cases import edge_cases
from tests.support.window_oracle import WindowOracle
from tests.support.window_pipeline import SPEC, Pipeline, Record


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
    # Counted once: a replay that doubled views would still alert each window once.
    checked = 0
    for (product, start), counts in oracle.windows.items():
        state = pipeline.states[product_partition(product, 2)]
        if start >= state.oldest_complete_window():
            assert state.window_counts(product, start) == counts, (product, start)
            checked += 1
    assert checked > 1000  # the live windows of the last hour, not a handful


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


def test_ingest_resending_from_the_start_after_expiry_counts_and_alerts_nothing_again() -> None:
    """Ingest killed before its first commit sends its whole input again, after the window
    stage has already counted it and expired the old slices (and their seqs): the replay
    must still change nothing (found by the incident kill -9 test over 4 h of event time)."""
    events = placed(1, seed=7)
    oracle = WindowOracle().feed_all(events)
    pipeline = Pipeline(1)
    all_polls = list(polls(events, 100))
    for source, records in all_polls:
        pipeline.feed(source, records)
    assert any(state.oldest_complete_window() > NO_WATERMARK for state in pipeline.states)
    sent = list(pipeline.alerts)
    pipeline.router = IngestRouter(EventParser(262144, 3600), SPEC, 60_000, 2)  # ingest restarts
    for source, records in polls(events, len(events)):  # in one poll, as a backlog is read
        pipeline.feed(source, records)
    assert pipeline.alerts == sent
    for (product, start), counts in oracle.windows.items():
        q = product_partition(product, 2)
        if start >= pipeline.states[q].oldest_complete_window():
            assert pipeline.states[q].window_counts(product, start) == counts, (product, start)


def test_a_worker_partition_knows_the_watermark_of_sources_that_send_it_no_rows() -> None:
    """Input keyed by product over as many partitions as the worker's: each worker partition
    gets rows from one source only, and must still hear every source's watermark (else it
    waited SOURCE_IDLE_S after each start before closing a window or resolving an incident)."""
    pipeline = Pipeline(2)
    products = [f"p{n}" for n in range(50)]
    mine = [p for p in products if product_partition(p, 2) == 0][:2]
    for source, product in enumerate(mine):
        event = {"user_id": "u", "product_id": product, "event_type": "view",
                 "timestamp": 1_795_766_400_000 + source}  # fmt: skip
        pipeline.feed(source, [Record(0, orjson.dumps(event))])
    assert pipeline.states[1].stored_slices() == {}  # no rows reached partition 1
    assert [state.watermark_ms for state in pipeline.states] == [1_795_766_340_000] * 2


RETRY_T0 = 1_795_766_400_000  # a window start: the 60 views fall in one slice


def views_with_ids(count: int, product: str = "p-retry") -> list[dict[str, object]]:
    return [
        {"event_id": f"view-{i}", "user_id": f"u{i}", "product_id": product,
         "event_type": "view", "timestamp": RETRY_T0 + i * 500}
        for i in range(count)
    ]  # fmt: skip


def records(events: list[dict[str, object]], first_offset: int) -> list[Record]:
    return [Record(first_offset + i, orjson.dumps(e)) for i, e in enumerate(events)]


def retry_windows(pipeline: Pipeline, product: str = "p-retry") -> list[list[int]]:
    """The counts of the ten windows that hold the slice at RETRY_T0."""
    state = pipeline.states[product_partition(product, 2)]
    return [state.window_counts(product, RETRY_T0 - k * 60_000) for k in range(10)]


def test_60_views_sent_twice_with_the_same_ids_count_60_and_raise_no_alert() -> None:
    """Issue 14: a producer retried every event. Half of the copies come back on the same
    input partition later, half on another one; each id counts once."""
    views = views_with_ids(60)
    pipeline = Pipeline(sources=2)
    pipeline.feed(0, records(views, 0))
    pipeline.feed(0, records(views[:30], 60))
    pipeline.feed(1, records(views[30:], 0))
    assert retry_windows(pipeline) == [[60, 0, 0]] * 10
    assert pipeline.alerts == []
    q = product_partition("p-retry", 2)
    assert pipeline.states[q].duplicate_ids_skipped == 60


def test_copies_within_one_message_count_once() -> None:
    views = views_with_ids(60)
    pipeline = Pipeline(sources=1)
    pipeline.feed(0, [Record(0, orjson.dumps([e for v in views for e in (v, v)]))])
    assert retry_windows(pipeline) == [[60, 0, 0]] * 10
    assert pipeline.alerts == []


def test_a_copy_arriving_after_a_restart_of_the_state_is_still_recognised() -> None:
    views = views_with_ids(60)
    pipeline = Pipeline(sources=2)
    pipeline.feed(0, records(views, 0))
    pipeline.states = [pipeline.fresh_state(q) for q in range(2)]  # caches gone, stores kept
    pipeline.feed(1, records(views, 0))
    assert retry_windows(pipeline) == [[60, 0, 0]] * 10
    assert pipeline.alerts == []


def test_events_without_an_id_are_not_deduplicated_by_content() -> None:
    """Two identical id-less records are two events (the parser names each by its position)."""
    views = [{k: v for k, v in e.items() if k != "event_id"} for e in views_with_ids(60)]
    pipeline = Pipeline(sources=1)
    pipeline.feed(0, records(views, 0))
    pipeline.feed(0, records(views, 60))
    assert retry_windows(pipeline) == [[120, 0, 0]] * 10
    assert len(pipeline.alerts) == 10


def test_seen_ids_expire_when_their_windows_close_and_survive_until_then() -> None:
    """The dedup horizon is the last window of the id's slice: after it closes, a copy is
    late for all its windows and ingest drops it, so ids leave store and memory then (the
    slices stay for the retention). Memory is bounded by open windows, not by history."""
    pipeline = Pipeline(sources=1)
    q = product_partition("p-retry", 2)
    slices = pipeline.stores[q][0]
    pipeline.feed(0, records(views_with_ids(60), 0))
    id_keys = [k for k in slices if k.startswith(b"\x1fids\x1f")]
    assert id_keys
    later = {"user_id": "u", "product_id": "p-retry", "event_type": "view"}
    # While a window of the slice is open: a restarted state still knows every id.
    pipeline.feed(0, records([{**later, "timestamp": RETRY_T0 + 10 * 60_000}], 60))
    pipeline.states = [pipeline.fresh_state(q) for q in range(2)]
    assert len(pipeline.states[q].seen_ids.first_start) == 60
    # Every window of the slice closed: the ids are gone from store and memory, and a copy
    # sent now is late (not counted again); the slice itself is kept for the retention.
    pipeline.feed(0, records([{**later, "timestamp": RETRY_T0 + 12 * 60_000}], 61))
    assert not any(k in slices for k in id_keys)
    assert pipeline.states[q].seen_ids.first_start == {}
    assert RETRY_T0 in pipeline.states[q].stored_slices()
    pipeline.feed(0, records(views_with_ids(60), 62))
    assert retry_windows(pipeline)[0] == [60, 0, 0]
