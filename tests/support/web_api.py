"""Talking to a worker's web server in tests, and what the oracle says it must answer."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from tests.support.window_oracle import WindowOracle, timestamp_ms
from tests.support.worker import Worker

RETENTION_MS = 3600_000
METRICS = ("views", "add_to_cart", "purchases")
TOKEN = "s3cret-token"  # WEB_TOKEN of the workers that test the token rule


async def get(
    base: str, path: str, token: str | None = None, method: str = "GET"
) -> tuple[int, Any, str]:
    """(status, parsed JSON body or None, content type) of one request."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, base + path, headers=headers) as response,
    ):
        text = await response.text()
        try:
            body = await response.json(content_type=None)
        except ValueError:
            body = None
        return response.status, body if body is not None else text, response.content_type


async def get_ok(base: str, path: str, token: str | None = None) -> Any:
    status, body, _ = await get(base, path, token)
    assert status == 200, f"{path}: {status} {body}"
    return body


async def wait_ready(worker: Worker, token: str | None, timeout: float = 180.0) -> None:
    """Until /health says ok and /api/top answers for every partition (no rebalance on)."""
    base = worker.env.web_url
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        assert worker.alive(), f"worker died:\n{worker.log()[-3000:]}"
        try:
            health = await get(base, "/health", token)
            top = await get(base, "/api/top", token)
            if health[0] == 200 and top[0] == 200:
                return
            last = (health[:2], top[:2])
        except aiohttp.ClientError as exc:
            last = exc
        await asyncio.sleep(0.5)
    raise AssertionError(f"worker not ready in {timeout}s: {last}\n{worker.log()[-3000:]}")


def oracle_watermark(oracle: WindowOracle) -> int:
    """The deployment's watermark once all input is in: the slowest input partition's."""
    return min(oracle.max_seen.values()) - oracle.lateness


def expected_live_windows(oracle: WindowOracle) -> dict[str, dict[int, tuple[int, int, int]]]:
    """Windows not yet expired: those whose end the watermark passed less than 1 h ago."""
    watermark = oracle_watermark(oracle)
    lowest = watermark - oracle.size
    oldest = -((-lowest) // oracle.step) * oracle.step - RETENTION_MS
    live: dict[str, dict[int, tuple[int, int, int]]] = {}
    for (product, start), counts in oracle.windows.items():
        if start >= oldest and any(counts):
            live.setdefault(product, {})[start] = (counts[0], counts[1], counts[2])
    return live


async def fetch_windows(
    base: str, product: str, token: str | None = None
) -> dict[int, tuple[int, int, int]]:
    """Window start ms -> (views, add_to_cart, purchases), as the product's windows answer."""
    body = await get_ok(base, f"/api/products/{product}/windows", token)
    return {
        timestamp_ms(w["window_start"]): (w["views"], w["add_to_cart"], w["purchases"])
        for w in body["windows"]
    }


async def check_windows(base: str, oracle: WindowOracle, token: str | None = None) -> None:
    """Every product the oracle counted: the API lists exactly its live windows, with the
    recount's counts, times in UTC and `qualifies` as the alert rule decides it."""
    live = expected_live_windows(oracle)
    for product in sorted({p for p, _ in oracle.windows}):
        body = await get_ok(base, f"/api/products/{product}/windows", token)
        got = {
            timestamp_ms(w["window_start"]): (w["views"], w["add_to_cart"], w["purchases"])
            for w in body["windows"]
        }
        assert got == live.get(product, {}), product
        for w in body["windows"]:
            assert w["window_start"].endswith("Z") and w["window_end"].endswith("Z")
            qualifies = w["views"] > oracle.views and w["purchases"] < oracle.purchases
            assert w["qualifies"] == qualifies, (product, w)


def expected_top(oracle: WindowOracle, metric: str, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """(window start, ranked products) of the newest window the watermark has closed."""
    watermark = oracle_watermark(oracle)
    start = watermark - 1 - oracle.size
    start -= start % oracle.step
    index = METRICS.index(metric)
    rows = [
        (product, counts)
        for (product, window), counts in oracle.windows.items()
        if window == start and counts[index] > 0
    ]
    rows.sort(key=lambda row: (-row[1][index], row[0]))
    ranked = [
        {"rank": n, "product_id": p, "views": c[0], "add_to_cart": c[1], "purchases": c[2]}
        for n, (p, c) in enumerate(rows[:limit], 1)
    ]
    return start, ranked


def prometheus_samples(text: str) -> dict[str, float]:
    """`name{labels}` -> value of every sample line in a Prometheus text exposition."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


async def check_top(base: str, oracle: WindowOracle) -> None:
    for metric in METRICS:
        for limit in (1, 5, 100):
            start, ranked = expected_top(oracle, metric, limit)
            body = await get_ok(base, f"/api/top?metric={metric}&limit={limit}", TOKEN)
            assert timestamp_ms(body["window_start"]) == start
            assert timestamp_ms(body["window_end"]) == start + oracle.size
            assert timestamp_ms(body["watermark"]) > timestamp_ms(body["window_end"])
            assert body["products"] == ranked, (metric, limit)
            assert body["metric"] == metric and "watermark" in body["complete_window"]
    assert (await get_ok(base, "/api/top", TOKEN))["products"] == expected_top(oracle, "views", 5)[
        1
    ]


async def check_alerts(base: str, oracle: WindowOracle) -> None:
    deadline = time.monotonic() + 60
    alerts: list[dict[str, Any]] = []
    while len(alerts) < len(oracle.alerts) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)  # each worker reads the alerts topic on its own
        alerts = (await get_ok(base, "/api/alerts?limit=1000", TOKEN))["alerts"]
    got = {
        (a["product_id"], timestamp_ms(a["window_start"])): (
            a["views"], a["add_to_cart"], a["purchases"],
        )
        for a in alerts
    }  # fmt: skip
    assert got == oracle.alerts and len(alerts) == len(oracle.alerts)
    order = [(a["detected_at"], a["window_start"], a["alert_id"]) for a in alerts]
    assert order == sorted(order, reverse=True)
    assert (await get_ok(base, "/api/alerts?limit=3", TOKEN))["alerts"] == alerts[:3]
    assert len((await get_ok(base, "/api/alerts", TOKEN))["alerts"]) == min(50, len(alerts))
