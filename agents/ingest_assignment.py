"""The ingest stage's source partitions arriving and leaving: state restored, state dropped.

A newly assigned input partition is resumed before its first records are routed: interrupted
Parquet writes are finished, and its committed offset and watermark (the commit's metadata,
`app.commit_state`) restored. A revoked one is flushed and committed if it can be, then
forgotten: its new owner replays whatever was not committed (docs/design.md, "Ingest").
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiokafka import ConsumerRebalanceListener
from aiokafka.structs import TopicPartition

from app.commit_state import decode_commit_state
from app.kafka.topics import topic_partitions

if TYPE_CHECKING:
    from agents.ingest import IngestService

logger = logging.getLogger(__name__)


class SourceAssignment(ConsumerRebalanceListener):  # type: ignore[misc]
    """The ingest consumer's rebalance listener, and the resume of newly assigned partitions."""

    def __init__(self, service: IngestService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        service = self.service
        await service.sink.flush(set(revoked), force=True)
        for tp in revoked:
            service.sink.forget(tp)
            service.resumed.discard(tp)
            service.read_to.pop(tp, None)
            service.undecodable.set(0, str(tp.partition))
            service.undecodable_at.discard(tp.partition)
            service.lag.remove(str(tp.partition))  # another process reports it now
        await service.commits.stop(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        # aiokafka may hand out records of a new assignment before this coroutine is done,
        # so the state a partition needs is restored by the consuming task, before its first
        # records are routed (SourceAssignment.resume).
        for tp in assigned:
            self.service.resumed.discard(tp)

    async def resume(self, assigned: set[TopicPartition]) -> None:
        """Before a newly assigned partition's first records: finish interrupted Parquet
        writes and restore its committed offset and watermark."""
        service = self.service
        assert service.admin is not None
        router, sink = service.router, service.sink
        # Starting the committers first settles a killed predecessor's open transactions, so
        # the offsets read next are final (the consumer may have fetched older ones).
        await asyncio.gather(*(service.commits.producer(tp) for tp in assigned))
        committed = await service.admin.list_consumer_group_offsets(
            service.group_id, partitions=list(assigned)
        )
        # The window agent holds state back until every source partition has reported.
        servers, topic = service.settings.kafka_bootstrap_servers, service.settings.kafka_topic
        router.source_partitions = max(len(await topic_partitions(servers, topic)), 1)
        for tp in assigned:
            service.delivery.handoffs.source_assigned(tp.partition)
            durable_end = await sink.recover(tp)
            meta = committed.get(tp)
            sink.committed[tp] = meta.offset if meta is not None else -1
            router.max_seen.pop(tp.partition, None)
            seen = decode_commit_state(meta.metadata if meta is not None else None)
            if seen is not None:
                router.max_seen[tp.partition] = seen
            logger.info(
                "ingest: %s assigned, parquet durable through offset %s, committed offset %s, "
                "max event time %s, %s source partitions",
                tp, durable_end, sink.committed[tp],
                router.max_seen.get(tp.partition), router.source_partitions,
            )  # fmt: skip
            service.resumed.add(tp)
