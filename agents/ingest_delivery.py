"""Batch delivery: the ingest stage's batches to the window stage, in memory or through Kafka.

A batch for a worker partition this process's window stage owns is handed to that
partition's inbox; any other goes to PRODUCT_EVENTS_TOPIC through an idempotent producer
(the window stage recognises replayed batches by their sequence numbers). A handoff whose
inbox closed before a checkpoint held it is resent through Kafka, in order, before anything
newer for its target (agents.local_handoff, docs/design.md "One hop").
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from agents.ingest_commit import IngestDeliveryError
from agents.local_handoff import Handoffs
from agents.window_stage import WindowStage
from app import metrics
from app.product_batches import ProductBatch

MAX_ROWS_PER_MESSAGE = 4000


class BatchDelivery:
    """Hands or sends each batch for a worker partition (`target`), and awaits them all before
    the offsets they came from are committed."""

    def __init__(self, topic: str) -> None:
        """`topic`: PRODUCT_EVENTS_TOPIC, whose partitions are the targets."""
        self.topic = topic
        self.handoffs = Handoffs()  # batches handed to this process's window stage
        self._send_lock = asyncio.Lock()  # keeps each target's batches in order
        self._pending: list[asyncio.Future[object]] = []
        self.producer: AIOKafkaProducer | None = None

    async def start(self, bootstrap_servers: str, max_request_size: int) -> None:
        """Start the idempotent producer; `max_request_size` in bytes."""
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True,
            linger_ms=5, max_batch_size=1 << 20, max_request_size=max_request_size,
        )  # fmt: skip
        await self.producer.start()

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    async def deliver(self, target: int, batch: ProductBatch, behind: bool) -> None:
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
        for chunk in batch.chunks(MAX_ROWS_PER_MESSAGE):
            self._pending.append(
                await self.producer.send(self.topic, chunk.encode(), partition=target)
            )

    async def await_sends(self) -> None:
        """Wait for every batch handed or sent so far; a send the producer gave up on stops the
        worker.

        Raises IngestDeliveryError when Kafka did not acknowledge a send.
        """
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
