"""The ingest stage: input topic -> validation -> DLQ, Parquet, and per-product-partition batches.

Runs inside the Faust worker as a service with its own aiokafka consumer group
(`<APP_ID>-ingest`), because Faust's per-message machinery costs ~250 us per Kafka message:
reading single-event messages through a Faust stream caps the worker at a few thousand events
per second. Here records are handled a poll at a time, and the window agent receives one
Kafka message per few hundred events.

Offsets of a source partition are committed only after its events are durable in Parquet and
every message derived from them (batches, dead letters) is acknowledged (acks=all,
idempotent producer). The commit carries the partition's watermark state, so a restart
replays the same offsets with the same lateness decisions; the window agent recognises
replayed events by their sequence number and does not count them twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from mode import Service

from agents.ingest_router import IngestRouter
from app import metrics
from app.errors import ClickstreamError, StorageError
from app.events import Event, EventParser, Rejected
from app.faust_app import get_app
from app.kafka.topics import topic_partitions
from app.settings import Settings, get_settings
from app.storage.partition_files import PartitionedParquetWriter
from app.storage.schema import EVENTS_DIR, EVENTS_SCHEMA
from app.storage.tables import events_table
from app.windows import WindowSpec

logger = logging.getLogger(__name__)

MAX_ROWS_PER_MESSAGE = 4000
app = get_app()


class IngestDeliveryError(ClickstreamError):
    """Kafka did not acknowledge a message derived from the input; offsets stay uncommitted."""


@dataclass
class SinkBuffer:
    """Events of one source partition waiting for their Parquet file and offset commit."""

    first_offset: int | None = None
    last_offset: int = -1
    events: list[Event] = field(default_factory=list)
    opened_at: float = field(default_factory=time.monotonic)

    def due(self, max_events: int, max_age_s: float) -> bool:
        if self.first_offset is None:
            return False
        return len(self.events) >= max_events or time.monotonic() - self.opened_at >= max_age_s


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: IngestService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.service.flush(set(revoked), force=True)
        for tp in revoked:
            self.service.buffers.pop(tp, None)
            self.service.resumed.discard(tp)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        # aiokafka may hand out records of a new assignment before this coroutine is done,
        # so the state a partition needs is restored by the consuming task, before its first
        # records are routed (IngestService.resume).
        for tp in assigned:
            self.service.resumed.discard(tp)


@app.service
class IngestService(Service):
    """Consumes KAFKA_TOPIC in polls and feeds the window agent, the DLQ and the Parquet sink."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.settings: Settings = get_settings()
        s = self.settings
        self.group_id = f"{s.app_id}-ingest"
        self.router = IngestRouter(
            EventParser(s.max_event_bytes, s.max_clock_skew),
            WindowSpec.from_seconds(s.window_size, s.window_step),
            s.allowed_lateness * 1000,
            s.partitions,
        )
        self.writer = PartitionedParquetWriter(
            s.data_dir / EVENTS_DIR, s.kafka_topic, EVENTS_SCHEMA, "event_time"
        )
        self.buffers: dict[TopicPartition, SinkBuffer] = {}
        self.durable_end: dict[TopicPartition, int] = {}
        self.resumed: set[TopicPartition] = set()
        self._logged_reasons: set[str] = set()
        self._pending: list[asyncio.Future[object]] = []
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.admin: AIOKafkaAdminClient | None = None
        self.storage_error: str | None = None
        self._storage_backoff = 1.0
        self.sink_failing = metrics.REGISTRY.gauge(
            "clickstream_sink_failing", "1 while Parquet writes fail and reading is paused."
        )
        self.lag = metrics.REGISTRY.gauge(
            "clickstream_ingest_lag", "Input records not yet consumed.", "partition"
        )

    async def on_start(self) -> None:
        # Each poll allocates thousands of short-lived lists; with the default thresholds the
        # cyclic GC ran full collections over the worker's whole heap many times a second.
        gc.freeze()
        gc.set_threshold(100_000, 50, 100)
        s = self.settings
        servers = s.kafka_bootstrap_servers
        self.producer = AIOKafkaProducer(
            bootstrap_servers=servers, acks="all", enable_idempotence=True,
            linger_ms=5, max_batch_size=1 << 20, max_request_size=4 << 20,
        )  # fmt: skip
        self.admin = AIOKafkaAdminClient(bootstrap_servers=servers)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=servers, group_id=self.group_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_records=5000, max_partition_fetch_bytes=4 << 20,
            # Under live traffic the broker waits up to 100 ms for 256 KB, so a poll holds
            # hundreds of events, not a few: the window agent pays per message.
            fetch_min_bytes=256 << 10, fetch_max_wait_ms=100,
            metadata_max_age_ms=30_000,  # notice added input partitions within 30 s
        )  # fmt: skip
        await self.producer.start()
        await self.admin.start()
        await self.consumer.start()
        self.consumer.subscribe([s.kafka_topic], listener=_Rebalance(self))
        logger.info("ingest: consuming %s as group %s", s.kafka_topic, self.group_id)

    async def on_stop(self) -> None:
        # Buffers are not flushed here: what was not committed is replayed exactly on restart.
        if self.consumer is not None:
            await self.consumer.stop()
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
            polled = await self.consumer.getmany(timeout_ms=500, max_records=5000)
            now_ms = int(time.time() * 1000)
            fresh = set(polled) - self.resumed
            if fresh:
                await self.resume(fresh)
            for tp, records in polled.items():
                await self._handle(tp, records, now_ms)
                highwater = self.consumer.highwater(tp)
                if highwater is not None:
                    self.lag.set(highwater - records[-1].offset - 1, str(tp.partition))
            await self.flush(set(self.buffers), force=False)

    async def _handle(self, tp: TopicPartition, records: list[object], now_ms: int) -> None:
        assert self.producer is not None
        routed = self.router.route(tp.topic, tp.partition, records, now_ms)  # type: ignore[arg-type]
        topic = self.settings.product_events_topic
        for target, batch in routed.batches.items():
            for chunk in batch.chunks(MAX_ROWS_PER_MESSAGE):
                self._pending.append(
                    await self.producer.send(topic, chunk.encode(), partition=target)
                )
        for record, rejected in routed.rejected:
            await self._dead_letter(tp, record, rejected)
        for event_type, count in Counter(e.event_type for e in routed.events).items():
            metrics.EVENTS_IN.inc(count, event_type)
        if routed.late:
            metrics.LATE_EVENTS.inc(routed.late)
        buffer = self.buffers.setdefault(tp, SinkBuffer())
        if buffer.first_offset is None:
            buffer.first_offset = records[0].offset  # type: ignore[attr-defined]
            buffer.opened_at = time.monotonic()
        buffer.last_offset = records[-1].offset  # type: ignore[attr-defined]
        durable = self.durable_end.get(tp, -1)
        if durable < records[0].offset:  # type: ignore[attr-defined]
            buffer.events.extend(routed.events)
        else:  # a replay of offsets already in Parquet
            buffer.events.extend(e for e in routed.events if e.kafka_offset > durable)

    async def _dead_letter(self, tp: TopicPartition, record: object, rejected: Rejected) -> None:
        assert self.producer is not None
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
        key = getattr(record, "key", None)
        self._pending.append(
            await self.producer.send(
                self.settings.dlq_topic, rejected.raw, key=key, headers=headers
            )
        )
        metrics.DLQ.inc(1, rejected.reason)
        if rejected.reason not in self._logged_reasons:
            self._logged_reasons.add(rejected.reason)
            logger.warning(
                "dead-lettered %s:%s@%s (%s: %s); further %s rejections are counted, not logged",
                tp.topic, tp.partition, record.offset, rejected.reason,  # type: ignore[attr-defined]
                rejected.detail, rejected.reason,
            )  # fmt: skip

    async def flush(self, tps: set[TopicPartition], force: bool) -> None:
        """Make due buffers durable in Parquet, then commit their offsets with the watermark."""
        s = self.settings
        due = {
            tp: buf
            for tp, buf in self.buffers.items()
            if tp in tps and buf.first_offset is not None
            and (force or buf.due(s.sink_flush_events, s.sink_flush_seconds))
        }  # fmt: skip
        if not due:
            return
        assert self.producer is not None and self.consumer is not None
        await self._await_sends()
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp, buf in due.items():
            if buf.events:
                first = buf.first_offset
                assert first is not None
                try:
                    await asyncio.to_thread(
                        self.writer.write, tp.partition, first, buf.last_offset,
                        events_table(buf.events),
                    )  # fmt: skip
                except StorageError as exc:
                    self._storage_failed(exc)
                    continue
                self.durable_end[tp] = buf.last_offset
                buf.events = []
            state = orjson.dumps({"max_seen_ms": self.router.max_seen.get(tp.partition)}).decode()
            offsets[tp] = OffsetAndMetadata(buf.last_offset + 1, state)
        if self.storage_error is not None and len(offsets) == len(due):
            logger.warning("ingest: Parquet writes work again; reading resumes")
            self.storage_error = None
            self._storage_backoff = 1.0
            self.sink_failing.set(0)
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:  # the files are durable; commit again on the next round
            logger.warning("ingest: offset commit failed (%s); retrying", exc)
            return
        for tp in offsets:
            if self.buffers.get(tp) is due[tp]:
                self.buffers[tp] = SinkBuffer()

    def _storage_failed(self, exc: StorageError) -> None:
        """Report a failed Parquet write; reading pauses and nothing is committed until it works."""
        if self.storage_error is None:
            logger.error("ingest: %s; reading paused, no offsets committed, retrying", exc)
        else:
            logger.error("ingest: Parquet write still failing: %s", exc)
        self.storage_error = str(exc)
        self.sink_failing.set(1)

    async def _await_sends(self) -> None:
        """Wait for every send so far; a send the producer gave up on stops the worker."""
        assert self.producer is not None
        await self.producer.flush()
        pending, self._pending = self._pending, []
        for future in pending:
            error = future.exception() if future.done() else None
            if error is not None:
                msg = f"a message derived from the input could not be delivered: {error}"
                raise IngestDeliveryError(msg) from error

    async def resume(self, assigned: set[TopicPartition]) -> None:
        """Before a newly assigned partition's first records: finish interrupted Parquet
        writes and restore its watermark from the committed offset's metadata."""
        assert self.admin is not None
        committed = await self.admin.list_consumer_group_offsets(
            self.group_id, partitions=list(assigned)
        )
        # The window agent holds state back until every source partition has reported.
        servers, topic = self.settings.kafka_bootstrap_servers, self.settings.kafka_topic
        self.router.source_partitions = max(len(await topic_partitions(servers, topic)), 1)
        for tp in assigned:
            self.durable_end[tp] = await asyncio.to_thread(self.writer.recover, tp.partition)
            meta = committed.get(tp)
            self.router.max_seen.pop(tp.partition, None)
            if meta is not None and meta.metadata:
                with contextlib.suppress(ValueError, TypeError):
                    seen = orjson.loads(meta.metadata).get("max_seen_ms")
                    if seen is not None:
                        self.router.max_seen[tp.partition] = int(seen)
            logger.info(
                "ingest: %s assigned, parquet durable through offset %s, max event time %s, "
                "%s source partitions",
                tp, self.durable_end[tp], self.router.max_seen.get(tp.partition),
                self.router.source_partitions,
            )  # fmt: skip
            self.resumed.add(tp)
