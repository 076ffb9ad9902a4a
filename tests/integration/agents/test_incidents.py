"""Incidents on INCIDENTS_TOPIC from a real worker against the independent incident oracle,
also across kill -9 in the middle of the bursts."""

from __future__ import annotations

import asyncio
import random
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.incident_cases import (
    MIN,
    T0,
    Event,
    burst,
    filler,
    scenarios,
    summary_of_records,
)
from tests.support.incident_oracle import IncidentOracle
from tests.support.kafka import produce
from tests.support.streaming_cases import stamp
from tests.support.worker import (
    Worker,
    WorkerEnv,
    alerts_of,
    drain_like_a_supervisor,
    read_topic,
    wait_drained,
)

pytestmark = pytest.mark.slow


def as_json(events: list[Event]) -> list[tuple[int, bytes]]:
    return [
        (0, orjson.dumps({"user_id": f"u{i % 97}", "product_id": product, "event_type": kind,
                          "timestamp": stamp(t, i % 5)}))
        for i, (product, kind, t) in enumerate(events)
    ]  # fmt: skip


def every_case() -> list[Event]:
    """The hand-made cases one after another, each product renamed per case, time-ordered."""
    events: list[Event] = []
    for n, case in enumerate(scenarios().values()):
        offset = n * 120 * MIN
        events += [(f"{product}-{n}", kind, t + offset) for product, kind, t in case]
    return sorted(events, key=lambda e: e[2])


def oracle_of(events: list[Event]) -> IncidentOracle:
    oracle = IncidentOracle()
    for event in events:
        oracle.feed(*event)
    return oracle


async def incident_records(env: WorkerEnv) -> list[dict[str, Any]]:
    return alerts_of(await read_topic(env.bootstrap, env.incidents_topic))


def check_records(records: list[dict[str, Any]]) -> None:
    """Each incident: one open first, sequences 0, 1, 2, ... once each, at most one resolve,
    and it last."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_id.setdefault(record["incident_id"], []).append(record)
    for incident_id, own in by_id.items():
        assert [r["sequence"] for r in own] == list(range(len(own))), incident_id
        assert own[0]["event"] == "opened", incident_id
        events = Counter(r["event"] for r in own)
        assert events["opened"] == 1 and events["resolved"] <= 1, incident_id
        assert all(r["event"] != "resolved" for r in own[:-1]), incident_id


async def test_incidents_equal_the_oracle_and_the_console_prints_one_table_each(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    events = every_case()
    oracle = oracle_of(events)
    assert {s[1] for s in oracle.summary()} == {"quiet", "purchases", None}
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w", extra={"INCIDENT_UPDATE_SECONDS": "0"})
    await produce(kafka_bootstrap, env.topic, as_json(events))
    worker = Worker(env).start()
    try:
        await wait_drained(worker)
        records = await incident_records(env)
        check_records(records)
        assert summary_of_records(records) == oracle.summary()
        final = {r["incident_id"]: r for r in records}
        for incident in oracle.resolved:
            if incident.resolution == "quiet":  # every window closed: final counts
                got = final[incident.incident_id]
                assert (got["peak_views"], got["purchases"]) == (
                    incident.peak_views,
                    incident.purchases,
                )
        log = worker.log()
        assert log.count("FLASH SALE INCIDENT OPENED") == len(oracle.summary())
        assert log.count("FLASH SALE INCIDENT RESOLVED") == len(oracle.resolved)
        assert "FLASH SALE ALERT" not in log
    finally:
        worker.stop()


async def test_kill_9_during_bursts_no_second_open_no_lost_resolve(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    rng = random.Random(11)
    events = filler(T0, T0 + 240 * MIN, 400, products=50)
    for n in range(40):
        events += burst(f"hot-{n % 13}", T0 + rng.randrange(200) * MIN, 110 + rng.randrange(120))
    events.sort(key=lambda e: e[2])
    oracle = oracle_of(events)
    env = WorkerEnv(
        kafka_bootstrap,
        tmp_path / "w",
        extra={"CONSOLE_ALERTS": "windows", "SINK_FLUSH_SECONDS": "2"},
    )
    await produce(kafka_bootstrap, env.topic, as_json(events))
    worker = Worker(env).start()
    try:
        for kill in range(2):
            while "windows: partition" not in worker.log():
                assert worker.alive(), worker.log()[-3000:]
                await asyncio.sleep(0.1)
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            worker.kill(signal.SIGKILL)
            (env.data_dir / "worker.log").rename(env.data_dir / f"worker-{kill}.log")
            worker = Worker(env).start()
        worker = await drain_like_a_supervisor(worker)
        records = await incident_records(env)
        check_records(records)
        assert summary_of_records(records) == oracle.summary()
        assert "FLASH SALE ALERT" in worker.log() or any(
            "FLASH SALE ALERT" in p.read_text() for p in env.data_dir.glob("worker-*.log")
        )
    finally:
        worker.stop()
