"""A real worker whose webhook hangs: counting goes on, /health says why, nothing restarts, and
the incidents its own window stage opened are each delivered once when the receiver answers."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.support.notifier import Receiver, delivery_id, until
from tests.support.worker import Worker, WorkerEnv, alerts_of, read_topic, serving


async def produce_views(bootstrap: str, topic: str, product: str, count: int) -> None:
    """`count` views of `product` within the current minute: its windows alert."""
    now = int(time.time() * 1000)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i in range(count):
            event = {"user_id": f"u{i}", "product_id": product, "event_type": "view",
                     "timestamp": now - i}  # fmt: skip
            await producer.send(topic, orjson.dumps(event), key=product.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def health(env: WorkerEnv) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(f"{env.web_url}/health") as response,
    ):
        return response.status, await response.json()


async def metrics(env: WorkerEnv) -> str:
    async with aiohttp.ClientSession() as session, session.get(f"{env.web_url}/metrics") as r:
        return await r.text()


async def alerted_products(env: WorkerEnv) -> set[object]:
    return {a["product_id"] for a in alerts_of(await read_topic(env.bootstrap, env.alerts_topic))}


async def opened_ids(env: WorkerEnv, incidents_topic: str) -> list[str]:
    """Delivery ids of the incident opens the worker's own window stage published."""
    records = alerts_of(await read_topic(env.bootstrap, incidents_topic))
    return [delivery_id(r) for r in records if r["event"] == "opened"]


@pytest.mark.slow
async def test_a_hanging_webhook_never_stops_counting_and_health_says_so(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    receiver = await Receiver(answer=lambda _id: "hang").start()
    incidents_topic = f"incidents-{uuid.uuid4().hex[:8]}"
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w", extra={
        "INCIDENTS_TOPIC": incidents_topic, "ALERT_WEBHOOK_URL": receiver.url,
        "STALL_SECONDS": "6",  # the watchdog would act soon: it must leave the notifier alone
    })  # fmt: skip
    await produce_views(kafka_bootstrap, env.topic, "flashA", 101)
    webhook_problem = f"webhook notifications to http://127.0.0.1:{receiver.port} are failing"
    worker = Worker(env).start()
    try:

        async def reported() -> bool:
            try:
                _, body = await health(env)
            except (aiohttp.ClientError, TimeoutError):
                return False
            return any(p.startswith(webhook_problem) for p in body["problems"])

        # flashA's incident opens; its notification gets no answer within the webhook timeout
        # (10 s): /health says so.
        await until(reported, "/health reports the webhook", timeout=120, every=0.5)
        assert "flashA" in await alerted_products(env)
        # Counting goes on while the webhook hangs: another flash sale alerts and opens its own
        # incident.
        await produce_views(kafka_bootstrap, env.topic, "flashB", 101)

        async def flash_b_opened() -> bool:
            return (
                "flashB" in await alerted_products(env)
                and len(await opened_ids(env, incidents_topic)) == 2
            )

        await until(flash_b_opened, "flashB alerted and its incident opened", every=0.5)
        status, body = await health(env)
        assert status == 503 and body["stalled"] == {}, body
        (problem,) = body["problems"]
        assert problem.startswith(webhook_problem) and "no answer within 10 s" in problem
        assert 'clickstream_notification_channel_failing{channel="webhook"} 1' in await metrics(env)
        assert len(receiver.hits) >= 1 and worker.alive()
        assert "stalled on this worker" not in worker.log()

        expected = sorted(await opened_ids(env, incidents_topic))  # one per product
        assert [i.split(":")[0] for i in expected] == ["flashA", "flashB"]
        receiver.release()  # the attempt under way is answered now
        await until(lambda: sorted(receiver.delivered()) == expected, "both opens delivered")
        await until(lambda: serving(env), "/health is 200 again", every=0.5)
    finally:
        worker.stop()
        await receiver.stop()
    assert sorted(receiver.delivered()) == expected  # each once
