"""The producer-side limit: pre-encoded events sent by a bare aiokafka producer, nothing else.

The simulator's baseline. Same delivery settings as `clickstream simulate` (acks=all,
idempotent, ~1 MB record batches built with aiokafka's BatchBuilder and sent whole), but the
events are generated and JSON-encoded before the clock starts: what is left is the cost of
getting bytes into the broker from Python on this machine.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from app.simulator.wire import TimestampFormatter
from bench.probes import create_topic

MAX_BATCH_BYTES = 1_000_000
TYPES = ("view",) * 90 + ("add_to_cart",) * 7 + ("purchase",) * 3


def encoded_messages(
    events: int, batch_size: int, products: int = 10_000
) -> list[tuple[bytes, bytes]]:
    """Simulator-shaped (key, value) pairs: one event per message, or arrays of `batch_size`."""
    rng = random.Random(1)
    stamp = TimestampFormatter()
    now_ms = int(time.time() * 1000)
    records: list[dict[str, Any]] = [
        {"event_id": f"raw-{n}", "user_id": f"U{rng.randrange(1000):04d}",
         "session_id": f"sess-{n // 8}", "product_id": f"P{rng.randrange(products):05d}",
         "product_category": "accessories", "event_type": rng.choice(TYPES),
         "timestamp": stamp.format(now_ms + n // 10), "price": 19.99}
        for n in range(events)
    ]  # fmt: skip
    return [
        (records[i]["product_id"].encode(), orjson.dumps(records[i] if batch_size == 1
                                                          else records[i : i + batch_size]))
        for i in range(0, events, batch_size)
    ]  # fmt: skip


async def send_all(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> float:
    """Seconds from the first append until the broker acknowledged every message."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=10,
        max_batch_size=MAX_BATCH_BYTES, max_request_size=MAX_BATCH_BYTES + 48_576,
    )  # fmt: skip
    await producer.start()
    try:
        acks: list[asyncio.Future[Any]] = []
        began = time.perf_counter()
        builder = producer.create_batch()
        for key, value in messages:
            if builder.append(key=key, value=value, timestamp=None) is None:
                acks.append(await producer.send_batch(builder, topic, partition=0))
                builder = producer.create_batch()
                builder.append(key=key, value=value, timestamp=None)
        acks.append(await producer.send_batch(builder, topic, partition=0))
        await asyncio.gather(*acks)
        return time.perf_counter() - began
    finally:
        await producer.stop()


def run(bootstrap: str, events: int = 1_000_000, batch_size: int = 1) -> dict[str, float]:
    """Events/s of the bare producer into a fresh one-partition topic."""
    messages = encoded_messages(events, batch_size)

    async def measure() -> float:
        topic = await create_topic(bootstrap, f"bench-raw-producer-b{batch_size}", 1)
        return await send_all(bootstrap, topic, messages)

    seconds = asyncio.run(measure())
    return {"events": events, "batch_size": batch_size, "seconds": round(seconds, 2),
            "events_per_s": round(events / seconds)}  # fmt: skip
