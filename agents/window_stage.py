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
incidents (`agents.incidents`), then each touched partition commits one checkpoint (changelog
+ alerts + incident records + input offset, atomically): at once while it keeps up with its
input, at most every CHECKPOINT_BACKLOG_S while it has a backlog.
A partition newly assigned is first recovered from its changelog (`agents.window_changelog`).
A revoked partition is dropped only between polls, so a checkpoint is never cut in half. A
checkpoint that fails (the broker away, the producer fenced) resets only its partition: its
state is dropped, its input read again from the last commit, its state recovered again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import ConsumerStoppedError, KafkaError
from aiokafka.structs import TopicPartition
from mode import Service

from agents.alerts import recent_alert_ids
from agents.incidents import PartitionIncidents
from agents.local_handoff import Inbox
from agents.stall_watchdog import watch_stage
from agents.window_changelog import ALERTED, INCIDENTS, SLICES, ChangelogStore, read_changelog
from agents.window_checkpoint import PartitionCheckpoint
from app import metrics
from app.faust_app import get_app
from app.kafka.colocation import colocated_assignor
from app.kafka.topics import ensure_topic
from app.kafka.transactions import RETRY_BACKOFF_MS, quiet_settling_retries
from app.product_batches import ProductBatch, product_partition
from app.settings import Settings, get_settings
from app.windowing.partition_windows import PartitionWindows
from app.windowing.slices import state_key

logger = logging.getLogger(__name__)
app = get_app()

RETENTION_MS = 3600 * 1000
MAX_POLL_RECORDS = 200  # messages of up to 4,000 events each
RETRY_FIRST_S, RETRY_MAX_S = 1.0, 10.0  # back-off while the broker is away
# How long a partition with a backlog may go between checkpoints. One that keeps up with its
# input commits after every poll, so an alert waits for no timer; one with a backlog (more
# than a poll's worth waiting on its topic partition, or at the ingest poll handing it
# batches) folds its polls into one checkpoint per interval: a slice counted in many polls is
# written to the changelog once, and the broker settles one transaction instead of dozens.
CHECKPOINT_BACKLOG_S = 1.0
MEMBER_PREFIX = "windows@"  # client id = prefix + this worker's web URL, for request routing


def changelog_topic(settings: Settings) -> str:
    return f"{settings.app_id}-window-state-changelog"


@dataclass
class OwnedPartition:
    """A worker partition this worker has recovered and processes."""

    state: PartitionWindows
    incidents: PartitionIncidents
    checkpoint: PartitionCheckpoint
    committed: int  # the input offset its last checkpoint committed
    inbox: Inbox  # batches the ingest stage of this process hands over (agents.local_handoff)
    unsaved: bool = False  # batches applied since the last checkpoint
    saved_at: float = 0.0  # time.monotonic() of the last checkpoint (or of the recovery)


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


@app.service
class WindowStage(Service):
    """Consumes PRODUCT_EVENTS_TOPIC and keeps every window of the products it owns."""

    running: WindowStage | None = None  # the worker's one instance, once started

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        s = self.settings = get_settings()
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
            client_id=f"{MEMBER_PREFIX}{app.conf.canonical_url}",
            enable_auto_commit=False, auto_offset_reset="earliest",
            isolation_level="read_committed", max_partition_fetch_bytes=4 << 20,
            fetch_max_wait_ms=100, metadata_max_age_ms=30_000,
            partition_assignment_strategy=(colocated_assignor(str(app.conf.canonical_url)),),
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
                polled = await self._poll(consumer)
            except ConsumerStoppedError:
                return  # on_stop stopped the consumer under this poll: a clean stop
            if not polled and not any(
                o.inbox.has_ready() or o.unsaved for o in self.owned.values()
            ):
                continue
            try:
                await self._process(polled)
            except Exception as exc:
                if self.should_stop:
                    return  # stopped mid-checkpoint: not committed, replayed on the next start
                # Not Kafka (those reset one partition, below): a batch that cannot be
                # applied. Stop rather than skip it; nothing of it was committed.
                logger.exception("windows: applying a batch failed; stopping the worker")
                await app.crash(exc)
                return

    async def _poll(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, list[Any]]:
        """The next records, or none as soon as a handoff is ready to apply.

        A poll is cut short by cancelling it: aiokafka hands out records synchronously, after
        its last await, so a cancelled poll took none and moved no position.
        """
        polled: dict[TopicPartition, list[Any]]
        if any(owned.inbox.has_ready() for owned in self.owned.values()):
            polled = await consumer.getmany(timeout_ms=0, max_records=MAX_POLL_RECORDS)
            return polled
        self.wake.clear()
        getter = asyncio.ensure_future(
            consumer.getmany(timeout_ms=500, max_records=MAX_POLL_RECORDS)
        )
        waker = asyncio.ensure_future(self.wake.wait())
        try:
            await asyncio.wait({getter, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waker.cancel()
            if not getter.done():
                getter.cancel()
        try:
            polled = await getter
        except asyncio.CancelledError:
            if self.should_stop:
                raise
            return {}
        return polled

    async def _process(self, polled: dict[TopicPartition, list[Any]]) -> None:
        assert self.consumer is not None
        async with self.lock:
            assigned = self.consumer.assignment()
            touched: list[tuple[TopicPartition, OwnedPartition]] = []
            for tp, records in polled.items():
                if tp not in assigned:
                    continue  # revoked since the poll: the next owner replays them
                owned = self.owned.get(tp.partition)
                if owned is None:  # assigned during the poll: recovered first, then read again
                    self.consumer.seek(tp, records[0].offset)
                    continue
                self._apply(owned, [ProductBatch.decode(r.value) for r in records])
                touched.append((tp, owned))
            for partition, owned in self.owned.items():
                tp = TopicPartition(self.settings.product_events_topic, partition)
                if tp in assigned and owned.inbox.has_ready():
                    self._apply(owned, owned.inbox.take_ready())
                    if (tp, owned) not in touched:
                        touched.append((tp, owned))
            for _, owned in touched:
                owned.unsaved = True
            due: list[tuple[TopicPartition, OwnedPartition, int]] = []
            for partition, owned in self.owned.items():
                tp = TopicPartition(self.settings.product_events_topic, partition)
                if owned.unsaved and tp in assigned:
                    position = await self.consumer.position(tp)
                    if self._checkpoint_due(tp, owned, position, idle=not touched):
                        due.append((tp, owned, position))
            outcomes = await asyncio.gather(
                *(
                    owned.checkpoint.commit(owned.state, tp, position)
                    for tp, owned, position in due
                ),
                return_exceptions=True,
            )
            for (tp, owned, position), outcome in zip(due, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    await self._reset(tp, owned, outcome)
                else:
                    owned.committed, owned.unsaved = position, False
                    owned.saved_at = time.monotonic()
                    owned.inbox.committed()

    def _checkpoint_due(
        self, tp: TopicPartition, owned: OwnedPartition, position: int, idle: bool
    ) -> bool:
        """Now, unless the partition has a backlog (more than a poll's worth of input waiting,
        here or at the ingest poll that handed it batches) and checkpointed less than
        CHECKPOINT_BACKLOG_S ago. `idle`: nothing was applied this round (the poll came back
        empty): what is unsaved goes now."""
        assert self.consumer is not None
        highwater = self.consumer.highwater(tp)
        # More than a poll's worth waiting (a message or two past the poll is live traffic).
        waiting = highwater - position if highwater is not None else 0
        behind = owned.inbox.behind or waiting > MAX_POLL_RECORDS
        if idle or not behind:
            return True
        return time.monotonic() - owned.saved_at >= CHECKPOINT_BACKLOG_S

    async def _reset(self, tp: TopicPartition, owned: OwnedPartition, error: BaseException) -> None:
        """A checkpoint failed (broker away, producer fenced): none of it is visible. Drop the
        partition's state and read its input again from the last commit; the next loop
        recovers the state that commit left."""
        assert self.consumer is not None
        logger.warning(
            "windows: checkpoint of partition %s failed (%r); back to its last commit at "
            "offset %s",
            tp.partition, error, owned.committed,
        )  # fmt: skip
        self.owned.pop(tp.partition, None)
        owned.inbox.close()
        await self._stop_producer(owned)
        if tp in self.consumer.assignment():
            self.consumer.seek(tp, owned.committed)

    def _apply(self, owned: OwnedPartition, batches: list[ProductBatch]) -> None:
        state, incidents, checkpoint = owned.state, owned.incidents, owned.checkpoint
        skipped_before = state.duplicates_skipped
        for batch in batches:
            if batch.barrier is not None:
                owned.inbox.barrier_read(batch.source_partition, batch.barrier)
            alerts = state.apply(batch)
            if alerts:
                now_ms = int(time.time() * 1000)
                checkpoint.add_alerts(state, alerts, now_ms)
                checkpoint.add_incidents(incidents.add_alerts(alerts, state, now_ms))
        checkpoint.add_incidents(incidents.advance(state, int(time.time() * 1000)))
        metrics.DUPLICATES.inc(state.duplicates_skipped - skipped_before)

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
                    *(self._fence(tp) for tp in todo), return_exceptions=True
                )
                producers = [p for p in started if isinstance(p, AIOKafkaProducer)]
                failed = [e for e in started if isinstance(e, BaseException)]
                if failed:
                    await asyncio.gather(*(p.stop() for p in producers), return_exceptions=True)
                    raise failed[0]
                sent_ids: list[set[str]] = []  # read once, for every partition starting afresh
                for index, (tp, producer) in enumerate(zip(todo, producers, strict=True)):
                    try:
                        await self._recover(tp, producer, sent_ids)
                    except BaseException:
                        await asyncio.gather(
                            *(p.stop() for p in producers[index:]), return_exceptions=True
                        )
                        raise
            finally:
                self.recovering = False

    async def _fence(self, tp: TopicPartition) -> AIOKafkaProducer:
        """Partition `tp`'s transactional producer, started: its init_transactions aborts a
        killed owner's open transaction and fences a stalled one."""
        s = self.settings
        producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap_servers,
            transactional_id=f"{s.app_id}-windows-{tp.partition}",
            linger_ms=5, max_batch_size=1 << 20, max_request_size=4 << 20,
            retry_backoff_ms=RETRY_BACKOFF_MS,
        )  # fmt: skip
        await producer.start()
        return producer

    async def _recover(
        self, tp: TopicPartition, producer: AIOKafkaProducer, sent_ids: list[set[str]]
    ) -> OwnedPartition:
        """Take over partition `tp`, its producer started (fenced): rebuild its state."""
        assert self.restorer is not None
        s = self.settings
        stored = await read_changelog(
            self.restorer, TopicPartition(changelog_topic(s), tp.partition)
        )
        slices = ChangelogStore(SLICES, stored[SLICES])
        alerted = ChangelogStore(ALERTED, stored[ALERTED])
        open_incidents = ChangelogStore(INCIDENTS, stored[INCIDENTS])
        if not any(stored.values()):
            if not sent_ids:
                sent_ids.append(await recent_alert_ids(s.kafka_bootstrap_servers, s.alerts_topic))
            self._adopt_sent_alerts(tp.partition, alerted, sent_ids[0])
        state = PartitionWindows(
            self.spec, s.views_threshold, s.purchases_threshold, RETENTION_MS,
            slices, alerted,
            stored_slice_keys=slices.keys(), stored_alert_keys=alerted.keys(),
        )  # fmt: skip
        incidents = PartitionIncidents(
            self.spec, s.views_threshold, s.purchases_threshold, s.incident_quiet_ms,
            int(s.incident_update_seconds * 1000), open_incidents, open_incidents.keys(),
        )  # fmt: skip
        checkpoint = PartitionCheckpoint(
            tp.partition, producer, changelog_topic(s), s.alerts_topic, s.incidents_topic,
            self.group_id, (slices, alerted, open_incidents),
            console_windows=s.console_alerts == "windows",
        )  # fmt: skip
        committed = await self.consumer.position(tp) if self.consumer is not None else 0
        inbox = Inbox(tp.partition, self.wake)
        owned = OwnedPartition(
            state, incidents, checkpoint, committed, inbox, saved_at=time.monotonic()
        )
        self.owned[tp.partition] = owned
        return owned

    def _adopt_sent_alerts(self, partition: int, alerted: ChangelogStore, ids: set[str]) -> None:
        """A partition with no state at all (a new APP_ID, a lost changelog) replays its input
        from the start: the alerts already on ALERTS_TOPIC for its products are marked sent,
        so the replay does not send them twice. The markers go into the first checkpoint."""
        s = self.settings
        adopted = 0
        for alert_id in ids:
            product, _, start = alert_id.rpartition(":")
            if (
                product
                and start.isdigit()
                and (product_partition(product, s.partitions) == partition)
            ):
                alerted[state_key(product, int(start))] = b"1"
                adopted += 1
        if adopted:
            logger.info(
                "windows: partition %s starts afresh; %s sent alerts adopted", partition, adopted
            )

    async def release(self, partitions: set[int]) -> None:
        """Give up partitions (revoked): between polls, so no checkpoint is cut in half."""
        async with self.lock:
            await self._close(partitions)

    async def _close(self, partitions: set[int]) -> None:
        for partition in partitions:
            owned = self.owned.pop(partition, None)
            if owned is not None:
                owned.inbox.close()
                await self._stop_producer(owned)

    async def _stop_producer(self, owned: OwnedPartition) -> None:
        try:
            await asyncio.wait_for(owned.checkpoint.producer.stop(), RETRY_MAX_S)
        except (KafkaError, TimeoutError) as exc:  # its open transaction dies with the epoch
            logger.warning("windows: stopping a producer failed: %r", exc)
