"""The alert sink agent: every flash-sale alert on ALERTS_TOPIC into Parquet, exactly once."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

import orjson

from agents.topics import alerts_topic
from app.faust_app import get_app
from app.settings import get_settings
from app.storage.partition_files import PartitionedParquetWriter
from app.storage.schema import ALERTS_DIR, ALERTS_SCHEMA
from app.storage.tables import alerts_table

logger = logging.getLogger(__name__)
app = get_app()
settings = get_settings()


@app.agent(alerts_topic)
async def store_alerts(stream: Any) -> None:
    """Write alerts a few seconds' worth at a time; ack them only once their file is durable."""
    writer = PartitionedParquetWriter(
        settings.data_dir / ALERTS_DIR, settings.alerts_topic, ALERTS_SCHEMA, "window_start"
    )
    async for events in stream.noack().take_events(500, within=2.0):
        by_partition: dict[int, list[Any]] = defaultdict(list)
        for event in events:
            by_partition[event.message.partition].append(event)
        for partition, part in by_partition.items():
            rows = []
            for event in part:
                try:
                    row = orjson.loads(event.value)
                    row["kafka_partition"] = partition
                    row["kafka_offset"] = event.message.offset
                    rows.append(row)
                except (orjson.JSONDecodeError, TypeError):
                    logger.warning("alerts topic holds a non-alert message at offset %s",
                                   event.message.offset)  # fmt: skip
            first, last = part[0].message.offset, part[-1].message.offset
            await asyncio.to_thread(writer.write, partition, first, last, alerts_table(rows))
        for event in events:
            await stream.ack(event)
