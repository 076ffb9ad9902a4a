"""The ingest stage's transactions: one dead letter per bad message through kill -9, and input
of aborted transactions never counted. Expectations come from what the test itself sent."""

from __future__ import annotations

import asyncio
import random
import signal
from collections import Counter
from pathlib import Path

import duckdb
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError

from tests.support.kafka import create_topic
from tests.support.streaming_cases import POISON, SEC, T0, shop_events, stamp
from tests.support.web_api import check_windows, fetch_windows
from tests.support.window_oracle import WindowOracle
from tests.support.worker import (
    Worker,
    WorkerEnv,
    alerts_of,
    drain_like_a_supervisor,
    parquet_rows,
    read_topic,
    wait_drained,
)

pytestmark = pytest.mark.slow

Message = tuple[int, bytes | None, bytes | None, bool]  # partition, key, value, malformed


def stream_with_poison(valid: int, bad: int, seed: int) -> list[Message]:
    """`valid` shop events on two partitions, with `bad` malformed messages spread among them."""
    rng = random.Random(seed)
    messages: list[Message] = [
        (rng.randrange(2), None, orjson.dumps(e), False) for e in shop_events(valid, seed=seed)
    ]
    for i in reversed(range(bad)):
        raw, _ = POISON[i % len(POISON)]
        key = b"tombstone" if raw is None else None  # Kafka needs a key or a value
        at = int((i + rng.random()) * valid / bad)
        messages.insert(at, (rng.randrange(2), key, raw, True))
    return messages


async def produce_paced(
    bootstrap: str, topic: str, messages: list[Message], seconds: float, bad_sent: asyncio.Event
) -> None:
    """Live traffic: `messages` spread over `seconds`; `bad_sent` is set after each bad one."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        chunk = 20
        for start in range(0, len(messages), chunk):
            sent = messages[start : start + chunk]
            for partition, key, value, _ in sent:
                await producer.send(topic, value, key=key, partition=partition)
            await producer.flush()
            if any(malformed for *_, malformed in sent):
                bad_sent.set()
            await asyncio.sleep(seconds * chunk / len(messages))
    finally:
        await producer.stop()


async def committed_offsets(bootstrap: str, group: str) -> int:
    """The sum of the offsets `group` has committed (0 before its first commit)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    except GroupCoordinatorNotAvailableError:  # a fresh broker still creating its offsets
        return 0
    finally:
        await admin.close()
    return sum(max(meta.offset, 0) for meta in offsets.values())


async def kill_9_after_a_bad_message(
    worker: Worker, bad_sent: asyncio.Event, rng: random.Random
) -> None:
    """Once the worker has committed since it started, kill it soon after a bad message was
    sent: its dead letter is then most likely read but not yet committed."""
    env = worker.env
    while "assigned, parquet" not in worker.log():
        assert worker.alive(), worker.log()[-3000:]
        await asyncio.sleep(0.1)
    before = await committed_offsets(env.bootstrap, f"{env.app_id}-ingest")
    while await committed_offsets(env.bootstrap, f"{env.app_id}-ingest") <= before:
        assert worker.alive(), worker.log()[-3000:]
        await asyncio.sleep(0.2)
    bad_sent.clear()
    await bad_sent.wait()
    await asyncio.sleep(rng.uniform(0.3, 1.2))
    worker.kill(signal.SIGKILL)


async def test_dead_letters_exactly_once_after_kill_9(kafka_bootstrap: str, tmp_path: Path) -> None:
    # Commits every 3 s, so that a kill finds dead letters read but not committed.
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w", extra={"SINK_FLUSH_SECONDS": "3"})
    await create_topic(kafka_bootstrap, env.topic, 2)
    messages = stream_with_poison(6000, 26, seed=26)
    bad_sent = asyncio.Event()
    # A restart waits ~10 s for the group to drop the killed member: traffic outlasts 3 kills.
    producing = asyncio.create_task(
        produce_paced(kafka_bootstrap, env.topic, messages, 50.0, bad_sent)
    )
    rng = random.Random(9)
    worker = Worker(env).start()
    try:
        for kill in range(1, 4):
            await asyncio.wait_for(kill_9_after_a_bad_message(worker, bad_sent, rng), 60)
            (env.data_dir / "worker.log").rename(env.data_dir / f"worker-{kill}.log")
            worker = Worker(env).start()
        await producing
        worker = await drain_like_a_supervisor(worker)
        dead = await read_topic(kafka_bootstrap, env.dlq_topic)
        sources = Counter(
            (h["x-dlq-source-partition"], h["x-dlq-source-offset"])
            for h in (dict(headers) for *_, headers in dead)
        )
        assert [source for source, n in sources.items() if n > 1] == []
        assert len(dead) == 26
        assert parquet_rows(env) == (6000, 6000)
    finally:
        producing.cancel()
        worker.stop()


def views(product: str, start_ms: int, count: int, spacing_ms: int) -> list[dict[str, object]]:
    return [
        {"user_id": f"u{i}", "product_id": product, "event_type": "view",
         "timestamp": stamp(start_ms + i * spacing_ms, i % 5)}
        for i in range(count)
    ]  # fmt: skip


async def test_aborted_transactions_never_count(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w")
    await create_topic(kafka_bootstrap, env.topic, 2)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=f"{env.app_id}-test-input"
    )
    committed: list[tuple[int, dict[str, object]]] = []
    worker = Worker(env).start()
    await producer.start()
    try:
        for round_ in range(4):
            start = T0 + round_ * 120 * SEC
            # 150 views in 30 s: an alert, were they counted. The last round ends in an abort.
            await producer.begin_transaction()
            for i, event in enumerate(views("p-aborted", start, 150, 200)):
                await producer.send(env.topic, orjson.dumps(event), partition=i % 2)
            await producer.flush()  # in the log, before the abort marker
            await producer.abort_transaction()
            if round_ == 3:
                break
            await producer.begin_transaction()
            for i, event in enumerate(views("p-committed", start + 40 * SEC, 20, 500)):
                await producer.send(env.topic, orjson.dumps(event), partition=i % 2)
                committed.append((i % 2, event))
            await producer.commit_transaction()
            await asyncio.sleep(1.0)
        await wait_drained(worker)
        glob = str(env.data_dir / "events" / "*" / "*.parquet")
        stored = duckdb.sql(f"select product_id, count(*) from read_parquet('{glob}') group by all")
        assert stored is not None
        assert dict(stored.fetchall()) == {"p-committed": len(committed)}
        assert await fetch_windows(env.web_url, "p-aborted") == {}
        await check_windows(env.web_url, WindowOracle().feed_all(committed))
        alerts = alerts_of(await read_topic(kafka_bootstrap, env.alerts_topic))
        assert [a for a in alerts if a["product_id"] == "p-aborted"] == []
    finally:
        await producer.stop()
        worker.stop()
