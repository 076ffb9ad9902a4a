"""The ingest stage: input topic -> validation -> DLQ, Parquet, and per-product-partition batches.

Runs inside the Faust worker as a service with its own aiokafka consumer group
(`<APP_ID>-ingest`), because Faust's per-message machinery costs ~250 us per Kafka message:
reading single-event messages through a Faust stream caps the worker at a few thousand events
per second. Here records are handled a poll at a time, and the window agent receives one
Kafka message per few hundred events.

Input is read with isolation_level=read_committed: records of aborted or open producer
transactions never count. Batches go out at once through an idempotent producer; the window
agent recognises replayed ones by their sequence number. Dead letters cannot be recognised
downstream, so they travel with the offsets: once a source partition's events are durable in
Parquet and its batches acknowledged, one transaction (transactional_id
`<APP_ID>-ingest-<partition>`) sends its buffered dead letters and commits its offset with the
watermark state (agents.ingest_commit). A kill -9 leaves that transaction open; the restarted
worker's producer of the same id aborts it, and the replay sends those dead letters again.

A batch the client cannot decode (a codec without its library, a corrupt batch) stops the
reading of its partition only: nothing past it is committed, the other partitions go on, and
/health reports it (`undecodable_partitions`; `clickstream_ingest_undecodable` on /metrics)
until the partition is reassigned.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import ConsumerStoppedError
from aiokafka.structs import TopicPartition
from mode import Service

from agents.ingest_commit import DeadLetter, IngestDeliveryError, PartitionCommits
from agents.ingest_router import IngestRouter
from agents.ingest_undecodable import decode_fix, undecodable_batch
from agents.local_handoff import Handoffs
from agents.stall_watchdog import watch_stage
from agents.window_stage import WindowStage
from app import metrics
from app.commit_state import decode_commit_state, encode_commit_state
from app.errors import StorageError
from app.events import Event, EventParser, Rejected
from app.faust_app import ClickstreamApp
from app.kafka.colocation import colocated_assignor
from app.kafka.topics import topic_partitions
from app.product_batches import ProductBatch
from app.storage.arrow import events_table
from app.storage.partition_files import PartitionedParquetWriter
from app.storage.schema import EVENTS_DIR, EVENTS_SCHEMA

logger = logging.getLogger(__name__)

MAX_ROWS_PER_MESSAGE = 4000
MAX_POLL_RECORDS = 5000
MAX_REQUEST_BYTES = 4 << 20


@dataclass
class SinkBuffer:
    """What one source partition read since its last commit: events waiting for their Parquet
    file, dead letters waiting for their transaction, and the offset to commit."""

    first_offset: int | None = None
    last_offset: int = -1
    # The consumer's position: past transaction markers and aborted records no poll returns.
    next_offset: int | None = None
    events: list[Event] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    opened_at: float = field(default_factory=time.monotonic)

    def due(self, max_events: int, max_age_s: float) -> bool:
        if self.next_offset is None:
            return False
        return len(self.events) >= max_events or time.monotonic() - self.opened_at >= max_age_s

    def then(self, later: SinkBuffer) -> SinkBuffer:
        """This buffer (a flush that failed) followed by what was read while it ran."""
        return SinkBuffer(
            self.first_offset if self.first_offset is not None else later.first_offset,
            max(self.last_offset, later.last_offset),
            later.next_offset if later.next_offset is not None else self.next_offset,
            self.events + later.events, self.dead_letters + later.dead_letters, self.opened_at,
        )  # fmt: skip


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: IngestService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.service.flush(set(revoked), force=True)
        for tp in revoked:
            self.service.buffers.pop(tp, None)
            self.service.resumed.discard(tp)
            self.service.committed.pop(tp, None)
            self.service.read_to.pop(tp, None)
            self.service.undecodable.set(0, str(tp.partition))
            self.service.undecodable_at.discard(tp.partition)
            self.service.lag.remove(str(tp.partition))  # another process reports it now
        await self.service.commits.stop(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        # aiokafka may hand out records of a new assignment before this coroutine is done,
        # so the state a partition needs is restored by the consuming task, before its first
        # records are routed (IngestService.resume).
        for tp in assigned:
            self.service.resumed.discard(tp)


class IngestService(Service):
    """Consumes KAFKA_TOPIC in polls and feeds the window agent, the DLQ and the Parquet sink."""

    running: ClassVar[IngestService | None] = None  # the worker's one instance, while started

    def __init__(self, app: ClickstreamApp, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.app = app
        s = self.settings = app.settings
        self.group_id = s.ingest_group
        self.router = IngestRouter(
            EventParser(s.max_event_bytes, s.max_clock_skew),
            s.window_spec,
            s.allowed_lateness * 1000,
            s.partitions,
        )
        self.writer = PartitionedParquetWriter(
            s.data_dir / EVENTS_DIR, s.kafka_topic, EVENTS_SCHEMA, "event_time"
        )
        self.buffers: dict[TopicPartition, SinkBuffer] = {}
        self.durable_end: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}  # the group's offset, -1 for none
        self.resumed: set[TopicPartition] = set()
        self.read_to: dict[TopicPartition, int] = {}  # positions after the last handled poll
        self._logged_reasons: set[str] = set()
        self._pending: list[asyncio.Future[object]] = []
        self.handoffs = Handoffs()  # batches handed to this process's window stage
        self._send_lock = asyncio.Lock()  # keeps each target's batches in order
        self._flush_lock = asyncio.Lock()  # the revoke listener flushes from another task
        self._flush_task: asyncio.Task[None] | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.commits = PartitionCommits(
            s.kafka_bootstrap_servers, s.app_id, self.group_id, s.dlq_topic, MAX_REQUEST_BYTES
        )
        self.admin: AIOKafkaAdminClient | None = None
        self.storage_error: str | None = None
        self._storage_backoff = 1.0
        self.sink_failing_gauge = metrics.SINK_FAILING
        self.lag = metrics.INGEST_LAG
        self.undecodable = metrics.INGEST_UNDECODABLE
        self.undecodable_at: set[int] = set()  # input partitions stopped at such a batch

    def sink_failing(self) -> bool:
        """Parquet writes fail and input reading is paused until they succeed."""
        return self.storage_error is not None

    def undecodable_partitions(self) -> list[int]:
        """Input partitions whose reading is stopped at a batch this worker cannot decode,
        in ascending order."""
        return sorted(self.undecodable_at)

    async def on_start(self) -> None:
        # Each poll allocates thousands of short-lived lists; with the default thresholds the
        # cyclic GC ran full collections over the worker's whole heap many times a second.
        gc.freeze()
        gc.set_threshold(100_000, 50, 100)
        s = self.settings
        servers = s.kafka_bootstrap_servers
        url = str(self.app.conf.canonical_url)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=servers, acks="all", enable_idempotence=True,
            linger_ms=5, max_batch_size=1 << 20, max_request_size=MAX_REQUEST_BYTES,
        )  # fmt: skip
        self.admin = AIOKafkaAdminClient(bootstrap_servers=servers)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=servers, group_id=self.group_id,
            client_id=f"ingest@{url}",
            enable_auto_commit=False, auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=MAX_POLL_RECORDS, max_partition_fetch_bytes=4 << 20,
            # A backlog fills 256 KB at once; live traffic (600 KB/s at 5,000 events/s) never
            # does, so every fetch waits the whole fetch_max_wait_ms, and every alert with it:
            # 20 ms still gathers a hundred events per poll.
            fetch_min_bytes=256 << 10, fetch_max_wait_ms=20,
            metadata_max_age_ms=30_000,  # notice added input partitions within 30 s
            partition_assignment_strategy=(colocated_assignor(url),),
        )  # fmt: skip
        await self.producer.start()
        await self.admin.start()
        await self.consumer.start()
        self.consumer.subscribe([s.kafka_topic], listener=_Rebalance(self))
        consumer = self.consumer
        # A partition set aside at an undecodable batch is stalled by design, and reported: a
        # restart would only stop at the same batch again.
        watch_stage(
            "ingest", lambda: {tp.partition for tp in consumer.assignment() - consumer.paused()}
        )
        IngestService.running = self
        logger.info("ingest: consuming %s as group %s", s.kafka_topic, self.group_id)

    async def on_stop(self) -> None:
        if IngestService.running is self:
            IngestService.running = None
        # Buffers are not flushed here: what was not committed is replayed exactly on restart.
        if self._flush_task is not None:
            self._flush_task.cancel()
            with contextlib.suppress(BaseException):
                await self._flush_task
        if self.consumer is not None:
            await self.consumer.stop()
        await self.commits.stop(set(self.commits.producers))
        if self.producer is not None:
            await self.producer.stop()
        if self.admin is not None:
            await self.admin.close()

    @Service.task
    async def _consume(self) -> None:
        assert self.consumer is not None
        while not self.should_stop:
            if self.storage_error is not None:
                # Stop reading until Parquet writes work again: nothing is committed meanwhile.
                await asyncio.sleep(self._storage_backoff)
                self._storage_backoff = min(self._storage_backoff * 2, 30.0)
                await self.flush(set(self.buffers), force=True)
                continue
            try:
                polled = await self.consumer.getmany(timeout_ms=500, max_records=MAX_POLL_RECORDS)
            except ConsumerStoppedError:
                return  # on_stop stopped the consumer under this poll: a clean stop
            except Exception as exc:
                # Decoding raises aiokafka's errors (codec library missing, CRC, malformed
                # records) and the decompressors' own (cramjam, zlib, gzip): any of them, but
                # only when raised while decoding a batch.
                batch = undecodable_batch(exc)
                if batch is None:
                    raise
                await self._stop_at_undecodable(exc, *batch)
                continue
            now_ms = int(time.time() * 1000)
            # Also partitions without records: their position may move past aborted ones.
            fresh = (set(polled) | self.consumer.assignment()) - self.resumed
            if fresh:
                await self.resume(fresh)
            for tp, records in polled.items():
                await self._handle(tp, records, now_ms)
            await self._note_positions()
            self._flush_behind()

    def _flush_behind(self) -> None:
        """Start a flush of the due buffers unless one runs: Parquet writes and commits go on
        while reading goes on, so alerts do not wait for a flush (a failed flush raises here,
        on the next poll, and stops the worker as it did inline)."""
        task = self._flush_task
        if task is not None:
            if not task.done():
                return
            task.result()
        if any(
            buf.due(self.settings.sink_flush_events, self.settings.sink_flush_seconds)
            for tp, buf in self.buffers.items() if tp in self.resumed
        ):  # fmt: skip
            self._flush_task = asyncio.create_task(self.flush(set(self.buffers), force=False))

    async def _handle(self, tp: TopicPartition, records: list[object], now_ms: int) -> None:
        assert self.producer is not None
        committed = self.committed.get(tp, -1)
        if records[0].offset < committed:  # type: ignore[attr-defined]
            # Fetched before a killed predecessor's last transaction had settled (see resume):
            # these offsets are committed, together with their dead letters.
            records = [r for r in records if r.offset >= committed]  # type: ignore[attr-defined]
            if not records:
                return
        routed = self.router.route(tp.topic, tp.partition, records, now_ms)  # type: ignore[arg-type]
        highwater = self.consumer.highwater(tp) if self.consumer is not None else None
        # A backlog is more than a poll's worth waiting: live traffic at 20,000 events/s
        # always has a few records past the poll, and must not wait for a folded checkpoint.
        waiting = highwater - records[-1].offset - 1 if highwater is not None else 0  # type: ignore[attr-defined]
        behind = waiting > MAX_POLL_RECORDS
        for target, batch in routed.batches.items():
            await self._deliver(target, batch, behind)
        if tp not in self.resumed:  # revoked while sending: the new owner replays these
            return
        for event_type, count in Counter(e.event_type for e in routed.events).items():
            metrics.EVENTS_IN.inc(count, event_type)
        if routed.late:
            metrics.LATE_EVENTS.inc(routed.late)
        buffer = self.buffers.setdefault(tp, SinkBuffer())
        buffer.dead_letters += [
            self._dead_letter(tp, r, rejected) for r, rejected in routed.rejected
        ]
        if buffer.first_offset is None:
            buffer.first_offset = records[0].offset  # type: ignore[attr-defined]
        buffer.last_offset = records[-1].offset  # type: ignore[attr-defined]
        durable = self.durable_end.get(tp, -1)
        if durable < records[0].offset:  # type: ignore[attr-defined]
            buffer.events.extend(routed.events)
        else:  # a replay of offsets already in Parquet
            buffer.events.extend(e for e in routed.events if e.kafka_offset > durable)

    async def _deliver(self, target: int, batch: ProductBatch, behind: bool) -> None:
        """Hand the batch to this process's window stage when it owns `target`, else send it
        through PRODUCT_EVENTS_TOPIC (agents.local_handoff). `behind`: more input waits."""
        async with self._send_lock:
            stage = WindowStage.running
            while True:
                offered = stage.inbox(target) if stage is not None else None
                inbox = self.handoffs.inbox(target, offered)
                if inbox is None or not inbox.full():
                    break
                await inbox.room()
            sends = self.handoffs.plan(target, batch, offered, behind)
            if not sends or sends[-1] is not batch:
                metrics.HANDED_ROWS.inc(len(batch.rows), "memory")
            for send in sends:
                await self._send(target, send)

    async def _resend_lost(self, target: int) -> None:
        """Send through Kafka, in order, the handoffs to `target` whose inbox closed before a
        checkpoint held them."""
        for batch in self.handoffs.lost(target):
            await self._send(target, batch)

    async def _send(self, target: int, batch: ProductBatch) -> None:
        assert self.producer is not None
        if batch.rows:
            metrics.HANDED_ROWS.inc(len(batch.rows), "kafka")
        topic = self.settings.product_events_topic
        for chunk in batch.chunks(MAX_ROWS_PER_MESSAGE):
            self._pending.append(await self.producer.send(topic, chunk.encode(), partition=target))

    def _dead_letter(self, tp: TopicPartition, record: object, rejected: Rejected) -> DeadLetter:
        headers = list(getattr(record, "headers", ()) or ())
        headers += [
            ("x-dlq-reason", rejected.reason.encode()),
            ("x-dlq-detail", rejected.detail[:500].encode()),
            ("x-dlq-source-topic", tp.topic.encode()),
            ("x-dlq-source-partition", str(tp.partition).encode()),
            ("x-dlq-source-offset", str(record.offset).encode()),  # type: ignore[attr-defined]
        ]
        if rejected.index is not None:
            headers.append(("x-dlq-element-index", str(rejected.index).encode()))
        if rejected.reason not in self._logged_reasons:
            self._logged_reasons.add(rejected.reason)
            logger.warning(
                "dead-lettered %s:%s@%s (%s: %s); further %s rejections are counted, not logged",
                tp.topic, tp.partition, record.offset, rejected.reason,  # type: ignore[attr-defined]
                rejected.detail, rejected.reason,
            )  # fmt: skip
        return DeadLetter(rejected.reason, rejected.raw, getattr(record, "key", None), headers)

    async def _note_positions(self) -> None:
        """Take each partition's position as the offset to commit, and as the base of its lag.

        With transactional input the position moves past commit markers and aborted records
        that no poll returns: committing the last record's offset + 1 instead would leave a
        lag of one marker forever.
        """
        assert self.consumer is not None
        for tp in self.consumer.assignment() & self.resumed:
            highwater = self.consumer.highwater(tp)
            if highwater is None:  # nothing fetched yet: the position may still be unknown
                continue
            position = await self.consumer.position(tp)
            self.read_to[tp] = position
            self.lag.set(max(highwater - position, 0), str(tp.partition))
            if position > self.committed.get(tp, -1):
                self.buffers.setdefault(tp, SinkBuffer()).next_offset = position

    async def _stop_at_undecodable(
        self, exc: BaseException, tp: TopicPartition, offset: int, next_offset: int
    ) -> None:
        """Pause a partition at a batch this worker cannot decode; the others read on.

        The failed poll may have taken records of other partitions with it (aiokafka moved
        their positions before raising): they are read again from where handling stopped.
        """
        assert self.consumer is not None
        consumer = self.consumer
        consumer.pause(tp)
        self.undecodable.set(1, str(tp.partition))
        self.undecodable_at.add(tp.partition)
        logger.error(
            "ingest: cannot decode the batch at %s:%s offset %s (%s: %s); reading of partition "
            "%s stopped there and nothing past it is committed, the other partitions go on. "
            "To fix: %s",
            tp.topic, tp.partition, offset, type(exc).__name__, exc, tp.partition,
            decode_fix(exc, self.group_id, tp, next_offset),
        )  # fmt: skip
        for other in consumer.assignment() - {tp}:
            if other in self.read_to:
                consumer.seek(other, self.read_to[other])
                continue
            committed = await consumer.committed(other)  # none of it handled yet
            if committed is not None and committed >= 0:
                consumer.seek(other, committed)
            else:
                await consumer.seek_to_beginning(other)

    async def flush(self, tps: set[TopicPartition], force: bool) -> None:
        """Make due buffers durable in Parquet, then commit each in its partition's transaction."""
        s = self.settings
        async with self._flush_lock:
            due = {
                tp: buf
                for tp, buf in self.buffers.items()
                if tp in tps and tp in self.resumed and buf.next_offset is not None
                and (force or buf.due(s.sink_flush_events, s.sink_flush_seconds))
            }  # fmt: skip
            if not due:
                return
            # Taken out before the first await: what is read meanwhile goes to new buffers,
            # and each offset's watermark state is the one of the moment it was read to.
            states: dict[TopicPartition, str] = {}
            for tp in due:
                del self.buffers[tp]
                states[tp] = encode_commit_state(self.router.max_seen.get(tp.partition))
            try:
                await self._await_sends()  # the batches of every offset about to be committed
                durable = [tp for tp, buf in due.items() if await self._write_parquet(tp, buf)]
                if self.storage_error is not None and len(durable) == len(due):
                    logger.warning("ingest: Parquet writes work again; reading resumes")
                    self.storage_error = None
                    self._storage_backoff = 1.0
                    self.sink_failing_gauge.set(0)
                for tp in durable:
                    if await self._commit(tp, due[tp], states[tp]):
                        del due[tp]
            finally:
                for tp, buf in due.items():  # not committed: flushed again with what follows
                    if tp in self.resumed:
                        later = self.buffers.get(tp)
                        self.buffers[tp] = buf if later is None else buf.then(later)

    async def _commit(self, tp: TopicPartition, buf: SinkBuffer, state: str) -> bool:
        """Commit the buffer's dead letters and next offset with the watermark (ingest_commit)."""
        assert buf.next_offset is not None
        if not await self.commits.commit(tp, buf.next_offset, state, buf.dead_letters):
            return False  # aborted: the buffer goes back for the next flush to send again
        self.committed[tp] = buf.next_offset
        return True

    async def _write_parquet(self, tp: TopicPartition, buf: SinkBuffer) -> bool:
        """Store the buffer's events durably; False, and reading paused, when the disk refuses."""
        if not buf.events:
            return True
        first = buf.first_offset
        assert first is not None
        events, writer = buf.events, self.writer
        try:
            # The Arrow table is built in the thread too: the event loop (and with it the
            # window stage) keeps running meanwhile.
            await asyncio.to_thread(
                lambda: writer.write(tp.partition, first, buf.last_offset, events_table(events))
            )
        except StorageError as exc:
            self._storage_failed(exc)
            return False
        self.durable_end[tp] = buf.last_offset
        metrics.PARQUET_LAST_WRITE.set(round(time.time(), 3))
        buf.events = []
        return True

    def _storage_failed(self, exc: StorageError) -> None:
        """Report a failed Parquet write; reading pauses and nothing is committed until it works."""
        if self.storage_error is None:
            logger.error("ingest: %s; reading paused, no offsets committed, retrying", exc)
        else:
            logger.error("ingest: Parquet write still failing: %s", exc)
        self.storage_error = str(exc)
        self.sink_failing_gauge.set(1)

    async def _await_sends(self) -> None:
        """Wait for every batch handed or sent so far; a send the producer gave up on stops the
        worker."""
        assert self.producer is not None
        # Batches handed to the window stage count once a checkpoint holds them; those whose
        # inbox closed first go through Kafka now, like any other send.
        handed = self.handoffs.pending()
        if handed:
            await asyncio.wait(handed)
        async with self._send_lock:
            for target in self.handoffs.targets():
                await self._resend_lost(target)
        # Taken first: sends made while the flush waits belong to later offsets and the next
        # flush; the producer's flush delivers these (and those) before it returns.
        pending, self._pending = self._pending, []
        await self.producer.flush()
        # Every error read, the first raised: one unread would be logged again at exit.
        errors = [e for e in (f.exception() for f in pending if f.done()) if e is not None]
        if errors:
            msg = f"a message derived from the input could not be delivered: {errors[0]}"
            raise IngestDeliveryError(msg) from errors[0]

    async def resume(self, assigned: set[TopicPartition]) -> None:
        """Before a newly assigned partition's first records: finish interrupted Parquet
        writes and restore its committed offset and watermark."""
        assert self.admin is not None
        # Starting the committers first settles a killed predecessor's open transactions, so
        # the offsets read next are final (the consumer may have fetched older ones).
        await asyncio.gather(*(self.commits.producer(tp) for tp in assigned))
        committed = await self.admin.list_consumer_group_offsets(
            self.group_id, partitions=list(assigned)
        )
        # The window agent holds state back until every source partition has reported.
        servers, topic = self.settings.kafka_bootstrap_servers, self.settings.kafka_topic
        self.router.source_partitions = max(len(await topic_partitions(servers, topic)), 1)
        for tp in assigned:
            self.handoffs.source_assigned(tp.partition)
            self.durable_end[tp] = await asyncio.to_thread(self.writer.recover, tp.partition)
            meta = committed.get(tp)
            self.committed[tp] = meta.offset if meta is not None else -1
            self.router.max_seen.pop(tp.partition, None)
            seen = decode_commit_state(meta.metadata if meta is not None else None)
            if seen is not None:
                self.router.max_seen[tp.partition] = seen
            logger.info(
                "ingest: %s assigned, parquet durable through offset %s, committed offset %s, "
                "max event time %s, %s source partitions",
                tp, self.durable_end[tp], self.committed[tp],
                self.router.max_seen.get(tp.partition), self.router.source_partitions,
            )  # fmt: skip
            self.resumed.add(tp)


def register(app: ClickstreamApp) -> None:
    """Start an ingest stage with `app`."""
    app.add_service(IngestService(app))
