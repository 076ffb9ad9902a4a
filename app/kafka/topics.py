"""Small questions about topics that aiokafka's consumer answers only for subscribed ones."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import TopicPartition

from app.errors import SettingsMismatchError


async def topic_partitions(bootstrap: str, topic: str) -> list[int]:
    """Partition numbers of `topic`, or [] when it does not exist (yet)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        # Describing a missing topic would make a broker with auto-create create it.
        if topic not in await admin.list_topics():
            return []
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"] != 0:
        return []
    return sorted(p["partition"] for p in described["partitions"])


async def ensure_topic(
    bootstrap: str,
    topic: str,
    partitions: int,
    setting: str | None = None,
    *,
    compacted: bool = False,
) -> None:
    """Create `topic` with `partitions` partitions when missing (`compacted`: keep the newest
    record per key, as a changelog needs).

    With `setting`, an existing topic must also have exactly that many (it names the variable
    to fix); without, any existing partition count is fine.
    """
    existing = await topic_partitions(bootstrap, topic)
    if not existing:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            configs = {"cleanup.policy": "compact"} if compacted else None
            await admin.create_topics([NewTopic(topic, partitions, 1, topic_configs=configs)])
        except TopicAlreadyExistsError:
            existing = await topic_partitions(bootstrap, topic)
        finally:
            await admin.close()
    if setting is not None and existing and len(existing) != partitions:
        msg = (
            f"topic {topic} has {len(existing)} partitions but {setting}={partitions}: "
            f"set {setting}={len(existing)}, or delete the topic and the worker state to rebuild"
        )
        raise SettingsMismatchError(msg)


@dataclass
class TopicTail:
    """A consumer outside any group, positioned `per_partition` records before each end."""

    consumer: AIOKafkaConsumer
    starts: dict[TopicPartition, int]
    ends: dict[TopicPartition, int]

    def unread(self) -> set[TopicPartition]:
        """Partitions that hold records to read."""
        return {tp for tp, end in self.ends.items() if end > self.starts[tp]}

    async def at_end(self, tp: TopicPartition) -> bool:
        """Whether `tp` is read up to where it ended when the tail opened.

        The position, not the last record's offset + 1: a transactional topic ends in commit
        or abort markers (and maybe aborted records) that no poll returns.
        """
        return bool(await self.consumer.position(tp) >= self.ends[tp])


@contextlib.asynccontextmanager
async def topic_tail(
    bootstrap: str, topic: str, per_partition: int
) -> AsyncIterator[TopicTail | None]:
    """Read the newest committed records of every partition of `topic` (None when it does not
    exist). The ends are the last stable offsets: records of open transactions lie beyond."""
    tps = [TopicPartition(topic, p) for p in await topic_partitions(bootstrap, topic)]
    if not tps:
        yield None
        return
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(starts[tp], ends[tp] - per_partition))
        yield TopicTail(consumer, starts, ends)
    finally:
        await consumer.stop()
