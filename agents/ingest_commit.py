"""The ingest stage's commit of a source partition: dead letters and offset in one transaction.

Each source partition has its own transactional producer (transactional_id
`<APP_ID>-ingest-<partition>`, stable across restarts). A commit, once the partition's events are
durable in Parquet and its batches acknowledged, is:

1. begin a transaction;
2. send the partition's buffered dead letters to DLQ_TOPIC;
3. add the partition's next offset, with the watermark state as metadata, to the transaction;
4. check every dead-letter send succeeded, then commit the transaction.

A refused transaction is aborted and reported as False: none of it is visible, and the caller
keeps its buffer to send again. A kill -9 leaves the transaction open; the restarted worker's
producer of the same id aborts it, and the replay sends those dead letters again.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    TransactionalIdAuthorizationFailed,
)
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from agents.ingest_dead_letters import DeadLetter
from app import metrics
from app.errors import ClickstreamError
from app.kafka.transactions import RETRY_BACKOFF_MS

logger = logging.getLogger(__name__)

# After these the producer can never write again (aiokafka's sender stops): see commit.
PRODUCER_FATAL = (ProducerFenced, OutOfOrderSequenceNumber, TransactionalIdAuthorizationFailed)


class IngestDeliveryError(ClickstreamError):
    """Kafka did not acknowledge a message derived from the input; offsets stay uncommitted."""


class PartitionCommits:
    """The transactional producers of the source partitions this worker reads, one each."""

    def __init__(
        self, bootstrap_servers: str, app_id: str, group_id: str, dlq_topic: str,
        max_request_size: int,
    ) -> None:  # fmt: skip
        self.bootstrap_servers = bootstrap_servers
        self.app_id = app_id
        self.group_id = group_id
        self.dlq_topic = dlq_topic
        self.max_request_size = max_request_size
        self.producers: dict[TopicPartition, AIOKafkaProducer] = {}

    async def commit(
        self, tp: TopicPartition, next_offset: int, state: str, letters: list[DeadLetter]
    ) -> bool:
        """One transaction: the partition's dead letters, then its offset with `state`.

        False when Kafka refused the transaction: it is aborted, so none of it is visible.
        """
        producer = await self.producer(tp)
        letters = list(letters)
        try:
            await producer.begin_transaction()
            sent = [
                await producer.send(self.dlq_topic, d.value, key=d.key, headers=d.headers)
                for d in letters
            ]
            offsets = {tp: OffsetAndMetadata(next_offset, state)}
            await producer.send_offsets_to_transaction(offsets, self.group_id)
            # commit_transaction would commit even with a failed send: check them first.
            for outcome in await asyncio.gather(*sent, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    raise outcome
            await producer.commit_transaction()
        except PRODUCER_FATAL as exc:
            # Fenced: a producer with this partition's transactional_id started elsewhere (the
            # partition's new owner), or the producer broke for good. It cannot even abort, so
            # the worker stops; the broker aborts the open transaction and a restart replays.
            msg = f"ingest: the transactional producer of {tp} cannot continue ({exc!r})"
            raise IngestDeliveryError(msg) from exc
        except KafkaError as exc:
            logger.warning("ingest: transaction of %s failed (%s); aborted, retrying", tp, exc)
            await producer.abort_transaction()
            return False
        for letter in letters:
            metrics.DLQ.inc(1, letter.reason)
        return True

    async def producer(self, tp: TopicPartition) -> AIOKafkaProducer:
        """The transactional producer of a source partition, started on first use.

        Its id is stable across restarts, so starting it ends any transaction a killed
        predecessor left open: committed if it was committing, otherwise aborted.
        """
        producer = self.producers.get(tp)
        if producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap_servers,
                transactional_id=f"{self.app_id}-ingest-{tp.partition}",
                max_request_size=self.max_request_size,
                retry_backoff_ms=RETRY_BACKOFF_MS,
            )
            self.producers[tp] = producer
            await producer.start()
        return producer

    async def stop(self, tps: set[TopicPartition]) -> None:
        for tp in tps:
            producer = self.producers.pop(tp, None)
            if producer is not None:
                await producer.stop()
