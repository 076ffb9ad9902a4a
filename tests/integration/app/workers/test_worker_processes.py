"""`clickstream worker --processes 2`: two real worker processes share every stage's partitions,
and one of them killed with -9 mid-stream is restarted without losing or doubling anything."""

from __future__ import annotations

import asyncio
import copy
import os
import random
import signal
import zlib
from collections import Counter
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError
from aiokafka.protocol.group import MemberAssignment

from app.kafka.partitioner import kafka_partition
from app.product_batches import ProductBatch
from tests.support.kafka import create_topic
from tests.support.streaming_cases import shop_events
from tests.support.web_api import check_windows
from tests.support.window_oracle import WindowOracle, timestamp_ms
from tests.support.worker import (
    SupervisedWorkers,
    WorkerEnv,
    alerts_of,
    parquet_rows,
    read_topic,
    serving,
    wait_drained,
)

pytestmark = pytest.mark.slow
INPUT_PARTITIONS = 4
STAGES = ("ingest", "windows", "alert-sink")


async def owners(env: WorkerEnv) -> dict[str, list[frozenset[int]]]:
    """Per stage, the partitions each member of its consumer group owns (empty ones left out)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=env.bootstrap)
    await admin.start()
    try:
        groups = [f"{env.app_id}-{stage}" for stage in STAGES]
        described = {}
        for stage, group in zip(STAGES, groups, strict=True):
            (response,) = await admin.describe_consumer_groups([group])
            owned = []
            for info in response.to_object()["groups"]:
                for member in info["members"]:
                    if member["member_assignment"]:
                        assignment = MemberAssignment.decode(member["member_assignment"])
                        parts = frozenset(p for _, ps in assignment.assignment for p in ps)
                        if parts:
                            owned.append(parts)
            described[stage] = owned
        return described
    finally:
        await admin.close()


async def by_process(env: WorkerEnv, stage: str) -> dict[str, frozenset[int]]:
    """A stage's partitions per worker process (its web URL, from the member's client id)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=env.bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([f"{env.app_id}-{stage}"])
        out = {}
        for info in response.to_object()["groups"]:
            for member in info["members"]:
                url = member["client_id"].partition("@")[2]
                parts: frozenset[int] = frozenset()
                if member["member_assignment"]:
                    assignment = MemberAssignment.decode(member["member_assignment"])
                    parts = frozenset(p for _, ps in assignment.assignment for p in ps)
                out[url] = parts
        return out
    finally:
        await admin.close()


async def wait_shared(workers: SupervisedWorkers, count: int) -> dict[str, list[frozenset[int]]]:
    """Until every stage's partitions are split between `count` members (both processes)."""
    for _ in range(900):
        assert workers.alive(), workers.log()[-3000:]
        try:
            split = await owners(workers.env)
        except GroupCoordinatorNotAvailableError:  # a fresh broker still creating its offsets
            split = {}
        if split and all(len(members) == count for members in split.values()):
            return split
        await asyncio.sleep(0.2)
    msg = f"partitions never split between {count}: {split}\n{workers.log()[-3000:]}"
    raise AssertionError(msg)


async def wait_both_serving(workers: SupervisedWorkers) -> None:
    """Until both processes' /health answers 200: in their groups, partitions recovered."""
    second = copy.copy(workers.env)
    second.web_port = workers.env.web_port + 1
    for _ in range(900):
        assert workers.alive(), workers.log()[-3000:]
        if await serving(workers.env) and await serving(second):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the processes never both served:\n{workers.log()[-3000:]}")


async def produce_keyed(
    bootstrap: str, topic: str, placed: list[tuple[int, dict[str, object]]], after: asyncio.Event
) -> None:
    """A live stream (about 2,000 events/s) until `after` is set (the kill), then the rest."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=5)  # fmt: skip
    await producer.start()
    try:
        for i, (partition, event) in enumerate(placed):
            if i % 100 == 0 and not after.is_set():
                await asyncio.sleep(0.05)
            key = str(event["product_id"]).encode()
            await producer.send(topic, orjson.dumps(event), key=key, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


async def test_two_processes_share_the_work_and_survive_a_kill_9(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w", partitions=4)
    await create_topic(kafka_bootstrap, env.topic, INPUT_PARTITIONS)
    events = shop_events(40_000, seed=19)
    # Keyed by product, as the simulator sends: one product's events stay in one partition.
    placed = [(zlib.crc32(str(e["product_id"]).encode()) % INPUT_PARTITIONS, e) for e in events]
    oracle = WindowOracle().feed_all(placed)
    assert len(oracle.alerts) > 20  # the input really alerts
    killed = asyncio.Event()
    producing = asyncio.create_task(produce_keyed(kafka_bootstrap, env.topic, placed, killed))
    workers = SupervisedWorkers(env, processes=2).start()
    try:
        split = await wait_shared(workers, 2)
        for stage, members in split.items():  # each process owns its own partitions
            assert not members[0] & members[1], (stage, members)
        victim = workers.child_pids()[2][-1]
        os.kill(victim, signal.SIGKILL)
        killed.set()
        await producing
        while len(workers.child_pids()[2]) < 2:  # the supervisor starts it again
            assert workers.alive(), workers.log()[-3000:]
            await asyncio.sleep(0.2)
        assert f"(pid {victim}) exited with signal SIGKILL; restarting it" in workers.log()
        await wait_drained(workers, timeout=300)
        await wait_shared(workers, 2)  # the restarted process took its share back
        await wait_both_serving(workers)  # and recovered it: else its windows answer 503

        alerts = alerts_of(await read_topic(kafka_bootstrap, env.alerts_topic))
        ids = Counter(a["alert_id"] for a in alerts)
        assert [i for i, n in ids.items() if n > 1] == []
        got = {
            (a["product_id"], timestamp_ms(a["window_start"])): (
                a["views"], a["add_to_cart"], a["purchases"]
            )
            for a in alerts
        }  # fmt: skip
        assert got == oracle.alerts
        assert parquet_rows(env) == (len(events), len(events))
        await check_windows(env.web_url, oracle)  # asks process 1; it forwards to the owner
    finally:
        producing.cancel()
        workers.stop()
        await asyncio.gather(producing, return_exceptions=True)
    assert workers.proc is not None and workers.proc.returncode == 0, workers.log()[-3000:]


async def test_mixed_keys_take_both_paths_and_every_event_counts_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A third of the events keyed by product (input partition = worker partition: handed to
    the window stage in memory when one process holds both), a third unkeyed, a third keyed
    by user: those go through PRODUCT_EVENTS_TOPIC whenever their worker partition is in the
    other process. Windows, alerts and Parquet must equal the recount all the same.

    A product's events spread over several input partitions here, so the order in which a
    worker partition sees them across sources is not the producer's: an alert's carts at its
    101st view, and whether purchases reached 5 first, depend on it. Without purchases, which
    windows alert and their views do not, and the final windows never do."""
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w", partitions=4)
    await create_topic(kafka_bootstrap, env.topic, INPUT_PARTITIONS)
    events = [
        {**e, "event_type": "add_to_cart"} if e["event_type"] == "purchase" else e
        for e in shop_events(30_000, seed=23)
    ]
    rng = random.Random(23)
    sent: list[tuple[int, bytes | None, dict[str, object]]] = []
    for i, event in enumerate(events):
        key = [str(event["product_id"]).encode(), None, str(event["user_id"]).encode()][i % 3]
        partition = rng.randrange(INPUT_PARTITIONS) if key is None else kafka_partition(key, 4)
        sent.append((partition, key, event))
    oracle = WindowOracle().feed_all([(p, e) for p, _, e in sent])
    assert len(oracle.alerts) > 10
    workers = SupervisedWorkers(env, processes=2).start()
    try:
        await wait_shared(workers, 2)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all",
                                    enable_idempotence=True, linger_ms=5)  # fmt: skip
        await producer.start()
        try:
            for i, (partition, key, event) in enumerate(sent):
                if i % 200 == 0:
                    await asyncio.sleep(0.05)  # live traffic, not one backlog
                await producer.send(env.topic, orjson.dumps(event), key=key, partition=partition)
            await producer.flush()
        finally:
            await producer.stop()
        await wait_drained(workers, timeout=300)
        await wait_both_serving(workers)
        # The colocated assignor: each process reads the input partitions whose worker
        # partitions it owns, so events keyed by product never leave their process.
        ingest, windows = await by_process(env, "ingest"), await by_process(env, "windows")
        assert ingest == windows and len(ingest) == 2, (ingest, windows)

        alerts = alerts_of(await read_topic(kafka_bootstrap, env.alerts_topic))
        assert [i for i, n in Counter(a["alert_id"] for a in alerts).items() if n > 1] == []
        got = {(a["product_id"], timestamp_ms(a["window_start"])): a["views"] for a in alerts}
        assert got == {window: counts[0] for window, counts in oracle.alerts.items()}
        assert parquet_rows(env) == (len(events), len(events))
        await check_windows(env.web_url, oracle)
        # Both paths carried events: some crossed Kafka a second time, most did not.
        repartitioned = sum(
            len(ProductBatch.decode(value).rows)
            for _, _, _, value, _ in await read_topic(kafka_bootstrap, env.internal_topic)
        )
        assert 0 < repartitioned < len(events) * 2 // 3, repartitioned
    finally:
        workers.stop()
    assert workers.proc is not None and workers.proc.returncode == 0, workers.log()[-3000:]
