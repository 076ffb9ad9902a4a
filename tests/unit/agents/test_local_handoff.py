"""The in-process handoff against a Kafka-only recount: batches from two sources reach one
worker partition through an inbox or through the topic, while the partition is reset, given
up and taken back at random moments. Every row must count exactly once."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from agents.local_handoff import MAX_QUEUED_ROWS, HandoffLost, Handoffs, Inbox
from app.product_batches import ProductBatch, Row
from app.windowing.partition_windows import PartitionWindows
from app.windowing.spec import WindowSpec

SPEC = WindowSpec.from_seconds(600, 60)
T = 1_700_000_040_000 - 1_700_000_040_000 % 600_000  # one slice, counted in every window
DEPTH = SPEC.per_event - 1
PRODUCTS = [f"p{i}" for i in range(7)]


class WindowPartition:
    """The window stage of one worker partition: reads the topic, applies ready handoffs,
    checkpoints, and on a reset goes back to its last checkpoint (state and position)."""

    def __init__(self, topic: list[ProductBatch]) -> None:
        self.topic = topic
        self.saved: tuple[dict[bytes, bytes], dict[bytes, bytes]] = ({}, {})
        self.saved_position = 0
        self.inbox: Inbox | None = None
        self.restore()

    def restore(self) -> None:
        slices, alerted = dict(self.saved[0]), dict(self.saved[1])
        self.state = PartitionWindows(
            SPEC, 10**9, 10**9, 3_600_000, slices, alerted,
            stored_slice_keys=list(slices), stored_alert_keys=list(alerted),
        )  # fmt: skip
        self.stores = (slices, alerted)
        self.position = self.saved_position

    def take_back(self) -> None:
        self.inbox = Inbox(0, asyncio.Event())

    def read(self, count: int) -> None:
        for batch in self.topic[self.position : self.position + count]:
            if batch.barrier is not None and self.inbox is not None:
                self.inbox.barrier_read(batch.source_partition, batch.barrier)
            self.state.apply(batch)
            self.position += 1

    def apply_ready(self) -> None:
        if self.inbox is not None:
            for batch in self.inbox.take_ready():
                self.state.apply(batch)

    def checkpoint(self) -> None:
        self.state.flush()
        self.saved = (dict(self.stores[0]), dict(self.stores[1]))
        self.saved_position = self.position
        if self.inbox is not None:
            self.inbox.committed()

    def reset(self, give_up: bool) -> None:
        """A failed checkpoint (or a revoke): back to the last commit; the inbox closes."""
        if self.inbox is not None:
            self.inbox.close()
        self.inbox = None
        self.restore()
        if not give_up:
            self.take_back()

    def views(self, product: str) -> int:
        return self.state.window_counts(product, T - (SPEC.per_event - 1) * SPEC.step_ms)[0]


def batch_of(source: int, seqs: list[int], rng: random.Random) -> tuple[ProductBatch, list[str]]:
    products = [rng.choice(PRODUCTS) for _ in seqs]
    rows: list[Row] = [[p, 0, T, seq, DEPTH] for p, seq in zip(products, seqs, strict=True)]
    return ProductBatch(source, 2, T - 60_000, rows), products


def settle(window: WindowPartition, handoffs: Handoffs, topic: list[ProductBatch]) -> None:
    """What ingest's flush waits for: every handoff committed, or lost and resent."""
    if window.inbox is None:
        window.take_back()
    while [f for f in handoffs.pending() if not f.done()]:
        topic.extend(handoffs.lost(0))
        window.read(len(topic))
        window.apply_ready()
        window.checkpoint()
    topic.extend(handoffs.lost(0))


@pytest.mark.parametrize("seed", range(60))
def test_every_row_counts_once_whatever_the_path_and_the_resets(seed: int) -> None:
    async def scenario() -> None:
        rng = random.Random(seed)
        topic: list[ProductBatch] = []
        window = WindowPartition(topic)
        window.take_back()
        handoffs = Handoffs()
        expected: Counter[str] = Counter()
        next_seq = [1, 1]
        here = [True, True]  # which sources this process's ingest owns; others send via Kafka
        for _ in range(300):
            action = rng.random()
            if action < 0.45:  # a batch of one of the two sources is routed
                source = rng.randrange(2)
                size = rng.randint(1, 4)
                seqs = list(range(next_seq[source], next_seq[source] + size))
                next_seq[source] += size
                batch, products = batch_of(source, seqs, rng)
                expected.update(products)
                if here[source]:
                    topic.extend(handoffs.plan(0, batch, window.inbox))
                else:  # the other process's ingest: its window partition is not there
                    topic.append(batch)
            elif action < 0.5:  # the ingest group moves a source between the processes
                source = rng.randrange(2)
                if here[source]:  # revoke: ingest's flush waits for its handoffs to settle
                    settle(window, handoffs, topic)
                else:
                    handoffs.source_assigned(source)
                here[source] = not here[source]
            elif action < 0.7:
                window.read(rng.randint(1, 3))
            elif action < 0.8:
                window.apply_ready()
            elif action < 0.9:
                window.checkpoint()
            elif action < 0.95:
                window.reset(give_up=rng.random() < 0.5)
            elif window.inbox is None:
                window.take_back()
            else:  # the ingest flush: lost handoffs go through the topic
                topic.extend(handoffs.lost(0))
        # Drain: the window catches up and commits until ingest has nothing outstanding.
        if window.inbox is None:
            window.take_back()
        for _ in range(10):
            topic.extend(handoffs.lost(0))
            window.read(len(topic))
            window.apply_ready()
            window.checkpoint()
        assert not [f for f in handoffs.pending() if not f.done()]
        assert {p: window.views(p) for p in PRODUCTS} == {p: expected[p] for p in PRODUCTS}

    asyncio.run(scenario())


def test_a_source_waits_for_its_barrier_and_a_stale_token_releases_nothing() -> None:
    async def scenario() -> None:
        inbox = Inbox(3, asyncio.Event())
        batch = ProductBatch(1, 2, 0, [["p", 0, T, 1, DEPTH]])
        handoff = inbox.offer(batch)
        assert inbox.needs_barrier((1, 0))
        inbox.barrier_read(1, "an older inbox's token/0")
        inbox.barrier_read(1, f"{inbox.token}/1")  # a later epoch of the source
        assert not inbox.has_ready()
        inbox.barrier_read(1, inbox.barrier((1, 0), 2).barrier)
        assert inbox.wake.is_set() is False and inbox.has_ready()
        assert inbox.take_ready() == [batch]
        assert not handoff.done.done()  # applied, not yet committed
        inbox.committed()
        assert handoff.done.result() is None

    asyncio.run(scenario())


def test_closing_fails_what_no_commit_holds_and_later_offers_at_once() -> None:
    async def scenario() -> None:
        inbox = Inbox(0, asyncio.Event())
        inbox.barrier_read(0, f"{inbox.token}/0")
        applied = inbox.offer(ProductBatch(0, 1, 0, [["p", 0, T, 1, DEPTH]]))
        inbox.take_ready()
        waiting = inbox.offer(ProductBatch(0, 1, 0, [["p", 0, T, 2, DEPTH]]))
        assert inbox.wake.is_set()
        inbox.close()
        late = inbox.offer(ProductBatch(0, 1, 0, [["p", 0, T, 3, DEPTH]]))
        for handoff in (applied, waiting, late):
            assert isinstance(handoff.done.exception(), HandoffLost)

    asyncio.run(scenario())


def test_a_full_inbox_makes_ingest_wait_until_the_window_stage_takes_its_batches() -> None:
    async def scenario() -> None:
        inbox = Inbox(0, asyncio.Event())
        inbox.barrier_read(0, f"{inbox.token}/0")
        inbox.offer(ProductBatch(0, 1, 0, [["p", 0, T, i, DEPTH] for i in range(MAX_QUEUED_ROWS)]))
        assert inbox.full()
        waiter = asyncio.ensure_future(inbox.room())
        await asyncio.sleep(0)
        assert not waiter.done()
        inbox.take_ready()
        await asyncio.wait_for(waiter, 5)

    asyncio.run(scenario())


def test_a_target_keeps_its_open_inbox_while_the_stage_offers_none() -> None:
    async def scenario() -> None:
        handoffs = Handoffs()
        inbox = Inbox(0, asyncio.Event())
        first = ProductBatch(0, 1, 0, [["p", 0, T, 1, DEPTH]])
        assert [b.barrier for b in handoffs.plan(0, first, inbox)] == [f"{inbox.token}/0"]
        # A rebalance under way: the stage offers nothing, but batches still wait in the
        # open inbox, so the next one must not overtake them through Kafka.
        second = ProductBatch(0, 1, 0, [["p", 0, T, 2, DEPTH]])
        assert handoffs.plan(0, second, None) == []
        inbox.close()
        third = ProductBatch(0, 1, 0, [["p", 0, T, 3, DEPTH]])
        assert handoffs.plan(0, third, None) == [first, second, third]

    asyncio.run(scenario())


def test_a_source_taken_back_after_another_process_sent_its_rows_waits_for_a_new_barrier() -> None:
    """Rows 1-3 handed over; the source moves to another process, which sends rows 4-6
    through Kafka; it comes back while the inbox is still open: rows 7-8 must not be counted
    before rows 4-6 are read, or those are skipped as replays."""

    async def scenario() -> None:
        rng = random.Random(1)
        topic: list[ProductBatch] = []
        window = WindowPartition(topic)
        window.take_back()
        handoffs = Handoffs()
        handoffs.source_assigned(0)
        first, counted = batch_of(0, [1, 2, 3], rng)
        topic.extend(handoffs.plan(0, first, window.inbox))
        settle(window, handoffs, topic)
        elsewhere, more = batch_of(0, [4, 5, 6], rng)
        topic.append(elsewhere)  # the other process; not yet read by the window stage
        handoffs.source_assigned(0)
        back, last = batch_of(0, [7, 8], rng)
        sends = handoffs.plan(0, back, window.inbox)
        assert [b.barrier for b in sends] == [f"{window.inbox.token}/2"]  # type: ignore[union-attr]
        topic.extend(sends)
        window.apply_ready()  # nothing yet: the barrier is behind rows 4-6
        settle(window, handoffs, topic)
        expected = Counter(counted + more + last)
        assert {p: window.views(p) for p in PRODUCTS} == {p: expected[p] for p in PRODUCTS}

    asyncio.run(scenario())
