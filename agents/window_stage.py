"""The window stage: product batches -> exact hopping-window counts -> flash-sale alerts.

An aiokafka consumer group (`<APP_ID>-windows`) inside the worker, like the ingest stage, not
a Faust agent. Faust's consumer stalled here, silently, after kill -9 restarts and after plain
rebalances between two live workers (one partition assigned but never fetched; its recovery
hanging behind a full producer buffer), and its commit did not wait for the changelog; its
tracker shows the same families over years (faust-streaming #175, #640, #74, #88). Rather than
patch that machinery, the stage uses the mechanism Kafka itself offers for this job:
transactions (see `agents.window_checkpoint`).

Each poll: every partition's records (and the batches the ingest stage of this process handed
over, `agents.local_handoff`) are applied to its `PartitionWindows` and its alerts grouped into
incidents (`agents.incidents`), then each touched partition commits one checkpoint
(`agents.window_loop`). A partition newly assigned is first recovered from its changelog
(`agents.window_recovery`). A revoked partition is dropped only between polls, so a
checkpoint is never cut in half. This module holds the service: its consumers, the group's
rebalances, recovery of what was assigned, and what the read side and ingest ask of it.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import ConsumerStoppedError, KafkaError
from aiokafka.structs import TopicPartition
from mode import Service

from agents.local_handoff import Inbox
from agents.stall_watchdog import watch_stage
from agents.window_loop import poll, process
from agents.window_partition import OwnedPartition
from agents.window_recovery import changelog_topic, fence, recover
from app.faust_app import ClickstreamApp
from app.kafka.colocation import colocated_assignor
from app.kafka.topics import ensure_topic
from app.kafka.transactions import quiet_settling_retries
from app.windowing.partition_windows import PartitionWindows

logger = logging.getLogger(__name__)

RETRY_FIRST_S, RETRY_MAX_S = 1.0, 10.0  # back-off while the broker is away
MEMBER_PREFIX = "windows@"  # client id = prefix + this worker's web URL, for request routing


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, stage: WindowStage) -> None:
        self.stage = stage

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.stage.rebalancing = True
        await self.stage.release({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        # Recovery runs in the consuming task, before the partition's first records.
        self.stage.rebalancing = False
        self.stage.joined = True


class WindowStage(Service):
    """Consumes PRODUCT_EVENTS_TOPIC and keeps every window of the products it owns."""

    running: WindowStage | None = None  # the worker's one instance, once started

    def __init__(self, app: ClickstreamApp, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.app = app
        s = self.settings = app.settings
        self.group_id = s.windows_group
        self.spec = s.window_spec
        self.owned: dict[int, OwnedPartition] = {}
        self.lock = asyncio.Lock()  # one poll's apply + checkpoints, or one recovery/release
        self.recovering = False
        self.joined = False  # until the group's first assignment: not ready to answer
        self.rebalancing = False
        self.consumer: AIOKafkaConsumer | None = None
        self.restorer: AIOKafkaConsumer | None = None
        self.wake = asyncio.Event()  # a handoff is ready to apply: cut the poll short

    async def on_start(self) -> None:
        quiet_settling_retries()
        s = self.settings
        servers = s.kafka_bootstrap_servers
        await ensure_topic(servers, s.product_events_topic, s.partitions, "PARTITIONS")
        await ensure_topic(servers, s.alerts_topic, s.partitions)
        await ensure_topic(servers, s.incidents_topic, s.partitions)
        await ensure_topic(servers, changelog_topic(s), s.partitions, "PARTITIONS", compacted=True)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=servers, group_id=self.group_id,
            client_id=f"{MEMBER_PREFIX}{self.app.conf.canonical_url}",
            enable_auto_commit=False, auto_offset_reset="earliest",
            isolation_level="read_committed", max_partition_fetch_bytes=4 << 20,
            fetch_max_wait_ms=100, metadata_max_age_ms=30_000,
            partition_assignment_strategy=(colocated_assignor(str(self.app.conf.canonical_url)),),
        )  # fmt: skip
        self.restorer = AIOKafkaConsumer(
            bootstrap_servers=servers, enable_auto_commit=False,
            isolation_level="read_committed", max_partition_fetch_bytes=4 << 20,
            fetch_max_wait_ms=20,  # at a changelog's end, answer at once
        )  # fmt: skip
        await self.consumer.start()
        await self.restorer.start()
        WindowStage.running = self
        watch_stage("windows", self.assigned)
        self.consumer.subscribe([s.product_events_topic], listener=_Rebalance(self))
        logger.info("windows: consuming %s as group %s", s.product_events_topic, self.group_id)

    async def on_stop(self) -> None:
        # Nothing to flush: what was applied since the last checkpoint is replayed from it.
        if self.consumer is not None:
            await self.consumer.stop()
        async with self.lock:
            await self._close(set(self.owned))
        if self.restorer is not None:
            await self.restorer.stop()

    def assigned(self) -> set[int]:
        """Worker partitions the group assigned to this worker (recovered or not)."""
        if self.consumer is None:
            return set()
        topic = self.settings.product_events_topic
        return {tp.partition for tp in self.consumer.assignment() if tp.topic == topic}

    def serving(self) -> dict[int, PartitionWindows]:
        """State of each partition this worker can answer for now: assigned and recovered."""
        if self.recovering:
            return {}
        return {p: self.owned[p].state for p in sorted(self.assigned()) if p in self.owned}

    def inbox(self, partition: int) -> Inbox | None:
        """Where this process's ingest stage may hand batches for `partition`: None unless
        the partition is assigned here, recovered and not being given up."""
        owned = self.owned.get(partition)
        if owned is None or owned.inbox.closed or self.rebalancing or self.consumer is None:
            return None
        topic = self.settings.product_events_topic
        if TopicPartition(topic, partition) not in self.consumer.assignment():
            return None
        return owned.inbox

    def settled(self) -> bool:
        """In the group, and every assigned partition recovered (no rebalance or recovery)."""
        if self.consumer is None or not self.joined or self.rebalancing or self.recovering:
            return False
        return self.assigned() == set(self.owned)

    @Service.task
    async def _consume(self) -> None:
        assert self.consumer is not None
        consumer = self.consumer
        backoff = RETRY_FIRST_S
        while not self.should_stop:
            try:
                await self._recover_assigned()
            except (KafkaError, ConsumerStoppedError) as exc:
                if self.should_stop:
                    return  # stopped mid-recovery: nothing of it was committed
                # The broker is away; what was committed is safe.
                logger.warning("windows: recovery failed (%s); retrying in %.0f s", exc, backoff)
                await self.sleep(backoff)
                backoff = min(backoff * 2, RETRY_MAX_S)
                continue
            backoff = RETRY_FIRST_S
            try:
                polled = await poll(self, consumer)
            except ConsumerStoppedError:
                return  # on_stop stopped the consumer under this poll: a clean stop
            if not polled and not any(
                o.inbox.has_ready() or o.unsaved for o in self.owned.values()
            ):
                continue
            try:
                await process(self, polled)
            except Exception as exc:
                if self.should_stop:
                    return  # stopped mid-checkpoint: not committed, replayed on the next start
                # Not Kafka (those reset one partition, `window_loop.reset`): a batch that
                # cannot be applied. Stop rather than skip it; nothing of it was committed.
                logger.exception("windows: applying a batch failed; stopping the worker")
                await self.app.crash(exc)
                return

    async def _recover_assigned(self) -> None:
        assert self.consumer is not None
        missing = [tp for tp in self.consumer.assignment() if tp.partition not in self.owned]
        if not missing:
            return
        async with self.lock:
            self.recovering = True
            try:
                todo = [
                    tp for tp in missing
                    if tp in self.consumer.assignment() and tp.partition not in self.owned
                ]  # fmt: skip
                # Fencing takes the transaction coordinator a second or more per producer:
                # all at once, so the partitions are ready together (and the ingest stage can
                # hand them batches sooner).
                started = await asyncio.gather(
                    *(fence(self.settings, tp.partition) for tp in todo), return_exceptions=True
                )
                producers = [p for p in started if isinstance(p, AIOKafkaProducer)]
                failed = [e for e in started if isinstance(e, BaseException)]
                if failed:
                    await asyncio.gather(*(p.stop() for p in producers), return_exceptions=True)
                    raise failed[0]
                sent_ids: list[set[str]] = []  # read once, for every partition starting afresh
                for index, (tp, producer) in enumerate(zip(todo, producers, strict=True)):
                    try:
                        assert self.restorer is not None
                        owned = await recover(
                            self.settings, self.group_id, self.restorer, self.consumer, tp,
                            producer, self.wake, sent_ids,
                        )  # fmt: skip
                        self.owned[tp.partition] = owned
                    except BaseException:
                        await asyncio.gather(
                            *(p.stop() for p in producers[index:]), return_exceptions=True
                        )
                        raise
            finally:
                self.recovering = False

    async def release(self, partitions: set[int]) -> None:
        """Give up partitions (revoked): between polls, so no checkpoint is cut in half."""
        async with self.lock:
            await self._close(partitions)

    async def _close(self, partitions: set[int]) -> None:
        for partition in partitions:
            owned = self.owned.pop(partition, None)
            if owned is not None:
                await owned.close()


def register(app: ClickstreamApp) -> None:
    """Start a window stage with the worker `app`."""
    app.add_service(WindowStage(app))
