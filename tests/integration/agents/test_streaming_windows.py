"""The worker's windows and alerts against an independent recount, on a real broker."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import duckdb
import orjson
import pytest

from tests.support.kafka import create_topic, produce
from tests.support.streaming_cases import edge_cases, shop_events
from tests.support.web_api import check_windows
from tests.support.window_oracle import WindowOracle, timestamp_ms
from tests.support.worker import Worker, WorkerEnv, alerts_of, read_topic, wait_drained


@pytest.mark.slow
async def test_single_partition_alerts_and_windows_equal_the_recount(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w")
    events = edge_cases()
    await produce(kafka_bootstrap, env.topic, [(0, orjson.dumps(e)) for e in events])
    oracle = WindowOracle().feed_all((0, e) for e in events)
    assert oracle.late >= 150 and len(oracle.alerts) > 20  # the cases really are in the input
    worker = Worker(env).start()
    try:
        await wait_drained(worker)
        alerts = alerts_of(await read_topic(kafka_bootstrap, env.alerts_topic))
        ids = Counter(a["alert_id"] for a in alerts)
        assert [i for i, n in ids.items() if n > 1] == []
        got = {
            (a["product_id"], timestamp_ms(a["window_start"])): (
                a["views"],
                a["add_to_cart"],
                a["purchases"],
            )
            for a in alerts
        }
        assert got == oracle.alerts
        for product in ("p100", "p5buy", "pverylate"):
            assert not any(p == product for p, _ in got)
        await check_windows(env.web_url, oracle)
        day_glob = str(env.data_dir / "events" / "*" / "*.parquet")
        rows, distinct = duckdb.sql(
            f"select count(*), count(distinct event_id) from read_parquet('{day_glob}', hive_partitioning=true)"
        ).fetchall()[0]
        assert rows == distinct == len(events)
        assert "FLASH SALE INCIDENT OPENED" in worker.log()
        assert "FLASH SALE ALERT" not in worker.log()  # one table per incident, not per window
    finally:
        worker.stop()


@pytest.mark.slow
async def test_three_partition_unkeyed_input(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w", partitions=3)
    rng = random.Random(3)
    events = edge_cases(seed=2)
    placed = [(rng.randrange(3), e) for e in events]
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(env.topic, 3, 1)])
    await admin.close()
    await produce(kafka_bootstrap, env.topic, [(p, orjson.dumps(e)) for p, e in placed])
    oracle = WindowOracle().feed_all(placed)
    worker = Worker(env).start()
    try:
        await wait_drained(worker)
        alerts = alerts_of(await read_topic(kafka_bootstrap, env.alerts_topic))
        keys = [(a["product_id"], timestamp_ms(a["window_start"])) for a in alerts]
        assert len(keys) == len(set(keys)), "an alert was sent twice"
        assert oracle.qualifying() <= set(keys)
        for a in alerts:
            assert a["views"] > 100 and a["purchases"] < 5
            assert (a["product_id"], timestamp_ms(a["window_start"])) in oracle.windows
        await check_windows(env.web_url, oracle)
    finally:
        worker.stop()


async def drain(env: WorkerEnv) -> None:
    """Run a worker until it has consumed everything there is, then stop it."""
    worker = Worker(env).start()
    try:
        await wait_drained(worker)
    finally:
        worker.stop()


async def drain_and_check(env: WorkerEnv, oracle: WindowOracle) -> None:
    """Run a worker until drained: its alerts and live windows must equal the recount."""
    worker = Worker(env).start()
    try:
        await wait_drained(worker)
        alerts = alerts_of(await read_topic(env.bootstrap, env.alerts_topic))
        keys = [(a["product_id"], timestamp_ms(a["window_start"])) for a in alerts]
        assert sorted(keys) == sorted(oracle.alerts)
        await check_windows(env.web_url, oracle)
    finally:
        worker.stop()


@pytest.mark.slow
async def test_rebuilt_state_does_not_resend_alerts(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Lose every table, marker and offset (a new APP_ID on the same topics): replaying the
    whole input qualifies the same windows again, and the alerts topic keeps them from being
    sent twice."""
    env = WorkerEnv(kafka_bootstrap, tmp_path / "first")
    events = edge_cases(seed=4)
    await produce(kafka_bootstrap, env.topic, [(0, orjson.dumps(e)) for e in events])
    oracle = WindowOracle().feed_all((0, e) for e in events)
    await drain(env)
    rebuilt = WorkerEnv(kafka_bootstrap, tmp_path / "second")
    rebuilt.topic, rebuilt.alerts_topic, rebuilt.dlq_topic = (
        env.topic,
        env.alerts_topic,
        env.dlq_topic,
    )
    await drain_and_check(rebuilt, oracle)


@pytest.mark.slow
async def test_a_new_app_id_on_the_same_data_dir_starts_clean_and_recounts(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The README's "windows from scratch": a new APP_ID, the same DATA_DIR and topics. The
    old deployment's local files must not crash the new one (they once raised Faust's
    ConsistencyError), and the new one recounts every window exactly, without resending an
    alert or writing a Parquet row twice."""
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w")
    events = edge_cases(seed=6)
    await produce(kafka_bootstrap, env.topic, [(0, orjson.dumps(e)) for e in events])
    oracle = WindowOracle().feed_all((0, e) for e in events)
    await drain(env)
    fresh = WorkerEnv(kafka_bootstrap, env.data_dir)
    fresh.topic, fresh.alerts_topic, fresh.dlq_topic = env.topic, env.alerts_topic, env.dlq_topic
    await drain_and_check(fresh, oracle)
    rows = duckdb.sql(
        f"select count(*), count(distinct event_id) "
        f"from read_parquet('{env.data_dir}/events/*/*.parquet')"
    ).fetchall()[0]
    assert rows == (len(events), len(events))
    assert (env.data_dir / "worker-state" / env.app_id).is_dir()
    assert (env.data_dir / "worker-state" / fresh.app_id).is_dir()


@pytest.mark.slow
async def test_a_restarted_worker_keeps_counting_on_its_stored_windows(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Stop the worker halfway, restart it on its data dir, feed the rest: every window,
    including those whose slices were all written before the restart, equals the recount."""
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w")
    events = shop_events(20_000, seed=12)
    oracle = WindowOracle().feed_all((0, e) for e in events)
    half = len(events) // 2
    await produce(kafka_bootstrap, env.topic, [(0, orjson.dumps(e)) for e in events[:half]])
    await drain(env)
    await produce(kafka_bootstrap, env.topic, [(0, orjson.dumps(e)) for e in events[half:]])
    await drain_and_check(env, oracle)


@pytest.mark.slow
async def test_windows_are_whole_when_an_input_partition_never_feeds_a_worker_partition(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Producers keyed like the worker (each product on the input partition of the same
    number) leave every worker partition with input partitions it never hears from, so its
    watermark stays unknown for SOURCE_IDLE_S. Every window with events must still be listed,
    also right after a restart: they were hidden back to the oldest stored slice."""
    from app.product_batches import product_partition

    env = WorkerEnv(kafka_bootstrap, tmp_path / "w")
    await create_topic(kafka_bootstrap, env.topic, 2)
    placed = [(product_partition(str(e["product_id"]), 2), e) for e in shop_events(3000, seed=23)]
    assert {partition for partition, _ in placed} == {0, 1}
    oracle = WindowOracle().feed_all(placed)
    await produce(kafka_bootstrap, env.topic, [(p, orjson.dumps(e)) for p, e in placed])
    for _ in range(2):  # the second round is a restart on the stored state
        worker = Worker(env).start()
        try:
            await wait_drained(worker)
            await check_windows(env.web_url, oracle)
        finally:
            worker.stop()
