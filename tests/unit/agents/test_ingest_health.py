"""What /health asks of the ingest stage itself: a failing Parquet sink, and the input
partitions set aside at a batch it cannot decode, until they leave."""

from __future__ import annotations

from pathlib import Path

from aiokafka.errors import UnsupportedCodecError
from aiokafka.structs import TopicPartition

from agents.ingest import IngestService
from app import metrics
from app.errors import StorageError
from app.faust_app import build_app
from app.settings import Settings


class PausingConsumer:
    """The part of AIOKafkaConsumer that setting a partition aside uses."""

    def __init__(self) -> None:
        self.assigned: set[TopicPartition] = set()
        self.paused: set[TopicPartition] = set()

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        pass


def ingest_service(tmp_path: Path) -> IngestService:
    return IngestService(build_app(Settings(data_dir=tmp_path, app_id="shop")))


async def test_a_failing_parquet_write_is_reported_until_writes_work(tmp_path: Path) -> None:
    service = ingest_service(tmp_path)
    assert not service.sink_failing()
    service.sink._storage_failed(StorageError("disk full"))
    try:
        assert service.sink_failing()
        assert metrics.SINK_FAILING.get() == 1  # /metrics says so too
    finally:
        service.sink.storage_error = None
        metrics.SINK_FAILING.set(0)
    assert not service.sink_failing()


async def test_undecodable_partitions_are_reported_in_order_until_revoked(tmp_path: Path) -> None:
    service = ingest_service(tmp_path)
    consumer = PausingConsumer()
    service.consumer = consumer  # type: ignore[assignment]
    five, two = TopicPartition("events", 5), TopicPartition("events", 2)
    service.read_to = {five: 40, two: 40}  # both handled up to the undecodable batch
    exc = UnsupportedCodecError("libraries for zstd compression codec not found")
    try:
        for tp in (five, two):
            consumer.assigned.add(tp)
            await service._stop_at_undecodable(exc, tp, 40, 43)
        assert service.undecodable_partitions() == [2, 5]
        await service.assignment.on_partitions_revoked({five})
        assert service.undecodable_partitions() == [2]
    finally:
        for p in ("2", "5"):
            metrics.INGEST_UNDECODABLE.set(0, p)


async def test_the_watchdog_leaves_alone_what_health_reports(tmp_path: Path) -> None:
    """A restart would not fix a failing disk or an undecodable batch: the stall watchdog
    watches only the partitions that read on."""

    class Consumer:
        def assignment(self) -> set[TopicPartition]:
            return {TopicPartition("events", p) for p in (0, 1, 2)}

        def paused(self) -> set[TopicPartition]:
            return {TopicPartition("events", 1)}  # set aside at an undecodable batch

    service = ingest_service(tmp_path)
    service.consumer = Consumer()  # type: ignore[assignment]
    assert service.watched_partitions() == {0, 2}
    service.sink._storage_failed(StorageError("disk full"))
    try:
        assert service.watched_partitions() == set()
    finally:
        service.sink.storage_error = None
        metrics.SINK_FAILING.set(0)
    assert service.watched_partitions() == {0, 2}
