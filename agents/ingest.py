"""The ingest stage: input topic -> validation -> DLQ, Parquet, and per-product-partition batches.

Runs inside the Faust worker as a service with its own aiokafka consumer group
(`<APP_ID>-ingest`), because Faust's per-message machinery costs ~250 us per Kafka message:
reading single-event messages through a Faust stream caps the worker at a few thousand events
per second. Here records are handled a poll at a time, and the window agent receives one
Kafka message per few hundred events.

Input is read with isolation_level=read_committed: records of aborted or open producer
transactions never count. Batches go out at once through an idempotent producer; the window
agent recognises replayed ones by their sequence number (agents.ingest_delivery). Dead letters
cannot be recognised downstream, so they travel with the offsets: once a source partition's
events are durable in Parquet and its batches acknowledged (agents.ingest_sink), one
transaction (transactional_id `<APP_ID>-ingest-<partition>`) sends its buffered dead letters
and commits its offset with the watermark state (agents.ingest_commit). A kill -9 leaves that
transaction open; the restarted worker's producer of the same id aborts it, and the replay
sends those dead letters again.

A batch the client cannot decode (a codec without its library, a corrupt batch) stops the
reading of its partition only: nothing past it is committed, the other partitions go on, and
/health reports it (`undecodable_partitions`; `clickstream_ingest_undecodable` on /metrics)
until the partition is reassigned (agents.ingest_assignment).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections import Counter
from typing import ClassVar

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import ConsumerStoppedError
from aiokafka.structs import TopicPartition
from mode import Service

from agents.ingest_assignment import SourceAssignment
from agents.ingest_commit import PartitionCommits
from agents.ingest_dead_letters import DeadLetters
from agents.ingest_delivery import BatchDelivery
from agents.ingest_router import IngestRouter
from agents.ingest_sink import EventSink
from agents.ingest_undecodable import set_aside, undecodable_batch
from agents.stall_watchdog import watch_stage
from app import metrics
from app.events import EventParser
from app.faust_app import ClickstreamApp
from app.kafka.colocation import colocated_assignor
from app.storage.partition_files import PartitionedParquetWriter
from app.storage.schema import EVENTS_DIR, EVENTS_SCHEMA

logger = logging.getLogger(__name__)

MAX_POLL_RECORDS = 5000
MAX_REQUEST_BYTES = 4 << 20


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
        self.resumed: set[TopicPartition] = set()
        self.read_to: dict[TopicPartition, int] = {}  # positions after the last handled poll
        self.dead_letters = DeadLetters()
        self.delivery = BatchDelivery(s.product_events_topic)
        self.commits = PartitionCommits(
            s.kafka_bootstrap_servers, s.app_id, self.group_id, s.dlq_topic, MAX_REQUEST_BYTES
        )
        router = self.router
        self.sink = EventSink(
            PartitionedParquetWriter(
                s.data_dir / EVENTS_DIR, s.kafka_topic, EVENTS_SCHEMA, "event_time"
            ),
            self.commits, self.resumed, self.delivery.await_sends,
            lambda partition: router.max_seen.get(partition),
            s.sink_flush_events, s.sink_flush_seconds,
        )  # fmt: skip
        self.assignment = SourceAssignment(self)
        self._flush_task: asyncio.Task[None] | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.admin: AIOKafkaAdminClient | None = None
        self.lag = metrics.INGEST_LAG
        self.undecodable = metrics.INGEST_UNDECODABLE
        self.undecodable_at: set[int] = set()  # input partitions stopped at such a batch

    def sink_failing(self) -> bool:
        """Parquet writes fail and input reading is paused until they succeed."""
        return self.sink.storage_error is not None

    def undecodable_partitions(self) -> list[int]:
        """Input partitions whose reading is stopped at a batch this worker cannot decode,
        in ascending order."""
        return sorted(self.undecodable_at)

    def watched_partitions(self) -> set[int]:
        """The input partitions the stall watchdog may restart this worker for.

        A partition set aside at an undecodable batch, and every partition while Parquet
        writes fail, is stalled by design and reported on /health: a restart would only stop
        at the same place again, and would answer 200 until the first write failed anew.
        """
        consumer = self.consumer
        if consumer is None or self.sink.storage_error is not None:
            return set()
        return {tp.partition for tp in consumer.assignment() - consumer.paused()}

    async def on_start(self) -> None:
        # Each poll allocates thousands of short-lived lists; with the default thresholds the
        # cyclic GC ran full collections over the worker's whole heap many times a second.
        gc.freeze()
        gc.set_threshold(100_000, 50, 100)
        s = self.settings
        servers = s.kafka_bootstrap_servers
        url = str(self.app.conf.canonical_url)
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
        await self.delivery.start(servers, MAX_REQUEST_BYTES)
        await self.admin.start()
        await self.consumer.start()
        self.consumer.subscribe([s.kafka_topic], listener=self.assignment)
        watch_stage("ingest", self.watched_partitions)
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
        await self.delivery.stop()
        if self.admin is not None:
            await self.admin.close()

    @Service.task
    async def _consume(self) -> None:
        assert self.consumer is not None
        while not self.should_stop:
            if self.sink.storage_error is not None:
                # Stop reading until Parquet writes work again: nothing is committed meanwhile.
                await self.sink.retry_storage()
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
                await self.assignment.resume(fresh)
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
        if self.sink.any_due():
            self._flush_task = asyncio.create_task(
                self.sink.flush(set(self.sink.buffers), force=False)
            )

    async def _handle(self, tp: TopicPartition, records: list[object], now_ms: int) -> None:
        assert self.delivery.producer is not None
        committed = self.sink.committed.get(tp, -1)
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
            await self.delivery.deliver(target, batch, behind)
        if tp not in self.resumed:  # revoked while sending: the new owner replays these
            return
        for event_type, count in Counter(e.event_type for e in routed.events).items():
            metrics.EVENTS_IN.inc(count, event_type)
        if routed.late:
            metrics.LATE_EVENTS.inc(routed.late)
        self.sink.add(
            tp, records[0].offset, records[-1].offset, routed.events,  # type: ignore[attr-defined]
            [self.dead_letters.letter(tp, r, rejected) for r, rejected in routed.rejected],
        )  # fmt: skip

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
            self.sink.at_position(tp, position)

    async def _stop_at_undecodable(
        self, exc: BaseException, tp: TopicPartition, offset: int, next_offset: int
    ) -> None:
        """Pause a partition at a batch this worker cannot decode; the others read on, and
        /health reports it (agents.ingest_undecodable)."""
        assert self.consumer is not None
        self.undecodable.set(1, str(tp.partition))
        self.undecodable_at.add(tp.partition)
        await set_aside(self.consumer, exc, tp, offset, next_offset, self.group_id, self.read_to)


def register(app: ClickstreamApp) -> None:
    """Start an ingest stage with `app`."""
    app.add_service(IngestService(app))
