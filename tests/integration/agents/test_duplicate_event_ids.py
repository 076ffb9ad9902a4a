"""A producer's retry (the same event_id sent again) is counted once by a real worker."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.support.kafka import produce
from tests.support.web_api import fetch_windows
from tests.support.worker import Worker, WorkerEnv, alerts_of, read_topic, wait_drained

MINUTE_MS = 60_000


def view(t_ms: int, i: int) -> bytes:
    return orjson.dumps({"event_id": f"retry-{i}", "user_id": f"u{i}", "product_id": "p-retry",
                         "event_type": "view", "timestamp": t_ms + i})  # fmt: skip


async def test_60_views_sent_twice_count_60_and_raise_no_alert_across_a_restart(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Issue 14. The copies come after the worker restarted (so the ids seen must come back
    from the changelog), half on the same input partition, half on the other one."""
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w", partitions=2)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(env.topic, 2, 1)])
    await admin.close()
    t = int(time.time() * 1000) - 30_000
    t -= t % MINUTE_MS  # the 60 views share one slice: 10 windows of 60 views each
    await produce(kafka_bootstrap, env.topic, [(0, view(t, i)) for i in range(60)])
    worker = Worker(env).start()
    try:
        await wait_drained(worker)
    finally:
        worker.stop()
    copies: list[tuple[int | None, bytes]] = [(0 if i < 30 else 1, view(t, i)) for i in range(60)]
    await produce(kafka_bootstrap, env.topic, copies)
    worker = Worker(env, "restarted").start()
    try:
        await wait_drained(worker)
        expected = {t - k * MINUTE_MS: (60, 0, 0) for k in range(10)}
        assert await fetch_windows(env.web_url, "p-retry") == expected
        alerts = alerts_of(await read_topic(kafka_bootstrap, env.alerts_topic))
        assert [a for a in alerts if a["product_id"] == "p-retry"] == []
    finally:
        worker.stop()
