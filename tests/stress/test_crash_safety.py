"""Crash safety under stress: 25 kill -9s, a worker lost mid-stream, a broker restart.

Each scenario streams a shop's events with poison messages spread through them, breaks a
worker or the broker while they flow, restarts whatever stopped (as a supervisor would) and
then holds every output to the independent recount in `tests/support/window_oracle.py`. A
worker that stops itself on a detected stall is restarted too, but fails the scenario: a stall
is a bug.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from app.kafka.broker import LocalBroker, free_port
from tests.support.kafka import create_topic
from tests.support.streaming_cases import POISON, shop_events
from tests.support.web_api import check_windows
from tests.support.window_oracle import WindowOracle, timestamp_ms
from tests.support.worker import Worker, WorkerEnv, alerts_of, group_lag, parquet_rows, read_topic

# Every group must reach lag 0 this long after the last produce or fault, whichever is later.
DRAIN_BOUND_S = 300.0
STALL_LINE = "stalled on this worker"
READY, ASSIGNED = "[^Worker]: Ready", "assigned, parquet"
# When a kill lands: (log line it waits for, seconds after it, low and high).
KILL_MOMENTS = {
    "startup": (READY, 0.2, 1.5),  # joining the groups, before any partition is held
    "recovery": (ASSIGNED, 0.0, 1.5),  # restoring offsets, Parquet progress, the changelog
    "processing": (ASSIGNED, 1.0, 5.0),
}


@dataclass
class ShopStream:
    """A scenario's input in send order, and what the recount makes of it."""

    messages: list[tuple[int, bytes | None, str | None]]  # source partition, value, DLQ reason
    oracle: WindowOracle
    valid: int

    @property
    def bad(self) -> Counter[str]:
        return Counter(reason for _, _, reason in self.messages if reason)


def shop_stream(
    count: int, seed: int, source_partitions: int, poison_copies: int = 2
) -> ShopStream:
    """Each product on one source partition, so its events keep one order however partitions
    interleave: the recount's alerts, counts at the moment of alerting included, then hold."""
    rng = random.Random(seed)
    placed = [
        (zlib.crc32(str(event["product_id"]).encode()) % source_partitions, event)
        for event in shop_events(count, seed)
    ]
    messages: list[tuple[int, bytes | None, str | None]] = [
        (partition, orjson.dumps(event), None) for partition, event in placed
    ]
    for raw, reason in POISON * poison_copies:
        where = rng.randrange(len(messages))
        messages.insert(where, (rng.randrange(source_partitions), raw, reason))
    return ShopStream(messages, WindowOracle().feed_all(placed), len(placed))


class PacedFeed:
    """Sends a stream in rounds with pauses, so that faults land while events flow."""

    def __init__(self, env: WorkerEnv, stream: ShopStream, rounds: int, pause_s: float) -> None:
        self.env, self.stream, self.rounds, self.pause_s = env, stream, rounds, pause_s
        self.sent = 0
        self.dead_offsets: set[tuple[int, int]] = set()  # where the poison landed
        self.last_sent_at = 0.0
        self.between_rounds = asyncio.Lock()  # held by a broker outage, so no send is cut

    async def run(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.env.bootstrap, acks="all",
                                    enable_idempotence=True, linger_ms=5)  # fmt: skip
        await producer.start()
        try:
            size = -(-len(self.stream.messages) // self.rounds)
            for start in range(0, len(self.stream.messages), size):
                async with self.between_rounds:
                    await self._send(producer, self.stream.messages[start : start + size])
                await asyncio.sleep(self.pause_s)
        finally:
            await producer.stop()

    async def _send(
        self, producer: AIOKafkaProducer, chunk: list[tuple[int, bytes | None, str | None]]
    ) -> None:
        futures = []
        for partition, raw, _ in chunk:
            key = b"tombstone" if raw is None else None  # Kafka needs a key or a value
            futures.append(await producer.send(self.env.topic, raw, key=key, partition=partition))
        for (_, _, reason), meta in zip(chunk, await asyncio.gather(*futures), strict=True):
            if reason:
                self.dead_offsets.add((meta.partition, meta.offset))
        self.sent += len(chunk)
        self.last_sent_at = time.monotonic()


class Slot:
    """One worker of the deployment under a supervisor: each start is a new process with its
    own log file, kills are counted by moment, and exits it made on its own are recorded."""

    def __init__(self, env: WorkerEnv, name: str) -> None:
        self.env, self.name = env, name
        self.starts, self.kills = 0, Counter[str]()
        self.exits: list[str] = []
        self.worker = Worker(env, name)
        self.last_fault = time.monotonic()

    def start(self) -> Worker:
        self.starts += 1
        self.worker = Worker(self.env, f"{self.name}-{self.starts}").start()
        return self.worker

    async def wait_for(self, line: str, timeout: float = 120.0) -> bool:
        """Until this run logs `line` (True) or exits on its own (False)."""
        deadline = time.monotonic() + timeout
        while line not in self.worker.log():
            if not self.worker.alive():
                return False
            assert time.monotonic() < deadline, f"no {line!r}:\n{self.worker.log()[-3000:]}"
            await asyncio.sleep(0.1)
        return True

    async def kill_at(self, moment: str, rng: random.Random) -> bool:
        """kill -9 at a random point of `moment`; False when the worker exited first."""
        line, low, high = KILL_MOMENTS[moment]
        if not await self.wait_for(line):
            return False
        await asyncio.sleep(rng.uniform(low, high))
        if not self.worker.alive():
            return False
        self.worker.kill(signal.SIGKILL)
        self.kills[moment] += 1
        self.last_fault = time.monotonic()
        return True

    def restart_if_exited(self) -> None:
        if self.worker.alive():
            return
        stalled = STALL_LINE in self.worker.log()
        self.exits.append(f"{self.worker.log_path.name}: {'stall' if stalled else 'exit'}")
        self.start()
        self.last_fault = time.monotonic()

    def logs(self) -> dict[str, str]:
        paths = sorted(self.env.data_dir.glob(f"{self.name}-*.log"))
        return {path.name: path.read_text(errors="replace") for path in paths}


async def stage_lags(env: WorkerEnv) -> dict[str, int | None]:
    groups = {"ingest": env.topic, "windows": env.internal_topic, "alert-sink": env.alerts_topic}
    lags: dict[str, int | None] = {}
    for stage, topic in groups.items():
        try:
            lags[stage] = await group_lag(env.bootstrap, f"{env.app_id}-{stage}", topic)
        except KafkaError:  # a fresh or restarted broker still loading its offsets
            lags[stage] = None
    return lags


async def drain(slots: list[Slot], feed: PacedFeed) -> float:
    """Seconds from the last produce or fault until every group has lag 0, restarting any
    worker that exited on its own; fails after DRAIN_BOUND_S."""
    since = max(feed.last_sent_at, *(slot.last_fault for slot in slots))
    lags: dict[str, int | None] = {}
    while time.monotonic() < since + DRAIN_BOUND_S:
        for slot in slots:
            slot.restart_if_exited()
        since = max(since, *(slot.last_fault for slot in slots))
        lags = await stage_lags(slots[0].env)
        if all(lag == 0 for lag in lags.values()):
            return time.monotonic() - since
        await asyncio.sleep(1.0)
    tails = "\n".join(f"--- {s.worker.log_path.name}\n{s.worker.log()[-3000:]}" for s in slots)
    raise AssertionError(f"lags {lags} {DRAIN_BOUND_S:.0f} s after the last produce\n{tails}")


async def check_against_recount(slots: list[Slot], feed: PacedFeed) -> None:
    env, stream, oracle = slots[0].env, feed.stream, feed.stream.oracle
    for slot in slots:  # any worker answers for any product
        await check_windows(slot.env.web_url, oracle)
    alerts = alerts_of(await read_topic(env.bootstrap, env.alerts_topic))
    ids = Counter(a["alert_id"] for a in alerts)
    assert [i for i, n in ids.items() if n > 1] == [], "an alert was sent twice"
    got = {
        (a["product_id"], timestamp_ms(a["window_start"])): (
            a["views"], a["add_to_cart"], a["purchases"],
        )
        for a in alerts
    }  # fmt: skip
    assert len(got) == len(alerts), "a window alerted twice under different ids"
    assert got == oracle.alerts
    assert oracle.qualifying() <= got.keys()
    assert parquet_rows(env) == (stream.valid, stream.valid)
    dead = [dict(headers) for *_, headers in await read_topic(env.bootstrap, env.dlq_topic)]
    sources = Counter(
        (int(h["x-dlq-source-partition"]), int(h["x-dlq-source-offset"])) for h in dead
    )
    assert [s for s, n in sources.items() if n > 1] == [], "a bad message was dead-lettered twice"
    assert set(sources) == feed.dead_offsets
    assert Counter(h["x-dlq-reason"].decode() for h in dead) == stream.bad
    stalls = [
        line
        for slot in slots
        for text in slot.logs().values()
        for line in text.splitlines()
        if STALL_LINE in line
    ]
    assert stalls == [], stalls


async def stop_feed(sending: asyncio.Task[None]) -> None:
    sending.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):  # its failure is reported
        await sending


def summary(scenario: str, feed: PacedFeed, slots: list[Slot], drain_s: float | None,
            started: float, broker_restarts: int = 0) -> str:  # fmt: skip
    kills = sum((slot.kills for slot in slots), Counter[str]())
    restarts = sum(slot.starts for slot in slots) - len(slots)
    exits = [e for slot in slots for e in slot.exits]
    drained = "not drained" if drain_s is None else f"drained in {drain_s:.0f} s"
    return (
        f"\nSTRESS {scenario}: {feed.sent}/{len(feed.stream.messages)} messages sent "
        f"({feed.stream.valid} events, {feed.stream.bad.total()} bad), "
        f"{kills.total()} kills {dict(kills)}, {restarts} restarts, "
        f"{broker_restarts} broker restarts, self-stops {exits or 'none'}, {drained}, "
        f"{time.monotonic() - started:.0f} s in all"
    )


@pytest.mark.timeout(1800)
async def test_25_kills_at_random_moments(kafka_bootstrap: str, tmp_path: Path) -> None:
    rng = random.Random(25)
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w", partitions=4)
    await create_topic(kafka_bootstrap, env.topic, 3)
    feed = PacedFeed(env, shop_stream(30_000, seed=25, source_partitions=3), 40, pause_s=7.0)
    slot, started, drain_s = Slot(env, "worker"), time.monotonic(), None
    moments = ["startup"] * 8 + ["recovery"] * 8 + ["processing"] * 9
    rng.shuffle(moments)
    sending = asyncio.create_task(feed.run())
    slot.start()
    try:
        for moment in moments:
            while not await slot.kill_at(moment, rng):
                slot.restart_if_exited()
            slot.start()
        await sending
        drain_s = await drain([slot], feed)
        await check_against_recount([slot], feed)
    finally:
        await stop_feed(sending)
        slot.worker.stop()
        print(summary("25 kills", feed, [slot], drain_s, started))


@pytest.mark.timeout(1200)
async def test_two_workers_one_killed_mid_stream(kafka_bootstrap: str, tmp_path: Path) -> None:
    rng = random.Random(2)
    first = WorkerEnv(kafka_bootstrap, tmp_path / "a", partitions=4)
    second = first.sibling(tmp_path / "b")
    for shared in ("events", "alerts"):  # one DATA_DIR for Parquet, own worker state each
        (first.data_dir / shared).mkdir(parents=True)
        second.data_dir.mkdir(parents=True, exist_ok=True)
        (second.data_dir / shared).symlink_to(first.data_dir / shared)
    await create_topic(kafka_bootstrap, first.topic, 4)
    feed = PacedFeed(first, shop_stream(30_000, seed=2, source_partitions=4), 40, pause_s=4.0)
    a, b = Slot(first, "a"), Slot(second, "b")
    started, drain_s = time.monotonic(), None
    sending = asyncio.create_task(feed.run())
    a.start()
    try:
        assert await a.wait_for(ASSIGNED)
        await asyncio.sleep(rng.uniform(2.0, 4.0))
        b.start()  # its join rebalances every group: kill a while that is under way
        assert await b.wait_for(READY)
        assert await a.kill_at("startup", rng)  # 0.2-1.5 s after b is up: mid-rebalance
        await asyncio.sleep(15)  # b takes a's partitions once its session (10 s) expires
        a.start()
        assert await b.kill_at("processing", rng)  # b mid-stream, a rejoining
        await asyncio.sleep(15)
        b.start()
        assert await b.wait_for(ASSIGNED)
        await asyncio.sleep(rng.uniform(3.0, 8.0))
        assert await a.kill_at("processing", rng)  # a mid-stream, with b holding half
        await asyncio.sleep(15)
        a.start()
        await sending
        drain_s = await drain([a, b], feed)
        await check_against_recount([a, b], feed)
    finally:
        await stop_feed(sending)
        for slot in (a, b):
            slot.worker.stop()
        print(summary("two workers", feed, [a, b], drain_s, started))


@pytest.mark.timeout(1200)
async def test_broker_restart_mid_stream(tmp_path: Path) -> None:
    rng = random.Random(3)
    broker, port = LocalBroker(tmp_path / "kafka"), free_port()
    bootstrap = (await asyncio.to_thread(broker.start, port)).bootstrap
    env = WorkerEnv(bootstrap, tmp_path / "w", partitions=2)
    slot, started, drain_s = Slot(env, "worker"), time.monotonic(), None
    sending: asyncio.Task[None] | None = None
    try:
        await create_topic(bootstrap, env.topic, 2)
        feed = PacedFeed(env, shop_stream(30_000, seed=3, source_partitions=2), 40, pause_s=2.0)
        sending = asyncio.create_task(feed.run())
        slot.start()
        assert await slot.wait_for(ASSIGNED)
        while feed.sent < len(feed.stream.messages) * 0.4:
            await asyncio.sleep(0.2)
        async with feed.between_rounds:
            await asyncio.to_thread(broker.stop)
            await asyncio.sleep(rng.uniform(5.0, 10.0))
            await asyncio.to_thread(broker.start, port)
            slot.last_fault = time.monotonic()
        await sending
        drain_s = await drain([slot], feed)
        await check_against_recount([slot], feed)
    finally:
        if sending is not None:
            await stop_feed(sending)
            print(summary("broker restart", feed, [slot], drain_s, started, broker_restarts=1))
        slot.worker.stop()
        await asyncio.to_thread(broker.stop)
