"""What the benchmarks observe from outside: machine load, a worker's start, memory, lag and
the traffic that really arrived."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition

from bench.process_tree import tree_usage
from tests.support.worker import Worker

ASSIGNED_LINE = b"assigned, parquet"  # ingest restored a partition, right before its records


def log(message: str) -> None:
    """Progress on stderr, so that stdout holds only the results."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def _cpu_times() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields), idle


def busy_fraction(seconds: float = 1.0) -> float:
    """Share of all cores' time spent busy over the next `seconds`."""
    total0, idle0 = _cpu_times()
    time.sleep(seconds)
    total1, idle1 = _cpu_times()
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def wait_until_quiet(max_busy: float = 0.25, timeout: float = 45.0) -> dict[str, object]:
    """Wait (up to `timeout`) until other work leaves the cores mostly idle; say how it went."""
    began = time.monotonic()
    busy = busy_fraction()
    while busy > max_busy and time.monotonic() - began < timeout:
        busy = busy_fraction(2.0)
    waited = time.monotonic() - began
    if busy > max_busy:
        log(f"machine still {busy:.0%} busy after {waited:.0f} s; measuring anyway")
    return {"busy_before": round(busy, 2), "idle_wait_s": round(waited, 1),
            "loadavg_before": load_average()}  # fmt: skip


def rss_mb(pid: int, field: str = "VmRSS") -> float | None:
    """Resident memory of a process in MB (VmHWM for the peak), None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def ingest_joined_line(worker: Worker) -> bytes:
    """Logged once the ingest consumer has joined its group (also with an empty topic)."""
    return f"Successfully synced group {worker.env.app_id}-ingest".encode()


async def wait_assigned(
    worker: Worker, line: bytes = ASSIGNED_LINE, timeout: float = 120.0
) -> float:
    """perf_counter() when the worker's log first shows `line`."""
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        if worker.log_path.exists():
            with worker.log_path.open("rb") as log_file:
                log_file.seek(max(seen - len(line), 0))
                chunk = log_file.read()
            if line in chunk:
                return time.perf_counter()
            seen = max(seen - len(line), 0) + len(chunk)
        if not worker.alive():
            msg = f"the worker exited during start-up:\n{worker.log()[-3000:]}"
            raise RuntimeError(msg)
        await asyncio.sleep(0.02)
    msg = f"the worker did not log {line!r} within {timeout:.0f} s:\n{worker.log()[-3000:]}"
    raise RuntimeError(msg)


async def create_topic(bootstrap: str, prefix: str, partitions: int) -> str:
    """A fresh topic with a unique name."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()
    return name


class LagProbe:
    """Records of a topic a consumer group has not committed, through long-lived clients."""

    def __init__(self, bootstrap: str) -> None:
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        self._partitions: dict[str, list[TopicPartition]] = {}

    async def __aenter__(self) -> LagProbe:
        await self.admin.start()
        await self.consumer.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def _tps(self, topic: str) -> list[TopicPartition]:
        tps = self._partitions.get(topic)
        if tps is None:
            if topic not in await self.admin.list_topics():
                return []
            (described,) = await self.admin.describe_topics([topic])
            tps = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
            if tps:
                self._partitions[topic] = tps
        return tps

    async def produced(self, topic: str) -> int:
        """Records written to `topic` so far (the sum of its partitions' end offsets)."""
        tps = await self._tps(topic)
        return sum((await self.consumer.end_offsets(tps)).values()) if tps else 0

    async def lag(self, group: str, topic: str) -> int | None:
        """Uncommitted records; None while the topic is missing or a partition has no commit."""
        tps = await self._tps(topic)
        if not tps:
            return None
        ends = await self.consumer.end_offsets(tps)
        committed = await self.admin.list_consumer_group_offsets(group, partitions=tps)
        lag = 0
        for tp in tps:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else None
            if done is None and ends[tp] > 0:
                return None
            lag += ends[tp] - (done or 0)
        return lag


@dataclass(frozen=True)
class Traffic:
    """Records in the input topic and CPU seconds of the worker and the shoppers, at one time."""

    at: float
    records: int
    cpu_s: dict[str, float]

    @classmethod
    async def now(cls, probe: LagProbe, topic: str, pids: dict[str, int]) -> Traffic:
        cpu = {name: tree_usage(pid)[0] for name, pid in pids.items()}
        return cls(time.perf_counter(), await probe.produced(topic), cpu)

    def since(self, start: Traffic) -> dict[str, object]:
        seconds = self.at - start.at
        cores: dict[str, object] = {f"{name}_cores": round((cpu - start.cpu_s[name]) / seconds, 2)
                                    for name, cpu in self.cpu_s.items()}  # fmt: skip
        return {"achieved_rate": round((self.records - start.records) / seconds),
                "achieved_over_s": round(seconds, 1)} | cores  # fmt: skip
