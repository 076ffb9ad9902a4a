"""The alert sink: every flash-sale alert on ALERTS_TOPIC into Parquet, exactly once.

A plain aiokafka consumer group (`<APP_ID>-alert-sink`) inside the worker rather than a Faust
agent: Faust delivers every subscribed topic from one fetch loop, so an agent that stops
draining its queue (Faust's take() with manual acks did, after restarts) stalls the window
agent too. Offsets are committed only after the Parquet file is durable; a replay is skipped
by the writer's progress record.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from mode import Service

from app.errors import StorageError
from app.faust_app import get_app
from app.settings import get_settings
from app.storage.partition_files import PartitionedParquetWriter
from app.storage.schema import ALERTS_DIR, ALERTS_SCHEMA
from app.storage.tables import alerts_table

logger = logging.getLogger(__name__)
app = get_app()
settings = get_settings()


def alert_rows(records: list[Any]) -> list[dict[str, Any]]:
    """Alerts of one partition's records, with the Kafka position each came from."""
    rows = []
    for record in records:
        try:
            row = orjson.loads(record.value)
            row["kafka_partition"] = record.partition
            row["kafka_offset"] = record.offset
            rows.append(row)
        except (orjson.JSONDecodeError, TypeError):
            logger.warning("alerts topic holds a non-alert message at offset %s", record.offset)
    return rows


@app.service
class AlertSinkService(Service):
    """Writes ALERTS_TOPIC to DATA_DIR/alerts a poll at a time."""

    consumer: AIOKafkaConsumer | None = None

    async def on_start(self) -> None:
        self.writer = PartitionedParquetWriter(
            settings.data_dir / ALERTS_DIR, settings.alerts_topic, ALERTS_SCHEMA, "window_start"
        )
        self.consumer = AIOKafkaConsumer(
            settings.alerts_topic, bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=f"{settings.app_id}-alert-sink", enable_auto_commit=False,
            auto_offset_reset="earliest", metadata_max_age_ms=30_000,
        )  # fmt: skip
        await self.consumer.start()

    async def on_stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    @Service.task
    async def _store(self) -> None:
        assert self.consumer is not None
        while not self.should_stop:
            polled = await self.consumer.getmany(timeout_ms=1000, max_records=1000)
            for tp, records in polled.items():
                table = alerts_table(alert_rows(records))
                first, last = records[0].offset, records[-1].offset
                try:
                    await asyncio.to_thread(self.writer.write, tp.partition, first, last, table)
                    await self.consumer.commit({tp: last + 1})
                except (StorageError, KafkaError) as exc:
                    logger.error("alert sink: %s; retrying these alerts in 5 s", exc)
                    self.consumer.seek(tp, first)
                    await self.sleep(5.0)
