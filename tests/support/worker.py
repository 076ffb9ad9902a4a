"""A real worker (`faust -A agents.worker_app worker`) in a subprocess, with its own topics,
group, data dir and port."""

from __future__ import annotations

import asyncio
import copy
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import duckdb
import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError
from aiokafka.structs import TopicPartition

from app.kafka.topics import topic_partitions, topic_tail

FAUST = str(Path(sys.executable).parent / "faust")
CLICKSTREAM = str(Path(sys.executable).parent / "clickstream")
CHILD = re.compile(r"worker process (\d+): pid (\d+)")  # the supervisor's log line


WEB_PORTS = range(20_000, 32_000)  # below Linux's ephemeral range (32768-60999)
_PORTS = random.SystemRandom()  # pytest-randomly reseeds `random` alike for every test


def free_web_ports(count: int = 4) -> int:
    """The first of `count` consecutive ports free now, for WEB_PORT (a supervisor with N
    processes binds WEB_PORT ... WEB_PORT+N-1). Taken below the ephemeral range, so that the
    Kafka clients' outgoing connections cannot take WEB_PORT+1 between this check and the
    bind, as they did with a kernel-chosen port."""
    for _ in range(200):
        first = _PORTS.randrange(WEB_PORTS.start, WEB_PORTS.stop - count)
        held: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                held.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        return first
    msg = f"no {count} consecutive free ports in {WEB_PORTS}"
    raise AssertionError(msg)


@dataclass
class WorkerEnv:
    """Configuration of one worker deployment under test."""

    bootstrap: str
    data_dir: Path
    partitions: int = 2
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.app_id = f"t{tag}"
        self.topic = f"events-{tag}"
        self.alerts_topic = f"alerts-{tag}"
        self.incidents_topic = f"incidents-{tag}"
        self.dlq_topic = f"dlq-{tag}"
        self.web_port = free_web_ports()

    @property
    def internal_topic(self) -> str:
        return f"{self.app_id}-events-by-product"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def sibling(self, data_dir: Path) -> WorkerEnv:
        """Another worker of the same deployment (topics, group, settings): own dir and port."""
        other = copy.copy(self)
        other.data_dir, other.web_port, other.extra = data_dir, free_web_ports(), dict(self.extra)
        return other

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "WEB_"))}
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=self.bootstrap, KAFKA_TOPIC=self.topic,
            ALERTS_TOPIC=self.alerts_topic, DLQ_TOPIC=self.dlq_topic, APP_ID=self.app_id,
            INCIDENTS_TOPIC=self.incidents_topic,
            DATA_DIR=str(self.data_dir), WEB_PORT=str(self.web_port), WEB_HOST="127.0.0.1",
            PARTITIONS=str(self.partitions), SINK_FLUSH_SECONDS="1",
        )  # fmt: skip
        env.update(self.extra)
        return env


class Worker:
    """One worker process; its console goes to a log file in the data dir."""

    def __init__(self, env: WorkerEnv, name: str = "worker") -> None:
        self.env = env
        self.log_path = env.data_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        self.env.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [FAUST, "-A", "agents.worker_app", "worker", "-l", "info",
                 "--web-port", str(self.env.web_port)],
                env=self.env.environ(), stdout=log, stderr=subprocess.STDOUT,
                cwd=self.env.data_dir, start_new_session=True,
            )  # fmt: skip
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=60)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class SupervisedWorkers(Worker):
    """`clickstream worker --processes N` in a subprocess; `alive()` is the supervisor's."""

    def __init__(self, env: WorkerEnv, processes: int) -> None:
        super().__init__(env, "supervisor")
        self.processes = processes

    def start(self) -> SupervisedWorkers:
        self.env.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [CLICKSTREAM, "worker", "--processes", str(self.processes)],
                env=self.env.environ(), stdout=log, stderr=subprocess.STDOUT,
                cwd=self.env.data_dir, start_new_session=True,
            )  # fmt: skip
        return self

    def child_pids(self) -> dict[int, list[int]]:
        """Every pid the supervisor started, per process number, oldest first."""
        pids: dict[int, list[int]] = {}
        for number, pid in CHILD.findall(self.log()):
            pids.setdefault(int(number), []).append(int(pid))
        return pids


async def group_lag(bootstrap: str, group: str, topic: str) -> int | None:
    """Records of `topic` not yet committed by `group` (None while nothing is committed)."""
    tps = [TopicPartition(topic, p) for p in await topic_partitions(bootstrap, topic)]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
        committed = await admin.list_consumer_group_offsets(group, partitions=tps)
        if not tps:
            return None
        lag = 0
        for tp in tps:
            meta = committed.get(tp)
            if ends[tp] > 0 and (meta is None or meta.offset < 0):
                return None
            lag += ends[tp] - (meta.offset if meta is not None and meta.offset >= 0 else 0)
        return lag
    finally:
        await consumer.stop()
        await admin.close()


async def health(env: WorkerEnv) -> tuple[int, dict[str, object]]:
    """The worker's GET /health: its status code and body."""
    async with aiohttp.ClientSession() as session, session.get(f"{env.web_url}/health") as resp:
        return resp.status, await resp.json()


async def serving(env: WorkerEnv) -> bool:
    """Whether the worker's /health answers 200: up, in its groups, state recovered."""
    token = env.extra.get("WEB_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
            session.get(f"{env.web_url}/health", headers=headers) as response,
        ):
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def wait_drained(worker: Worker, timeout: float = 180.0) -> None:
    """Until the ingest, window and alert-sink groups have committed everything there is and
    the worker serves (a worker started on input already drained may not listen yet)."""
    env = worker.env
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.alive(), f"worker died:\n{worker.log()[-3000:]}"
        try:
            ingest = await group_lag(env.bootstrap, f"{env.app_id}-ingest", env.topic)
            windows = await group_lag(env.bootstrap, f"{env.app_id}-windows", env.internal_topic)
            alerts = await group_lag(env.bootstrap, f"{env.app_id}-alert-sink", env.alerts_topic)
        except GroupCoordinatorNotAvailableError:  # a fresh broker still creating its offsets
            ingest = windows = alerts = None
        if ingest == 0 and windows == 0 and alerts == 0 and await serving(env):
            return
        await asyncio.sleep(1.0)
    raise AssertionError(f"worker did not drain in {timeout}s:\n{worker.log()[-3000:]}")


async def drain_like_a_supervisor(worker: Worker, restarts: int = 2) -> Worker:
    """Wait until drained, restarting a worker that stopped itself (as `restart:` would).

    The worker stops itself when its window agent stalls (agents/window_counts watchdog);
    the restart must still converge on exact counts.
    """
    for attempt in range(restarts + 1):
        try:
            await wait_drained(worker, timeout=300)
            return worker
        except AssertionError:
            if worker.alive() or attempt == restarts:
                raise
            stopped = worker.log_path.with_name(f"worker-stopped-{attempt}.log")
            worker.log_path.rename(stopped)
            assert "stopping the worker so that a restart replays it" in stopped.read_text()
            worker = Worker(worker.env).start()
    return worker


async def read_topic(
    bootstrap: str, topic: str
) -> list[tuple[int, int, bytes | None, bytes, list[tuple[str, bytes]]]]:
    """Every committed record of a topic: (partition, offset, key, value, headers)."""
    out = []
    async with topic_tail(bootstrap, topic, per_partition=2**62) as tail:
        remaining = tail.unread() if tail is not None else set()
        stalled_since = time.monotonic()
        while remaining:
            assert tail is not None
            polled = await tail.consumer.getmany(*remaining, timeout_ms=500)
            for tp, records in polled.items():
                out += [(tp.partition, r.offset, r.key, r.value, list(r.headers)) for r in records]
            ended = {tp for tp in remaining if await tail.at_end(tp)}
            remaining -= ended
            if polled or ended:
                stalled_since = time.monotonic()
            assert time.monotonic() - stalled_since < 10, f"could not read {topic} to its end"
    return out


def alerts_of(
    records: list[tuple[int, int, bytes | None, bytes, list[tuple[str, bytes]]]],
) -> list[dict[str, object]]:
    return [orjson.loads(value) for _, _, _, value, _ in records]


def parquet_rows(env: WorkerEnv) -> tuple[int, int]:
    """(rows, distinct event ids) in the worker's Parquet store."""
    files = list((env.data_dir / "events").glob("*/*.parquet"))
    if not files:
        return 0, 0
    glob = str(env.data_dir / "events" / "*" / "*.parquet")
    counted = duckdb.sql(f"select count(*), count(distinct event_id) from read_parquet('{glob}')")
    assert counted is not None  # a select always gives a relation
    rows, distinct = counted.fetchall()[0]
    return rows, distinct
