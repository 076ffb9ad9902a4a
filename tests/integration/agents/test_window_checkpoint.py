"""A window partition's checkpoint on a real broker: a crash before its commit loses nothing.

The lost alert of issue 13 came from an alert sent in one step and its marker written in
another. Here a checkpoint is cut between sending and committing (the producer is abandoned,
as a kill -9 leaves it); the next owner fences it, recovers the state of the last commit and
replays the input: the alert reaches read_committed readers exactly once.
"""

from __future__ import annotations

import uuid
from collections import Counter

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from agents.window_changelog import ALERTED, INCIDENTS, SLICES, ChangelogStore, read_changelog
from agents.window_checkpoint import PartitionCheckpoint
from app.kafka.topics import ensure_topic
from app.product_batches import ProductBatch
from app.windowing.partition_windows import PartitionWindows
from app.windowing.spec import WindowSpec
from tests.support.worker import read_topic

SPEC = WindowSpec.from_seconds(600, 60)
T0 = 1_795_766_400_000


def flash_sale(first_seq: int, views: int) -> ProductBatch:
    rows = [["p-flash", 0, T0 + i * 100, first_seq + i, SPEC.per_event - 1] for i in range(views)]
    return ProductBatch(0, 1, T0 - 60_000, rows)


class Owner:
    """One owner of worker partition 0: its transactional producer, recovered state, input."""

    def __init__(self, bootstrap: str, tag: str) -> None:
        self.bootstrap, self.tag = bootstrap, tag
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, transactional_id=f"{tag}-windows-0"
        )

    async def take_over(self) -> tuple[PartitionWindows, PartitionCheckpoint]:
        await self.producer.start()  # fences any earlier owner
        restorer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, isolation_level="read_committed"
        )
        await restorer.start()
        try:
            stored = await read_changelog(restorer, TopicPartition(f"{self.tag}-changelog", 0))
        finally:
            await restorer.stop()
        slices, alerted = (
            ChangelogStore(SLICES, stored[SLICES]),
            ChangelogStore(ALERTED, stored[ALERTED]),
        )
        assert stored[INCIDENTS] == {}
        state = PartitionWindows(
            SPEC, 100, 5, 3_600_000, slices, alerted,
            stored_slice_keys=slices.keys(), stored_alert_keys=alerted.keys(),
        )  # fmt: skip
        checkpoint = PartitionCheckpoint(
            0, self.producer, f"{self.tag}-changelog", f"{self.tag}-alerts",
            f"{self.tag}-incidents", f"{self.tag}-windows", (slices, alerted),
        )  # fmt: skip
        return state, checkpoint


async def test_a_checkpoint_cut_before_its_commit_sends_its_alert_once(
    kafka_bootstrap: str,
) -> None:
    tag = f"ckpt{uuid.uuid4().hex[:8]}"
    input_tp = TopicPartition(f"{tag}-input", 0)
    await ensure_topic(kafka_bootstrap, f"{tag}-changelog", 1, compacted=True)
    await ensure_topic(kafka_bootstrap, f"{tag}-alerts", 1)
    await ensure_topic(kafka_bootstrap, input_tp.topic, 1)

    # The first owner commits 60 views, then decides the alert with 41 more and is killed
    # after sending everything but before the commit.
    first = Owner(kafka_bootstrap, tag)
    state, checkpoint = await first.take_over()
    assert state.apply(flash_sale(0, 60)) == []
    await checkpoint.commit(state, input_tp, 1)
    alerts = state.apply(flash_sale(60, 41))
    assert len(alerts) == 10  # every window holding the burst crosses 100 views
    checkpoint.add_alerts(state, alerts, T0)
    state.flush()
    await first.producer.begin_transaction()
    for store in checkpoint.stores:
        for key, value in store.take_changes():
            await first.producer.send(f"{tag}-changelog", value, key=key, partition=0)
    for pending in checkpoint.alerts:
        await first.producer.send(f"{tag}-alerts", orjson.dumps(pending.record))
    await first.producer.flush()  # on the broker, inside an open transaction

    # The next owner fences the first, sees the state of the first commit and replays.
    second = Owner(kafka_bootstrap, tag)
    state, checkpoint = await second.take_over()
    assert state.window_counts("p-flash", T0 - T0 % 60_000) == [60, 0, 0]
    replayed = state.apply(flash_sale(60, 41))
    assert [a.alert_id for a in replayed] == [a.alert_id for a in alerts]
    checkpoint.add_alerts(state, replayed, T0)
    await checkpoint.commit(state, input_tp, 2)

    # The first owner's late commit is refused: it was fenced.
    try:
        await first.producer.commit_transaction()
    except KafkaError:
        pass
    else:
        raise AssertionError("a fenced producer could still commit")
    finally:
        await first.producer.stop()

    # A third owner recovers the alert markers: replaying once more sends nothing.
    await second.producer.stop()
    third = Owner(kafka_bootstrap, tag)
    state, checkpoint = await third.take_over()
    assert state.apply(flash_sale(60, 41)) == []
    await third.producer.stop()

    sent = Counter(
        orjson.loads(value)["alert_id"]
        for *_, value, _ in await read_topic(kafka_bootstrap, f"{tag}-alerts")
    )
    assert sent == Counter(a.alert_id for a in alerts)
