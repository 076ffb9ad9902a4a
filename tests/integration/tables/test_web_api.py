"""The web API of a real worker on a real broker, held to an independent recount of known input."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from tests.support.kafka import produce
from tests.support.streaming_cases import edge_cases
from tests.support.web_api import (
    TOKEN,
    check_alerts,
    check_top,
    check_windows,
    expected_live_windows,
    get,
    get_ok,
    prometheus_samples,
    wait_ready,
)
from tests.support.window_oracle import WindowOracle, timestamp_ms
from tests.support.worker import Worker, WorkerEnv, wait_drained

BAD_INPUT = [b"not json", b'{"user_id": "u1", "event_type": "view", "timestamp": 1}', b"[1]"]


async def check_metrics_and_health(
    base: str, events: list[dict[str, object]], oracle: WindowOracle
) -> None:
    lags = [
        f'clickstream_consumer_lag{{stage="{stage}"}}' for stage in ("ingest", "windows", "alerts")
    ]
    deadline = time.monotonic() + 30  # the broker is probed every 5 s: wait for a fresh look
    while True:
        status, text, content_type = await get(base, "/metrics", TOKEN)
        assert status == 200 and content_type == "text/plain"
        samples = prometheus_samples(text)
        if all(samples.get(lag) == 0 for lag in lags) or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    by_type = Counter(str(e["event_type"]) for e in events)
    for kind in ("view", "add_to_cart", "purchase"):
        assert samples[f'clickstream_events_total{{type="{kind}"}}'] == by_type[kind]
    dlq = sum(v for k, v in samples.items() if k.startswith("clickstream_dlq_total{"))
    assert dlq == len(BAD_INPUT)
    assert samples["clickstream_late_events_total"] == oracle.late
    assert samples["clickstream_alerts_total"] == len(oracle.alerts)
    for lag in lags:
        assert samples[lag] == 0
    assert samples["clickstream_window_table_slices"] > 0
    assert "clickstream_events_per_second" in samples
    health = await get_ok(base, "/health", TOKEN)
    assert health["status"] == "ok" and health["broker"]["reachable"] is True
    assert health["consumer_lag"] == {"ingest": 0, "windows": 0, "alerts": 0}
    assert timestamp_ms(health["last_event_time"]) == max(oracle.max_seen.values())


async def check_bad_requests(base: str) -> None:
    bad = [
        "/api/top?metric=clicks", "/api/top?limit=0", "/api/top?limit=101", "/api/top?limit=x",
        "/api/top?limit=-1", "/api/top?limit=1e3", "/api/top?lmit=5", "/api/alerts?limit=0",
        "/api/alerts?limit=1001", "/api/alerts?limit=%00", "/health?verbose=1",
        f"/api/products/{'x' * 300}/windows", "/api/internal/top?window_start=1&metric=views",
        "/api/internal/top?window_start=abc",
    ]  # fmt: skip
    for path in bad:
        status, body, content_type = await get(base, path, TOKEN)
        assert (status, content_type) == (400, "application/json"), (path, status, body)
        assert body["error"], path
    for path in ("/api/nope", "/api/products/p1", "/static/../app/settings.py", "/static/x.js"):
        status, body, content_type = await get(base, path, TOKEN)
        assert (status, content_type) == (404, "application/json"), (path, status, body)
    status, body, _ = await get(base, "/api/top", TOKEN, method="POST")
    assert status == 405 and body["error"]


async def check_token_rule(base: str) -> None:
    for path in ("/api/top", "/api/alerts", "/api/products/p101/windows", "/health", "/metrics"):
        assert (await get(base, path))[0] == 401, path
        assert (await get(base, path, "wrong"))[0] == 401, path
    status, body, _ = await get(base, f"/api/alerts?limit=1&token={TOKEN}")
    assert status == 200 and "alerts" in body
    for path in ("/", "/static/dashboard.js", "/static/dashboard.css"):
        assert (await get(base, path))[0] == 200, path


async def committed_event_times(env: WorkerEnv) -> dict[int, int]:
    """The newest event time per input partition that the ingest group's commits carry."""
    admin = AIOKafkaAdminClient(bootstrap_servers=env.bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(f"{env.app_id}-ingest")
    finally:
        await admin.close()
    seen = {
        tp.partition: orjson.loads(m.metadata or "{}").get("max_seen_ms")
        for tp, m in committed.items()
    }
    return {p: int(t) for p, t in seen.items() if t is not None}


@pytest.mark.slow
async def test_every_answer_equals_the_recount_also_after_a_restart(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w", extra={"WEB_TOKEN": TOKEN})
    events = edge_cases()
    messages = [(0, orjson.dumps(e)) for e in events] + [(0, raw) for raw in BAD_INPUT]
    await produce(kafka_bootstrap, env.topic, messages)
    oracle = WindowOracle().feed_all((0, e) for e in events)
    assert len(expected_live_windows(oracle)) > 20  # enough products for the window checks
    worker = Worker(env).start()
    try:
        await wait_drained(worker)
        await wait_ready(worker, TOKEN)
        base = env.web_url
        await check_windows(base, oracle, TOKEN)
        await check_top(base, oracle)
        await check_alerts(base, oracle)
        await check_metrics_and_health(base, events, oracle)
        await check_bad_requests(base)
        await check_token_rule(base)
    finally:
        worker.stop()
    # Right after a restart nothing new arrives: the answers come from the recovered tables.
    restarted = Worker(env, "restarted").start()
    try:
        await wait_ready(restarted, TOKEN)
        await check_windows(env.web_url, oracle, TOKEN)
        await check_alerts(env.web_url, oracle)
        if await committed_event_times(env):
            await check_top(env.web_url, oracle)
        else:  # the ingest commit lost its event time: no window is known, none is guessed
            body = await get_ok(env.web_url, "/api/top", TOKEN)
            assert (body["window_start"], body["products"]) == (None, [])
    finally:
        restarted.stop()
