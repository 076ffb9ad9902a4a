"""A batch the ingest stage cannot decode: found where aiokafka raised, and set aside alone.

The batches are real record batches read by aiokafka's own fetcher code (PartitionRecords), so
a change in where aiokafka raises decoding errors fails here, not in production.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import aiokafka.codec
import pytest
from aiokafka.consumer.fetcher import READ_COMMITTED, PartitionRecords
from aiokafka.errors import KafkaConnectionError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import calc_crc32c
from aiokafka.structs import TopicPartition

from agents.ingest import IngestService
from agents.ingest_undecodable import decode_fix, undecodable_batch
from app.faust_app import build_app
from app.settings import load_settings
from tables.stage_links import stages
from tables.web.health import health_report

TP = TopicPartition("events", 3)
LZ4, UNKNOWN_CODEC = 3, 5


def record_batch(codec: int, base_offset: int, count: int = 3) -> bytearray:
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=codec, is_transactional=0, producer_id=-1,
        producer_epoch=-1, base_sequence=-1, batch_size=1 << 20,
    )  # fmt: skip
    for i in range(count):
        builder.append(i, timestamp=None, key=None, value=b'{"n": %d}' % i, headers=[])
    data = bytearray(builder.build())
    data[0:8] = struct.pack(">q", base_offset)
    return data


def with_valid_crc(data: bytearray) -> bytes:
    """The batch with its CRC recomputed: the broker-side checksum no longer catches it."""
    data[17:21] = struct.pack(">I", calc_crc32c(bytes(data[21:])))
    return bytes(data)


def decoding_error(data: bytes) -> Exception:
    try:
        list(PartitionRecords(TP, MemoryRecords(data), [], 0, None, None, True, READ_COMMITTED))
    except Exception as exc:
        return exc
    raise AssertionError("the batch decoded")


def test_a_codec_without_its_library_is_located_and_the_fix_is_to_install_cramjam(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = bytes(record_batch(LZ4, base_offset=40))
    monkeypatch.setattr(aiokafka.codec, "cramjam", None)
    exc = decoding_error(data)
    assert type(exc).__name__ == "UnsupportedCodecError"
    assert undecodable_batch(exc) == (TP, 40, 43)
    assert "install cramjam" in decode_fix(exc, "shop-ingest", TP, 43)


def test_an_unknown_codec_is_located_and_the_fix_skips_exactly_that_batch() -> None:
    data = record_batch(0, base_offset=7, count=5)
    data[21:23] = struct.pack(">h", UNKNOWN_CODEC)
    exc = decoding_error(with_valid_crc(data))
    assert undecodable_batch(exc) == (TP, 7, 12)
    fix = decode_fix(exc, "shop-ingest", TP, 12)
    assert "--group shop-ingest --topic events:3 --reset-offsets --to-offset 12" in fix


def test_a_corrupt_lz4_payload_is_located() -> None:
    data = record_batch(LZ4, base_offset=100)
    data[-6] ^= 0xFF
    data[-10] ^= 0xFF
    exc = decoding_error(with_valid_crc(data))
    assert undecodable_batch(exc) == (TP, 100, 103)


def test_errors_not_raised_while_decoding_are_not_taken_for_a_bad_batch() -> None:
    try:
        raise KafkaConnectionError("broker gone")
    except KafkaConnectionError as exc:
        assert undecodable_batch(exc) is None


class FakeConsumer:
    """The part of AIOKafkaConsumer the ingest stage uses to set a partition aside."""

    def __init__(self, assigned: set[TopicPartition], committed: dict[TopicPartition, int]) -> None:
        self.assigned, self.group_offsets = assigned, committed
        self.paused: set[TopicPartition] = set()
        self.positions: dict[TopicPartition, int | str] = {}

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.group_offsets.get(tp)

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        self.positions.update(dict.fromkeys(tps, "beginning"))


async def test_the_bad_partition_is_paused_and_reported_while_the_others_read_on(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    handled, fresh_committed, fresh_new = (TopicPartition("events", p) for p in (0, 1, 2))
    consumer = FakeConsumer({TP, handled, fresh_committed, fresh_new}, {fresh_committed: 55})
    settings = load_settings(data_dir=tmp_path, app_id="shop")
    service = IngestService(build_app(settings))
    service.consumer = consumer  # type: ignore[assignment]
    service.read_to = {handled: 1234}
    monkeypatch.setattr(stages, "ingest", lambda: service)  # /health asks the running stage
    data = record_batch(0, base_offset=40)
    data[21:23] = struct.pack(">h", UNKNOWN_CODEC)
    exc = decoding_error(with_valid_crc(data))
    with caplog.at_level(logging.ERROR, logger="agents.ingest"):
        await service._stop_at_undecodable(exc, TP, 40, 43)
    assert consumer.paused == {TP}
    # The failed poll may have moved the others past records it never returned: back they go.
    assert consumer.positions == {handled: 1234, fresh_committed: 55, fresh_new: "beginning"}
    assert service.undecodable.get("3") == 1
    assert "cannot decode the batch at events:3 offset 40" in caplog.text
    healthy, body = health_report(0.0, settings)
    assert not healthy
    assert any("input partition 3" in p and "cannot decode" in p for p in body["problems"])
    service.undecodable.set(0, "3")
