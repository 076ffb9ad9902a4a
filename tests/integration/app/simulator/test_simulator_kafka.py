"""`clickstream simulate` into a real broker: exactly what it reports as sent is on the topic."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from app.events import EventParser
from app.kafka.broker import free_port
from app.kafka.partitioner import kafka_partition

CLICKSTREAM = str(Path(sys.executable).parent / "clickstream")
NewTopic = Callable[..., Awaitable[str]]
ConsumerFactory = Callable[..., Awaitable[AIOKafkaConsumer]]


def recent_start() -> str:
    """An hour ago: history within the broker's retention and clock-skew limits."""
    return datetime.fromtimestamp(time.time() - 3600, tz=UTC).isoformat()


def simulate(bootstrap: str, topic: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLICKSTREAM, "simulate", "--bootstrap", bootstrap, "--topic", topic, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def reported_sent(summary: str) -> int:
    match = re.search(r"Sent ([\d,]+) events", summary)
    assert match, summary
    return int(match.group(1).replace(",", ""))


async def read_all(consumer: AIOKafkaConsumer, expected: int) -> list[ConsumerRecord]:
    """Everything on the topic: at least `expected` messages, then 3 s of silence."""
    records: list[ConsumerRecord] = []
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < (3.0 if len(records) >= expected else 30.0):
        batches = await consumer.getmany(timeout_ms=500)
        for batch in batches.values():
            records.extend(batch)
            quiet_since = time.monotonic()
    return records


def check_events(records: list[ConsumerRecord], partitions: int) -> list[dict[str, object]]:
    """Every message is schema-valid and routed by product; returns the events in it."""
    parser = EventParser(max_event_bytes=262_144, max_clock_skew_s=3600)
    now_ms = int(time.time() * 1000)
    events: list[dict[str, object]] = []
    for record in records:
        parsed, rejected = parser.parse_message(
            record.value, record.topic, record.partition, record.offset, now_ms
        )
        assert rejected == []
        decoded = orjson.loads(record.value)
        batch = decoded if isinstance(decoded, list) else [decoded]
        assert record.key == str(batch[0]["product_id"]).encode()
        assert kafka_partition(record.key, partitions) == record.partition
        for event in batch:
            assert (
                kafka_partition(str(event["product_id"]).encode(), partitions) == record.partition
            )
        assert record.timestamp == parsed[0].event_time_ms
        events.extend(batch)
    return events


async def test_n_sent_are_exactly_n_on_the_topic_keyed_by_product(
    kafka_bootstrap: str, new_topic: NewTopic, consumer_factory: ConsumerFactory
) -> None:
    topic = await new_topic(partitions=3)
    done = await asyncio.to_thread(
        simulate,
        kafka_bootstrap,
        topic,
        "--count",
        "20000",
        "--start",
        recent_start(),
        "--rate",
        "100",
        "--seed",
        "5",
    )
    assert done.returncode == 0, done.stderr
    assert reported_sent(done.stdout) == 20_000
    records = await read_all(await consumer_factory(topic), 20_000)
    events = check_events(records, partitions=3)
    assert len(records) == len(events) == 20_000
    assert len({event["event_id"] for event in events}) == 20_000


async def test_batched_messages_hold_one_partitions_events(
    kafka_bootstrap: str, new_topic: NewTopic, consumer_factory: ConsumerFactory
) -> None:
    topic = await new_topic(partitions=3)
    done = await asyncio.to_thread(
        simulate,
        kafka_bootstrap,
        topic,
        "--count",
        "20000",
        "--start",
        recent_start(),
        "--rate",
        "100",
        "--batch-size",
        "100",
        "--scenario",
        "flash-sale",
        "--seed",
        "1",  # left partial arrays behind at the end before the flush fix
    )
    assert done.returncode == 0, done.stderr
    assert reported_sent(done.stdout) == 20_000
    records = await read_all(await consumer_factory(topic), 200)
    events = check_events(records, partitions=3)
    assert len(events) == 20_000
    assert len({event["event_id"] for event in events}) == 20_000
    assert len(records) < 20_000 / 50  # mostly full arrays


async def test_sigterm_mid_run_keeps_everything_reported_as_sent(
    kafka_bootstrap: str, new_topic: NewTopic, consumer_factory: ConsumerFactory
) -> None:
    topic = await new_topic(partitions=2)
    args = [
        CLICKSTREAM,
        "simulate",
        "--bootstrap",
        kafka_bootstrap,
        "--topic",
        topic,
        "--rate",
        "0",
        "--scenario",
        "flash-sale",
    ]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        await asyncio.sleep(4.0)  # live, as fast as possible: well into the run
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 0, stderr
    assert "Stopped by SIGTERM" in stdout
    sent = reported_sent(stdout)
    assert sent > 1000
    assert ", 0 failed" in stdout
    records = await read_all(await consumer_factory(topic), sent)
    assert len(check_events(records, partitions=2)) == sent


def test_unreachable_broker_gives_up_with_a_clear_error() -> None:
    began = time.monotonic()
    done = simulate(f"127.0.0.1:{free_port()}", "nowhere", "--count", "10", "--give-up-after", "3")
    took = time.monotonic() - began
    assert done.returncode == 1
    assert "not reachable" in done.stderr and "clickstream kafka start" in done.stderr
    assert "retrying" in done.stderr
    assert "Traceback" not in done.stderr
    assert 3.0 <= took < 30.0
