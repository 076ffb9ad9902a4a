"""Stray records on ALERTS_TOPIC, with a real worker: skipped, counted, and never fatal."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import duckdb
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import GroupCoordinatorNotAvailableError

from app.alert_records import AlertRecord
from tests.support.kafka import produce
from tests.support.streaming_cases import MIN, SEC, T0, Timeline
from tests.support.web_api import get_ok, prometheus_samples
from tests.support.window_oracle import WindowOracle, timestamp_ms
from tests.support.worker import Worker, WorkerEnv, group_lag

STRAY = [b"not json {", b'{"hello": "world"}']
ABORTED = AlertRecord(
    alert_id="paborted:0", product_id="paborted", window_start="2026-11-27T08:00:00Z",
    window_end="2026-11-27T08:10:00Z", views=500, add_to_cart=0, purchases=0,
    detected_at="2026-11-27T08:11:00Z",
)  # fmt: skip


async def put_stray_records(env: WorkerEnv) -> None:
    """Partition 0: two plain non-alerts. Partition 1: a non-alert in a committed transaction,
    then an alert in an aborted one, so the partition ends on a transaction marker."""
    admin = AIOKafkaAdminClient(bootstrap_servers=env.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(env.alerts_topic, env.partitions, 1)])
    finally:
        await admin.close()
    await produce(env.bootstrap, env.alerts_topic, [(0, value) for value in STRAY])
    producer = AIOKafkaProducer(
        bootstrap_servers=env.bootstrap, transactional_id=f"{env.app_id}-test-alerts"
    )
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(env.alerts_topic, STRAY[1], partition=1)
        await producer.begin_transaction()
        await producer.send_and_wait(env.alerts_topic, ABORTED.to_json(), partition=1)
        await producer.abort_transaction()
    finally:
        await producer.stop()


def flash_sale() -> list[dict[str, object]]:
    """101 views and one purchase of one product in 50 s, then a view 20 min on."""
    line = Timeline(seed=5)
    line.burst("pflash", "purchase", 1, T0)
    line.burst("pflash", "view", 101, T0 + SEC, 50 * SEC)
    line.add("pquiet", "view", T0 + 20 * MIN)
    return line.in_order()


async def wait_for(
    what: str, worker: Worker, check: Callable[[], Awaitable[bool]], timeout: float = 120.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.alive(), f"worker died:\n{worker.log()[-3000:]}"
        if await check():
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what} not within {timeout}s:\n{worker.log()[-3000:]}")


def stored_alerts(env: WorkerEnv) -> list[tuple[str, str, int, int, int, int]]:
    files = env.data_dir / "alerts" / "*" / "*.parquet"
    if not list(env.data_dir.glob("alerts/*/*.parquet")):
        return []
    query = (
        "select alert_id, product_id, epoch_ms(window_start), views, add_to_cart, purchases "
        f"from read_parquet('{files}', hive_partitioning=true) order by all"
    )
    return [tuple(row) for row in duckdb.execute(query).fetchall()]


@pytest.mark.slow
async def test_stray_records_on_the_alerts_topic_are_skipped_and_counted(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w")
    sink_group = f"{env.app_id}-alert-sink"
    await put_stray_records(env)
    worker = Worker(env).start()
    try:

        async def sink_caught_up() -> bool:
            try:
                return await group_lag(kafka_bootstrap, sink_group, env.alerts_topic) == 0
            except GroupCoordinatorNotAvailableError:  # a fresh broker still creating offsets
                return False

        # Committing the consumer's position gets past the markers and the aborted alert.
        await wait_for("the sink past the stray records", worker, sink_caught_up)

        events = flash_sale()
        await produce(kafka_bootstrap, env.topic, [(0, orjson.dumps(e)) for e in events])
        expected = WindowOracle().feed_all((0, e) for e in events).alerts
        assert len(expected) == 10 and {p for p, _ in expected} == {"pflash"}

        async def all_stored() -> bool:
            return len(stored_alerts(env)) >= len(expected)

        await wait_for("the alerts in Parquet", worker, all_stored)
        await wait_for("the sink drained", worker, sink_caught_up)
        rows = stored_alerts(env)
        assert {(p, start): counts for _, p, start, *counts in rows} == {
            key: list(counts) for key, counts in expected.items()
        }
        assert len({alert_id for alert_id, *_ in rows}) == len(rows) == len(expected)

        async def all_listed() -> bool:
            body = await get_ok(env.web_url, "/api/alerts?limit=1000")
            return len([a for a in body["alerts"] if a["product_id"] == "pflash"]) >= 10

        await wait_for("the alerts in GET /api/alerts", worker, all_listed)
        listed = (await get_ok(env.web_url, "/api/alerts?limit=1000"))["alerts"]
        # Only the flash sale: the feed reads uncommitted records, so it lists ABORTED too.
        got = {
            (a["product_id"], timestamp_ms(a["window_start"])): (
                a["views"], a["add_to_cart"], a["purchases"],
            )
            for a in listed
            if a["product_id"] == "pflash"
        }  # fmt: skip
        assert got == expected

        text = await get_ok(env.web_url, "/metrics")
        samples = prometheus_samples(text)
        assert samples['clickstream_alert_records_skipped_total{reader="alert_sink"}'] == 3
        assert samples['clickstream_alert_records_skipped_total{reader="alert_feed"}'] >= 3
        warnings = [line for line in worker.log().splitlines() if "alert_sink: skipping" in line]
        assert len(warnings) == 1 and f"{env.alerts_topic}[" in warnings[0]
        assert worker.alive()
    finally:
        worker.stop()
