"""Following a whole topic outside any consumer group, for feeds every worker holds in memory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from mode import Service

from app.kafka.topics import topic_tail

logger = logging.getLogger(__name__)

RecordHandler = Callable[[Any], None]


async def follow_topic(
    service: Service, servers: str, topic: str, per_partition: int, on_record: RecordHandler
) -> None:
    """Hand every committed record of `topic` on the brokers `servers` (KAFKA_BOOTSTRAP_SERVERS)
    to `on_record` for as long as `service` runs, starting `per_partition` records before each
    partition's end; after a broker failure, from that far back again (handlers must be
    idempotent: they keep the newest state)."""
    while not service.should_stop:
        try:
            async with topic_tail(servers, topic, per_partition) as tail:
                if tail is None:  # not created yet: its producer creates it
                    await service.sleep(2.0)
                    continue
                while not service.should_stop:
                    polled = await tail.consumer.getmany(timeout_ms=1000, max_records=1000)
                    for records in polled.values():
                        for record in records:
                            on_record(record)
                    await asyncio.sleep(0)
        except Exception as exc:  # the broker went away: follow again from the tail
            logger.warning("following %s interrupted (%s); again in 5 s", topic, exc)
            await service.sleep(5.0)
