"""A worker partition the window stage owns, and applying batches to it."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from aiokafka.errors import KafkaError

from agents.incidents import PartitionIncidents
from agents.local_handoff import Inbox
from agents.window_checkpoint import PartitionCheckpoint
from app import metrics
from app.product_batches import ProductBatch
from app.windowing.partition_windows import PartitionWindows

logger = logging.getLogger(__name__)
PRODUCER_STOP_S = 10.0  # as long as the longest back-off while the broker is away


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

    def apply(self, batches: list[ProductBatch]) -> None:
        """Count `batches` (in order) and add the alerts and incident records they cause to
        the next checkpoint. A barrier batch is reported to the inbox as read. Raises what
        `PartitionWindows.apply` raises (a batch that cannot be applied)."""
        state, incidents, checkpoint = self.state, self.incidents, self.checkpoint
        skipped_before = state.duplicates_skipped
        for batch in batches:
            if batch.barrier is not None:
                self.inbox.barrier_read(batch.source_partition, batch.barrier)
            alerts = state.apply(batch)
            if alerts:
                now_ms = int(time.time() * 1000)
                checkpoint.add_alerts(state, alerts, now_ms)
                checkpoint.add_incidents(incidents.add_alerts(alerts, state, now_ms))
        checkpoint.add_incidents(incidents.advance(state, int(time.time() * 1000)))
        metrics.DUPLICATES.inc(state.duplicates_skipped - skipped_before)

    async def close(self) -> None:
        """Stop taking handoffs and stop the partition's producer (at most PRODUCER_STOP_S);
        its open transaction, if any, dies with the producer's epoch."""
        self.inbox.close()
        try:
            await asyncio.wait_for(self.checkpoint.producer.stop(), PRODUCER_STOP_S)
        except (KafkaError, TimeoutError) as exc:  # its open transaction dies with the epoch
            logger.warning("windows: stopping a producer failed: %r", exc)
