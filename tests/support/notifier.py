"""Helpers for the notifier tests: incident records on a real topic, a real webhook receiver."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer

from agents.notify_consumer import IncidentNotifier
from app.kafka.broker import free_port
from app.notify.retry import Backoff, Channel
from app.time_format import iso_utc_ms as iso_utc
from tests.support.worker import group_lag

T0_MS = 1_764_489_600_000  # 2025-11-30 08:00 UTC
MIN_MS = 60_000
FAST = Backoff(first=0.05, cap=0.2)


def iso(ms: int) -> str:
    return iso_utc(ms)


def incident(
    product: str, event: str, sequence: int, *, windows: int = 1, views: int = 140,
    purchases: int = 2, resolution: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """An incident record as the incident stage publishes it."""
    start = T0_MS
    latest = start + (windows - 1) * MIN_MS
    resolved = event == "resolved"
    return {
        "incident_id": f"{product}:{start}", "event": event, "sequence": sequence,
        "product_id": product, "status": "resolved" if resolved else "open",
        "opened_at": iso(start + 10 * MIN_MS + 1234),
        "first_window_start": iso(start), "first_window_end": iso(start + 10 * MIN_MS),
        "latest_window_start": iso(latest), "latest_window_end": iso(latest + 10 * MIN_MS),
        "windows": windows, "peak_views": views, "purchases": purchases,
        "views_threshold": 100, "purchases_threshold": 5,
        "emitted_at": iso(start + 11 * MIN_MS),
        "resolved_at": iso(latest + 20 * MIN_MS) if resolved else None,
        "resolution": (resolution or "quiet") if resolved else None,
    }  # fmt: skip


def delivery_id(record: dict[str, Any]) -> str:
    return f"{record['incident_id']}/{record['sequence']}"


def burst(product: str, windows: int = 3) -> list[dict[str, Any]]:
    """One flash sale's records: opened, updated, resolved."""
    return [
        incident(product, "opened", 0),
        incident(product, "updated", 1, windows=2, views=160),
        incident(product, "resolved", 2, windows=windows, views=180, purchases=4),
    ]


async def produce_incidents(
    bootstrap: str, topic: str, records: Sequence[dict[str, Any] | bytes],
    aborted: Sequence[dict[str, Any]] = (),
) -> None:  # fmt: skip
    """Send `records` in one committed transaction (as the incident stage does), then
    `aborted` in a transaction that is aborted: a read_committed reader never sees those."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, transactional_id=f"incidents-{uuid.uuid4().hex[:8]}",
        acks="all", enable_idempotence=True,
    )  # fmt: skip
    await producer.start()
    try:
        async with producer.transaction():
            for record in records:
                if isinstance(record, bytes):
                    await producer.send(topic, record, key=b"junk")
                else:
                    key = str(record["product_id"]).encode()
                    await producer.send(topic, orjson.dumps(record), key=key)
        if aborted:
            await producer.begin_transaction()
            for record in aborted:
                await producer.send(topic, orjson.dumps(record), key=b"aborted")
            await producer.abort_transaction()
    finally:
        await producer.stop()


@dataclass
class Hit:
    """One request the receiver got: its delivery id, headers, exact body, and our answer."""

    delivery_id: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None  # None: never answered (it hung)


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 taking webhook POSTs at /hook.

    `answer(delivery_id)` picks the status for each request; "hang" holds it, as a receiver
    that accepts and never answers, until `release()`.
    """

    port: int = field(default_factory=free_port)
    answer: Callable[[str], int | str] = lambda _id: 200
    hits: list[Hit] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def delivered(self) -> list[str]:
        """Delivery ids answered 2xx, in order."""
        return [h.delivery_id for h in self.hits if h.status is not None and h.status < 300]

    async def _hook(self, request: web.Request) -> web.Response:
        hit = Hit(request.headers.get("X-Clickstream-Delivery", ""), dict(request.headers),
                  await request.read())  # fmt: skip
        self.hits.append(hit)
        answer = self.answer(hit.delivery_id)
        if answer == "hang":
            await self._released.wait()
            if request.transport is None or request.transport.is_closing():
                return web.Response(status=503)  # the client gave up: it reads no answer
            answer = 200
        hit.status = int(answer)
        return web.Response(status=hit.status, text="ok" if hit.status < 300 else "bad payload")

    def release(self) -> None:
        """Answer every later request 200, and the hanging ones whose client still waits."""
        self.answer = lambda _id: 200
        self._released.set()

    async def start(self) -> Receiver:
        application = web.Application()
        application.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(application, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()


async def until(
    check: Callable[[], bool | Awaitable[bool]], what: str, timeout: float = 60.0,
    every: float = 0.05,
) -> None:  # fmt: skip
    """Wait until `check()` holds, asking `every` seconds; the timeout only guards against a
    hang."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(every)


async def drained(bootstrap: str, group: str, topic: str) -> bool:
    return await group_lag(bootstrap, group, topic) == 0


@contextlib.asynccontextmanager
async def running(
    bootstrap: str, topic: str, channels: Sequence[Channel], state_dir: Path,
    group: str | None = None, **options: Any,
) -> AsyncIterator[IncidentNotifier]:  # fmt: skip
    """An `IncidentNotifier` in this process, stopped (cleanly) at the end."""
    options.setdefault("backoff", FAST)
    notifier = IncidentNotifier(bootstrap, topic, group or f"notifier-{uuid.uuid4().hex[:8]}",
                                channels, state_dir, **options)  # fmt: skip
    await notifier.start()
    try:
        yield notifier
    finally:
        await notifier.stop()
