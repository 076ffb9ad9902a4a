"""The alert sink: every flash-sale alert on ALERTS_TOPIC into Parquet, exactly once.

A plain aiokafka consumer group (`<APP_ID>-alert-sink`) inside the worker rather than a Faust
agent: Faust delivers every subscribed topic from one fetch loop, so an agent that stops
draining its queue (Faust's take() with manual acks did, after restarts) stalls the window
agent too. Offsets are committed only after the Parquet file is durable; a replay is skipped
by the writer's progress record. A record that is not an alert is skipped and counted, never
fatal: it would otherwise stop the sink again on every replay.

The topic is written by a transactional producer, so the sink reads committed records only
and commits the consumer's position: transaction markers and aborted records take offsets too,
and committing past the last record read would leave them as a lag that never drains.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import ConsumerStoppedError, KafkaError
from aiokafka.structs import TopicPartition
from mode import Service

from agents.stall_watchdog import watch_stage
from app.alert_records import AlertRecordReader
from app.errors import StorageError
from app.faust_app import ClickstreamApp
from app.settings import Settings
from app.storage.arrow import alerts_table
from app.storage.partition_files import PartitionedParquetWriter
from app.storage.schema import ALERTS_DIR, ALERTS_SCHEMA

logger = logging.getLogger(__name__)


def alert_rows(records: list[Any], reader: AlertRecordReader) -> list[dict[str, Any]]:
    """Alerts of one partition's records, with the Kafka position each came from."""
    rows = []
    for record in records:
        alert = reader.alert_of(record)
        if alert is not None:
            row: dict[str, Any] = alert.to_dict()
            row.update(kafka_partition=record.partition, kafka_offset=record.offset)
            rows.append(row)
    return rows


class AlertSinkService(Service):
    """Writes ALERTS_TOPIC to DATA_DIR/alerts a poll at a time."""

    consumer: AIOKafkaConsumer | None = None

    def __init__(self, settings: Settings, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.settings = settings

    async def on_start(self) -> None:
        settings = self.settings
        self.alert_reader = AlertRecordReader("alert_sink")
        self._committed: dict[TopicPartition, int] = {}
        self.writer = PartitionedParquetWriter(
            settings.data_dir / ALERTS_DIR, settings.alerts_topic, ALERTS_SCHEMA, "window_start"
        )
        self.consumer = AIOKafkaConsumer(
            settings.alerts_topic, bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=settings.alert_sink_group, enable_auto_commit=False,
            auto_offset_reset="earliest", metadata_max_age_ms=30_000,
            isolation_level="read_committed",
        )  # fmt: skip
        await self.consumer.start()
        consumer = self.consumer
        watch_stage("alerts", lambda: {tp.partition for tp in consumer.assignment()})

    async def on_stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    @Service.task
    async def _store(self) -> None:
        assert self.consumer is not None
        while not self.should_stop:
            try:
                polled = await self.consumer.getmany(timeout_ms=1000, max_records=1000)
            except ConsumerStoppedError:
                return  # on_stop stopped the consumer under this poll: a clean stop
            for tp, records in polled.items():
                await self._store_partition(self.consumer, tp, records)
            await self._commit_moved_positions(self.consumer, skip=set(polled))

    async def _store_partition(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: list[Any]
    ) -> None:
        """Write one partition's alerts durably, then commit its position."""
        first = records[0].offset
        try:
            end = await consumer.position(tp)  # past the records and any marker after them
            table = alerts_table(alert_rows(records, self.alert_reader))
            await asyncio.to_thread(self.writer.write, tp.partition, first, end - 1, table)
            await consumer.commit({tp: end})
            self._committed[tp] = end
        except (StorageError, KafkaError) as exc:
            logger.error("alert sink: %s; retrying these alerts in 5 s", exc)
            if tp in consumer.assignment():  # else its new owner reads them
                consumer.seek(tp, first)
            await self.sleep(5.0)

    async def _commit_moved_positions(
        self, consumer: AIOKafkaConsumer, skip: set[TopicPartition]
    ) -> None:
        """Commit positions that moved without a record: over markers or aborted records."""
        for tp in consumer.assignment() - skip:
            try:
                position = await consumer.position(tp)
                if position != self._committed.get(tp):
                    await consumer.commit({tp: position})
                    self._committed[tp] = position
            except KafkaError as exc:  # a rebalance or the broker away: try after the next poll
                logger.warning("alert sink: could not commit %s (%s)", tp, exc)


def register(app: ClickstreamApp) -> None:
    """Run the alert sink in this worker."""
    app.add_service(AlertSinkService(app.settings))
