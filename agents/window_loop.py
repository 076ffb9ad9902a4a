"""The window stage's round: poll, apply to each owned partition, checkpoint the touched ones.

Each touched partition commits one checkpoint (changelog + alerts + incident records + input
offset, atomically, `agents.window_checkpoint`; docs/design.md, "Delivery guarantees"): at
once while it keeps up with its input, at most every CHECKPOINT_BACKLOG_S while it has a
backlog. A checkpoint that fails (the broker away, the producer fenced) resets only its
partition: its state is dropped, its input read again from the last commit, its state
recovered again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from agents.window_partition import OwnedPartition
from app.product_batches import ProductBatch

if TYPE_CHECKING:
    from agents.window_stage import WindowStage

logger = logging.getLogger(__name__)

MAX_POLL_RECORDS = 200  # messages of up to 4,000 events each
# How long a partition with a backlog may go between checkpoints. One that keeps up with its
# input commits after every poll, so an alert waits for no timer; one with a backlog (more
# than a poll's worth waiting on its topic partition, or at the ingest poll handing it
# batches) folds its polls into one checkpoint per interval: a slice counted in many polls is
# written to the changelog once, and the broker settles one transaction instead of dozens.
CHECKPOINT_BACKLOG_S = 1.0

Polled = dict[TopicPartition, list[Any]]  # input partition -> its ConsumerRecords, in order


async def poll(stage: WindowStage, consumer: AIOKafkaConsumer) -> Polled:
    """The next records (at most MAX_POLL_RECORDS, waiting up to 500 ms), or none as soon as
    a handoff is ready to apply. Raises ConsumerStoppedError when the consumer is stopped
    under the poll, CancelledError when the stage stops.

    A poll is cut short by cancelling it: aiokafka hands out records synchronously, after
    its last await, so a cancelled poll took none and moved no position.
    """
    polled: Polled
    if any(owned.inbox.has_ready() for owned in stage.owned.values()):
        polled = await consumer.getmany(timeout_ms=0, max_records=MAX_POLL_RECORDS)
        return polled
    stage.wake.clear()
    getter = asyncio.ensure_future(consumer.getmany(timeout_ms=500, max_records=MAX_POLL_RECORDS))
    waker = asyncio.ensure_future(stage.wake.wait())
    try:
        await asyncio.wait({getter, waker}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waker.cancel()
        if not getter.done():
            getter.cancel()
    try:
        polled = await getter
    except asyncio.CancelledError:
        if stage.should_stop:
            raise
        return {}
    return polled


async def process(stage: WindowStage, polled: Polled) -> None:
    """Apply `polled` and the ready handoffs to their owned partitions, then commit the
    checkpoints due. A failed checkpoint resets its partition (`reset`); an error applying a
    batch (not Kafka's) is raised, nothing of it committed."""
    assert stage.consumer is not None
    async with stage.lock:
        assigned = stage.consumer.assignment()
        touched: list[tuple[TopicPartition, OwnedPartition]] = []
        for tp, records in polled.items():
            if tp not in assigned:
                continue  # revoked since the poll: the next owner replays them
            owned = stage.owned.get(tp.partition)
            if owned is None:  # assigned during the poll: recovered first, then read again
                stage.consumer.seek(tp, records[0].offset)
                continue
            owned.apply([ProductBatch.decode(r.value) for r in records])
            touched.append((tp, owned))
        for partition, owned in stage.owned.items():
            tp = TopicPartition(stage.settings.product_events_topic, partition)
            if tp in assigned and owned.inbox.has_ready():
                owned.apply(owned.inbox.take_ready())
                if (tp, owned) not in touched:
                    touched.append((tp, owned))
        for _, owned in touched:
            owned.unsaved = True
        due: list[tuple[TopicPartition, OwnedPartition, int]] = []
        for partition, owned in stage.owned.items():
            tp = TopicPartition(stage.settings.product_events_topic, partition)
            if owned.unsaved and tp in assigned:
                position = await stage.consumer.position(tp)
                if checkpoint_due(stage.consumer, tp, owned, position, idle=not touched):
                    due.append((tp, owned, position))
        outcomes = await asyncio.gather(
            *(owned.checkpoint.commit(owned.state, tp, position) for tp, owned, position in due),
            return_exceptions=True,
        )
        for (tp, owned, position), outcome in zip(due, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                await reset(stage, tp, owned, outcome)
            else:
                owned.committed, owned.unsaved = position, False
                owned.saved_at = time.monotonic()
                owned.inbox.committed()


def checkpoint_due(
    consumer: AIOKafkaConsumer, tp: TopicPartition, owned: OwnedPartition, position: int, idle: bool
) -> bool:
    """Now, unless the partition has a backlog (more than a poll's worth of input waiting,
    here or at the ingest poll that handed it batches) and checkpointed less than
    CHECKPOINT_BACKLOG_S ago. `position`: the input offset the checkpoint would commit.
    `idle`: nothing was applied this round (the poll came back empty): what is unsaved goes
    now."""
    highwater = consumer.highwater(tp)
    # More than a poll's worth waiting (a message or two past the poll is live traffic).
    waiting = highwater - position if highwater is not None else 0
    behind = owned.inbox.behind or waiting > MAX_POLL_RECORDS
    if idle or not behind:
        return True
    return time.monotonic() - owned.saved_at >= CHECKPOINT_BACKLOG_S


async def reset(
    stage: WindowStage, tp: TopicPartition, owned: OwnedPartition, error: BaseException
) -> None:
    """A checkpoint failed (broker away, producer fenced): none of it is visible. Drop the
    partition's state and read its input again from the last commit; the stage's next round
    recovers the state that commit left."""
    assert stage.consumer is not None
    logger.warning(
        "windows: checkpoint of partition %s failed (%r); back to its last commit at "
        "offset %s",
        tp.partition, error, owned.committed,
    )  # fmt: skip
    stage.owned.pop(tp.partition, None)
    await owned.close()
    if tp in stage.consumer.assignment():
        stage.consumer.seek(tp, owned.committed)
