"""The worker under faults a user or the machine can cause: poison input, kill -9, broker restart,
an unwritable data directory. Every expectation comes from the independent recount."""

from __future__ import annotations

import asyncio
import random
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from agents.stall_watchdog import CHECK_EVERY_S
from app.kafka.broker import LocalBroker, free_port
from tables.pipeline_probe import PROBE_EVERY_S
from tests.support.kafka import create_topic, produce
from tests.support.streaming_cases import POISON, shop_events
from tests.support.web_api import check_windows
from tests.support.window_oracle import WindowOracle
from tests.support.worker import (
    Worker,
    WorkerEnv,
    alerts_of,
    drain_like_a_supervisor,
    group_lag,
    health,
    parquet_rows,
    read_topic,
    wait_drained,
)

pytestmark = pytest.mark.slow


async def test_poison_goes_to_the_dlq_and_never_stops_valid_events(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w")
    valid = shop_events(3000, seed=11)
    rng = random.Random(4)
    messages: list[tuple[bytes | None, list[dict[str, object]], str | None]] = [
        (orjson.dumps(e), [e], None) for e in valid
    ]
    for raw, reason in POISON:
        messages.insert(rng.randrange(len(messages)), (raw, [], reason))
    good_a, good_b = valid[0] | {"product_id": "batched"}, valid[1] | {"product_id": "batched"}
    mixed = [
        good_a,
        {"user_id": "u", "product_id": "x", "event_type": "nope", "timestamp": 1},
        good_b,
    ]
    messages.insert(1500, (orjson.dumps(mixed), [good_a, good_b], "unknown_event_type"))
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    for raw, _, _ in messages:
        key = b"tombstone" if raw is None else None  # Kafka needs a key or a value
        await producer.send(env.topic, raw, key=key, partition=0, headers=[("origin", b"test")])
    await producer.stop()
    oracle = WindowOracle().feed_all((0, e) for _, events, _ in messages for e in events)
    worker = Worker(env).start()
    try:
        await wait_drained(worker)
        dead = await read_topic(kafka_bootstrap, env.dlq_topic)
        reasons = Counter(dict(headers)["x-dlq-reason"].decode() for *_, headers in dead)
        expected = Counter(reason for _, _, reason in messages if reason)
        assert reasons == expected
        by_value = {value: dict(headers) for _, _, _, value, headers in dead}
        for raw, _, reason in messages:
            if reason and raw and reason != "unknown_event_type":
                assert by_value[raw]["x-dlq-reason"].decode() == reason  # original bytes kept
                assert by_value[raw]["origin"] == b"test"  # original headers kept
        element = next(h for *_, h in dead if dict(h).get("x-dlq-element-index") == b"1")
        assert dict(element)["x-dlq-reason"] == b"unknown_event_type"
        assert parquet_rows(env) == (len(valid) + 2, len(valid) + 2)
        await check_windows(env.web_url, oracle)
        log = worker.log()
        assert log.count("dead-lettered") == len(expected)  # logged once per reason
    finally:
        worker.stop()


async def test_kill_9_three_times_counts_stay_exact(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w", partitions=2)
    await create_topic(kafka_bootstrap, env.topic, 3)
    rng = random.Random(8)
    events = shop_events(150_000, seed=8)
    placed = [(rng.randrange(3), e) for e in events]
    await produce(kafka_bootstrap, env.topic, [(p, orjson.dumps(e)) for p, e in placed])
    oracle = WindowOracle().feed_all(placed)
    kills = 0
    worker = Worker(env).start()
    try:
        while kills < 3:
            while "assigned, parquet" not in worker.log():
                assert worker.alive(), worker.log()[-3000:]
                await asyncio.sleep(0.1)
            await asyncio.sleep(rng.uniform(0.5, 3.0))
            worker.kill(signal.SIGKILL)
            kills += 1
            (env.data_dir / "worker.log").rename(env.data_dir / f"worker-{kills}.log")
            worker = Worker(env).start()
        worker = await drain_like_a_supervisor(worker)
        alerts = alerts_of(await read_topic(kafka_bootstrap, env.alerts_topic))
        ids = Counter(a["alert_id"] for a in alerts)
        assert [i for i, n in ids.items() if n > 1] == []
        assert oracle.qualifying() <= {(a["product_id"], _ms(a["window_start"])) for a in alerts}
        assert parquet_rows(env) == (len(events), len(events))
        await check_windows(env.web_url, oracle)
    finally:
        worker.stop()


def _ms(iso: object) -> int:
    from tests.support.window_oracle import timestamp_ms

    return timestamp_ms(iso)


async def test_broker_restart_mid_stream_loses_nothing(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "kafka")
    bootstrap = (await asyncio.to_thread(broker.start, free_port())).bootstrap
    env = WorkerEnv(bootstrap, tmp_path / "w")
    events = shop_events(40_000, seed=21)
    oracle = WindowOracle().feed_all((0, e) for e in events)
    worker = Worker(env).start()
    try:
        await produce(bootstrap, env.topic, [(0, orjson.dumps(e)) for e in events[:20_000]])
        while "assigned, parquet" not in worker.log():
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)
        await asyncio.to_thread(broker.stop)
        await asyncio.sleep(5)
        await asyncio.to_thread(broker.start, int(bootstrap.rsplit(":", 1)[1]))
        await produce(bootstrap, env.topic, [(0, orjson.dumps(e)) for e in events[20_000:]])
        await wait_drained(worker, timeout=300)
        assert worker.alive()
        assert parquet_rows(env) == (len(events), len(events))
        alerts = alerts_of(await read_topic(bootstrap, env.alerts_topic))
        assert len({a["alert_id"] for a in alerts}) == len(alerts)
        await check_windows(env.web_url, oracle)
    finally:
        worker.stop()
        await asyncio.to_thread(broker.stop)


@pytest.mark.skipif(
    shutil.which("chattr") is None, reason="needs chattr to make a dir unwritable for root"
)
async def test_unwritable_data_dir_pauses_the_sink_until_fixed(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # A short STALL_SECONDS: the stall watchdog must not restart the worker for a failing disk,
    # which a restart cannot fix (and after which /health would say ok until a write failed).
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w", extra={"STALL_SECONDS": "10"})
    day_dir = env.data_dir / "events" / "date=2026-11-27"
    day_dir.mkdir(parents=True)
    subprocess.run(["chattr", "+i", str(day_dir)], check=True)
    events = shop_events(5000, seed=31)
    try:
        await produce(kafka_bootstrap, env.topic, [(0, orjson.dumps(e)) for e in events])
        worker = Worker(env).start()
        for _ in range(600):
            if "reading paused, no offsets committed" in worker.log():
                break
            assert worker.alive(), worker.log()[-3000:]
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(worker.log()[-3000:])
        assert await group_lag(kafka_bootstrap, f"{env.app_id}-ingest", env.topic) is None
        await asyncio.sleep(10 + 2 * PROBE_EVERY_S + CHECK_EVERY_S)
        status, body = await health(env)
        problems = body["problems"]
        assert status == 503 and isinstance(problems, list)
        assert "Parquet writes are failing; input reading is paused" in problems, problems
        assert worker.alive() and "stalled on this worker" not in worker.log()
    finally:
        subprocess.run(["chattr", "-i", str(day_dir)], check=True)
    try:
        await wait_drained(worker)
        assert parquet_rows(env) == (len(events), len(events))
        assert "Parquet writes work again" in worker.log()
    finally:
        worker.stop()
