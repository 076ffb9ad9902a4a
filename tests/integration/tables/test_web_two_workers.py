"""Two real workers in one group, four partitions: either one answers for every product."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.support.kafka import produce
from tests.support.streaming_cases import edge_cases
from tests.support.web_api import (
    TOKEN,
    check_alerts,
    check_top,
    check_windows,
    expected_live_windows,
    get_ok,
    wait_ready,
)
from tests.support.window_oracle import WindowOracle, timestamp_ms
from tests.support.worker import Worker, WorkerEnv, wait_drained


@pytest.mark.slow
async def test_both_workers_answer_for_every_product(kafka_bootstrap: str, tmp_path: Path) -> None:
    first = WorkerEnv(kafka_bootstrap, tmp_path / "a", partitions=4, extra={"WEB_TOKEN": TOKEN})
    second = first.sibling(tmp_path / "b")
    events = edge_cases(seed=5)
    await produce(kafka_bootstrap, first.topic, [(0, orjson.dumps(e)) for e in events])
    oracle = WindowOracle().feed_all((0, e) for e in events)
    workers = [Worker(first, "a").start(), Worker(second, "b").start()]
    try:
        for worker in workers:
            await wait_ready(worker, TOKEN)
        await wait_drained(workers[0])
        owned = [
            set((await get_ok(w.env.web_url, "/health", TOKEN))["partitions"]) for w in workers
        ]
        assert owned[0] and owned[1], f"one worker holds every partition: {owned}"
        assert owned[0] | owned[1] == {0, 1, 2, 3} and not owned[0] & owned[1]
        live = expected_live_windows(oracle)
        assert len(live) > 20  # enough products for the window checks
        for worker in workers:
            for product in sorted(live):  # the series is routed to the owner like the windows
                series = await get_ok(worker.env.web_url, f"/api/products/{product}/series", TOKEN)
                got = {timestamp_ms(w["window_start"]): (w["views"], w["add_to_cart"],
                       w["purchases"]) for w in series["windows"]}  # fmt: skip
                assert got == live[product], product
            await check_windows(worker.env.web_url, oracle, TOKEN)
            await check_top(worker.env.web_url, oracle)
            await check_alerts(worker.env.web_url, oracle)
        status = await get_ok(first.web_url, "/api/status", TOKEN)
        assert (status["workers"], status["partial"]) == (2, False)
    finally:
        for worker in workers:
            worker.stop()
