"""Delivery to Kafka: idempotent, acks=all, record batches built here and sent whole.

Routing: every event goes to the partition Kafka's default partitioner picks for its
product_id (murmur2), so one product always lands in one partition, in event-time order.

- `--batch-size 1`: one event per message, key = product_id.
- `--batch-size N`: a message holds up to N events (a JSON array) that all route to the same
  partition; its key is the first event's product_id, which routes there too, so any
  consumer or repartitioner that trusts the key sends the whole array to the right place.

Kafka message timestamp = event time (for an array: its first event). So the broker deletes
history older than the topic's retention (7 days by default) soon after it is written, and
refuses times more than an hour ahead (log.message.timestamp.after.max.ms). The producer does
not create topics: the broker's auto-create (as the local broker does) or an operator must.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from app.errors import BrokerError
from app.kafka.partitioner import kafka_partition
from app.simulator.delivery import DeliveryStats
from app.simulator.stream import Emitted
from app.simulator.wire import encode_batches

logger = logging.getLogger(__name__)

MAX_BATCH_BYTES = 1_000_000  # one record batch per partition and request; the broker takes ~1 MB
_Counts = list[int]  # events per type in one record batch


async def connect(bootstrap: str, give_up_after: float) -> AIOKafkaProducer:
    """A started producer; retries with backoff while the broker is unreachable."""
    began = time.monotonic()
    backoff = 0.5
    while True:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            client_id="clickstream-simulator",
            acks="all",
            enable_idempotence=True,
            linger_ms=10,
            max_batch_size=MAX_BATCH_BYTES,
            max_request_size=MAX_BATCH_BYTES + 48_576,
            request_timeout_ms=30_000,
            retry_backoff_ms=200,
        )
        try:
            await producer.start()
        except (KafkaError, OSError) as exc:
            await producer.stop()
            waited = time.monotonic() - began
            if waited >= give_up_after:
                msg = (
                    f"Kafka at {bootstrap} is not reachable after {waited:.0f} s ({exc}). "
                    "Start it with `clickstream kafka start`, or point --bootstrap or "
                    "KAFKA_BOOTSTRAP_SERVERS at a running broker."
                )
                raise BrokerError(msg) from None
            delay = min(backoff, give_up_after - waited)
            logger.warning(
                "Kafka at %s is not reachable (%s); retrying in %.1f s, giving up after %.0f s",
                bootstrap,
                exc,
                delay,
                give_up_after,
            )
            await asyncio.sleep(delay)
            backoff = min(backoff * 2, 5.0)
            continue
        return producer


class KafkaPublisher:
    """Builds one record batch per partition, hands full ones to the producer, counts acks."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        partitions: Sequence[int],
        product_ids: Sequence[str],
        batch_size: int,
        max_message_bytes: int,
    ) -> None:
        self.stats = DeliveryStats()
        self.topic = topic
        self.partitions = list(partitions)
        self.batch_size = batch_size
        self._producer = producer
        self._max_message_bytes = max_message_bytes
        self._keys = [product_id.encode() for product_id in product_ids]
        self._route = [
            self.partitions[kafka_partition(key, len(self.partitions))] for key in self._keys
        ]
        self._builders: dict[int, Any] = {}  # partition -> aiokafka BatchBuilder
        self._counts: dict[int, _Counts] = {}
        self._opened: dict[int, float] = {}
        self._arrays: dict[int, list[Emitted]] = {p: [] for p in self.partitions}
        self._in_flight: set[asyncio.Future[object]] = set()
        self._failures_logged: set[str] = set()

    @classmethod
    async def open(
        cls,
        producer: AIOKafkaProducer,
        topic: str,
        product_ids: Sequence[str],
        batch_size: int,
        max_message_bytes: int,
    ) -> KafkaPublisher:
        quiet = _ExpectedMissingTopic(topic)
        logging.getLogger("aiokafka.cluster").addFilter(quiet)
        try:
            partitions = sorted(await producer.partitions_for(topic))
        except KafkaError as exc:
            msg = (
                f"topic {topic!r} is not available ({exc!r}): create it, or enable "
                "auto.create.topics.enable on the broker"
            )
            raise BrokerError(msg) from None
        finally:
            logging.getLogger("aiokafka.cluster").removeFilter(quiet)
        if quiet.missing:
            logger.info("topic %s did not exist; the broker created it", topic)
        return cls(producer, topic, partitions, product_ids, batch_size, max_message_bytes)

    def describe(self) -> str:
        return (
            f"topic {self.topic} ({len(self.partitions)} partition(s)), "
            f"{self.batch_size} event(s) per message"
        )

    async def write(self, events: list[Emitted]) -> None:
        """Queue events; full record batches go to the producer (which may make us wait)."""
        if self.batch_size > 1:
            await self._write_arrays(events)
            return
        route, keys, dumps = self._route, self._keys, orjson.dumps
        builders, counts = self._builders, self._counts
        for record, product, event_type, epoch_ms in events:
            partition = route[product]
            builder = builders.get(partition) or self._new_builder(partition)
            value = dumps(record)
            if builder.append(timestamp=epoch_ms, key=keys[product], value=value) is None:
                await self._send(partition)  # the only await: when a batch is full
                builder = self._new_builder(partition)
                builder.append(timestamp=epoch_ms, key=keys[product], value=value)
            counts[partition][event_type] += 1

    async def flush(self, older_than: float = 0.0) -> None:
        """Hand over every partly filled batch opened at least `older_than` seconds ago."""
        now = time.monotonic()
        for partition in self.partitions:
            if self._arrays[partition] and older_than == 0.0:
                await self._send_array(partition, self._arrays[partition])
                self._arrays[partition] = []
            # older_than=0 sends everything, including a batch the arrays above just opened
            # (its opening time is later than `now`).
            opened = self._opened.get(partition, now)
            if partition in self._builders and (older_than == 0.0 or now - opened >= older_than):
                await self._send(partition)

    async def close(self, timeout: float) -> None:
        """Send what is buffered, wait up to `timeout` s for acks; the rest count as failed."""
        try:
            await self.flush()
            if self._in_flight:
                await asyncio.wait(set(self._in_flight), timeout=timeout)
        finally:
            for future in list(self._in_flight):
                future.cancel()
            try:
                await asyncio.wait_for(self._producer.stop(), timeout=5.0)
            except TimeoutError:
                logger.warning("the Kafka producer did not stop within 5 s")

    async def _write_arrays(self, events: list[Emitted]) -> None:
        route, arrays, size = self._route, self._arrays, self.batch_size
        for event in events:
            partition = route[event[1]]
            array = arrays[partition]
            array.append(event)
            if len(array) >= size:
                await self._send_array(partition, array)
                arrays[partition] = []

    async def _send_array(self, partition: int, array: list[Emitted]) -> None:
        records = [event[0] for event in array]
        for begin, end, payload in encode_batches(records, self._max_message_bytes):
            counts = [0, 0, 0]
            for event in array[begin:end]:
                counts[event[2]] += 1
            first = array[begin]
            builder = self._builders.get(partition) or self._new_builder(partition)
            if builder.append(timestamp=first[3], key=self._keys[first[1]], value=payload) is None:
                await self._send(partition)
                builder = self._new_builder(partition)
                builder.append(timestamp=first[3], key=self._keys[first[1]], value=payload)
            total = self._counts[partition]
            for event_type, count in enumerate(counts):
                total[event_type] += count

    def _new_builder(self, partition: int) -> Any:
        builder = self._producer.create_batch()
        self._builders[partition] = builder
        self._counts[partition] = [0, 0, 0]
        self._opened[partition] = time.monotonic()
        return builder

    async def _send(self, partition: int) -> None:
        builder = self._builders.pop(partition)
        counts = self._counts.pop(partition)
        builder.close()  # closed batches skip the linger wait
        self.stats.queued(counts)
        try:
            future = await self._producer.send_batch(builder, self.topic, partition=partition)
        except KafkaError as exc:
            self._failed(counts, exc)
            return
        self._in_flight.add(future)
        future.add_done_callback(functools.partial(self._delivered, counts))

    def _delivered(self, counts: _Counts, future: asyncio.Future[object]) -> None:
        self._in_flight.discard(future)
        if future.cancelled():
            self._failed(counts, TimeoutError("no acknowledgement before shutdown"))
        elif (error := future.exception()) is not None:
            self._failed(counts, error)
        else:
            self.stats.acknowledged(counts)

    def _failed(self, counts: _Counts, error: BaseException) -> None:
        self.stats.failed_with(counts)
        kind = type(error).__name__
        if kind not in self._failures_logged:
            self._failures_logged.add(kind)
            logger.error(
                "Kafka did not accept %d event(s) for %s: %r (further %s errors are only counted)",
                sum(counts),
                self.topic,
                error,
                kind,
            )


class _ExpectedMissingTopic(logging.Filter):
    """aiokafka logs an ERROR while the broker auto-creates a new topic; that is expected."""

    def __init__(self, topic: str) -> None:
        super().__init__()
        self.topic = topic
        self.missing = False

    def filter(self, record: logging.LogRecord) -> bool:
        if "not found in cluster metadata" in str(record.msg) and record.args == (self.topic,):
            self.missing = True
            return False
        return True
