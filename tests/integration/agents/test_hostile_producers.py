"""Producers that are wrong or hostile cannot stop, silence or poison a real worker."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote

import duckdb
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.support.kafka import produce
from tests.support.web_api import fetch_windows, wait_ready
from tests.support.window_oracle import timestamp_ms
from tests.support.worker import Worker, WorkerEnv, alerts_of, read_topic, wait_drained

MINUTE_MS = 60_000
LONG_URL = "https://shop.example.com/products/" + "a" * 206  # 240 characters


def view(product: str, t_ms: int, i: int) -> dict[str, object]:
    return {"event_id": f"e{i}", "user_id": f"u{i}", "product_id": product,
            "event_type": "view", "timestamp": t_ms}  # fmt: skip


def windows_holding(t_ms: int, counts: tuple[int, int, int]) -> dict[int, tuple[int, int, int]]:
    """The ten 10-minute windows, one a minute, that hold an instant, each with `counts`."""
    newest = t_ms - t_ms % MINUTE_MS
    return {newest - k * MINUTE_MS: counts for k in range(10)}


def parquet_rows(env: WorkerEnv, product: str) -> int:
    files = str(env.data_dir / "events" / "*" / "*.parquet")
    query = f"select count(*) from read_parquet('{files}', hive_partitioning=true) where product_id = $p"
    # A private connection: a result left open on duckdb's default one breaks every later
    # duckdb.sql() in this process (duckdb 2).
    with duckdb.connect() as con:
        ((count,),) = con.execute(query, {"p": product}).fetchall()
    return int(count)


async def test_one_view_from_a_fast_clock_does_not_silence_a_flash_sale(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w")
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(env.topic, 1, 1)])
    await admin.close()
    worker = Worker(env).start()
    try:
        await wait_ready(worker, None)
        # Stamped against the clock of now, once the worker runs: it reads them within seconds.
        now = int(time.time() * 1000)
        ahead, flash = now + 50 * MINUTE_MS, now - 30_000  # ahead: within MAX_CLOCK_SKEW (1 h)
        events = [view("p-future", ahead, 0)] + [view("p-flash", flash, i) for i in range(1, 151)]
        await produce(kafka_bootstrap, env.topic, [(0, orjson.dumps(e)) for e in events])
        await wait_drained(worker)
        expected = windows_holding(flash, (150, 0, 0))
        assert await fetch_windows(env.web_url, "p-flash") == expected
        alerts = alerts_of(await read_topic(kafka_bootstrap, env.alerts_topic))
        flash_alerts = {
            timestamp_ms(a["window_start"]): a["views"]
            for a in alerts
            if a["product_id"] == "p-flash"
        }
        assert flash_alerts == dict.fromkeys(expected, 101)  # decided at the 101st view
        assert parquet_rows(env, "p-future") == 1  # the view from the future is kept
    finally:
        worker.stop()


@pytest.mark.slow
async def test_5000_waiting_views_of_a_240_character_product_id_are_counted(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Once: MessageSizeTooLargeError on every restart (4,000 such rows exceed 1 MB)."""
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w")
    t = int(time.time() * 1000) - 5 * MINUTE_MS
    events = [view(LONG_URL, t, i) for i in range(5000)]
    await produce(kafka_bootstrap, env.topic, [(0, orjson.dumps(e)) for e in events])
    worker = Worker(env).start()
    try:
        await wait_drained(worker)
        assert worker.alive()
        expected = windows_holding(t, (5000, 0, 0))
        assert await fetch_windows(env.web_url, quote(LONG_URL, safe="")) == expected
        assert parquet_rows(env, LONG_URL) == 5000
    finally:
        worker.stop()


async def test_ids_too_long_or_with_control_characters_are_dead_lettered(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w")
    t = int(time.time() * 1000) - 5 * MINUTE_MS
    too_long = orjson.dumps(view("x" * 300, t, 1))
    escape = orjson.dumps(view("p\x1b[31mred", t, 2))
    good = orjson.dumps(view("p-good", t, 3))
    await produce(kafka_bootstrap, env.topic, [(0, too_long), (0, escape), (0, good)])
    worker = Worker(env).start()
    try:
        await wait_drained(worker)
        assert worker.alive()
        dead = {value: dict(headers) for *_, value, headers in await read_topic(
            kafka_bootstrap, env.dlq_topic)}  # fmt: skip
        assert set(dead) == {too_long, escape}  # original bytes kept
        assert dead[too_long]["x-dlq-reason"] == b"id_too_long"
        detail = dead[too_long]["x-dlq-detail"].decode()
        assert "product_id" in detail and "300" in detail and "256" in detail
        assert dead[escape]["x-dlq-reason"] == b"control_character"
        detail = dead[escape]["x-dlq-detail"].decode()
        assert "product_id" in detail and "U+001B" in detail
        assert await fetch_windows(env.web_url, "p-good") == windows_holding(t, (1, 0, 0))
        assert "\x1b" not in worker.log()
    finally:
        worker.stop()


async def test_an_event_behind_a_utf8_byte_order_mark_is_counted(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w")
    t = int(time.time() * 1000) - 5 * MINUTE_MS
    raw = b"\xef\xbb\xbf" + orjson.dumps(view("p-bom", t, 1))
    await produce(kafka_bootstrap, env.topic, [(0, raw)])
    worker = Worker(env).start()
    try:
        await wait_drained(worker)
        assert await fetch_windows(env.web_url, "p-bom") == windows_holding(t, (1, 0, 0))
        assert await read_topic(kafka_bootstrap, env.dlq_topic) == []
        assert parquet_rows(env, "p-bom") == 1
    finally:
        worker.stop()
