"""Alert latency at each rate of BENCH_LATENCY_RATES (default 5,000 and 20,000 events/s):
qualifying event sent -> its alert read from ALERTS_TOPIC, and the product's first qualifying
event sent -> its incident's open read from INCIDENTS_TOPIC. Each rate gets a fresh worker.

    bash scripts/test-with-broker.sh .venv/bin/python -m bench.latency

Live shoppers come from `clickstream simulate` (10,000 products, event time = now); next to
them this module plants bursts of views for products of its own, one burst every BURST_EVERY_S.
It recounts those products' windows itself: the view that makes a window exceed
VIEWS_THRESHOLD (with fewer than PURCHASES_THRESHOLD purchases: planted products get none) is
that window's qualifying event, and the latency of the window's alert is the time the alert is
read minus the time that view was handed to the producer. Both are perf_counter() readings in
this process.

The rate asked is not taken on trust: while the bursts run, the input topic's end offsets give
the rate that really arrived (shoppers and bursts), next to the CPU the worker and the
shoppers used (cores = CPU seconds / wall seconds).
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from app.kafka.topics import topic_partitions
from app.simulator.wire import TimestampFormatter
from bench.probes import (
    LagProbe,
    Traffic,
    create_topic,
    ingest_joined_line,
    load_average,
    log,
    wait_assigned,
    wait_until_quiet,
)
from tests.support.worker import SupervisedWorkers, Worker, WorkerEnv

CLICKSTREAM = str(Path(sys.executable).parent / "clickstream")
PRODUCTS = 10_000
VIEWS_THRESHOLD, PURCHASES_THRESHOLD = 100, 5
STEP_MS, SIZE_MS = 60_000, 600_000
BURST_VIEWS = 110  # the 101st is the qualifying one
BURST_SECONDS = 0.25
BURST_EVERY_S = 2.0
WARMUP_S = 15.0
PLANTED_RATE = BURST_VIEWS / BURST_EVERY_S  # events/s the bursts add on average
SHORTFALL = 0.97  # an achieved rate below this share of the asked one is called out


def start_shoppers(bootstrap: str, topic: str, rate: float, seconds: float, log_path: Path
                   ) -> subprocess.Popen[bytes]:  # fmt: skip
    """`clickstream simulate` live at `rate` events/s over PRODUCTS products, for `seconds`."""
    with log_path.open("ab") as out:
        return subprocess.Popen(
            [CLICKSTREAM, "simulate", "--rate", f"{rate:g}", "--duration", f"{seconds:g}",
             "--products", str(PRODUCTS), "--seed", "1", "--topic", topic,
             "--bootstrap", bootstrap],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def stop_shoppers(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class PlantedWindows:
    """The test's own recount of planted products: which view made which window qualify."""

    views: dict[tuple[str, int], int] = field(default_factory=dict)
    qualified_at: dict[tuple[str, int], float] = field(default_factory=dict)

    def view(self, product: str, t_ms: int, sent_at: float) -> None:
        newest = t_ms - t_ms % STEP_MS
        for start in range(newest - SIZE_MS + STEP_MS, newest + 1, STEP_MS):
            key = (product, start)
            count = self.views[key] = self.views.get(key, 0) + 1
            if count == VIEWS_THRESHOLD + 1:  # purchases stay at 0 < PURCHASES_THRESHOLD
                self.qualified_at[key] = sent_at

    def first_qualified(self) -> dict[tuple[str, int], float]:
        """(product, 0) -> when its first window qualified: each burst opens one incident."""
        first: dict[tuple[str, int], float] = {}
        for (product, _), sent_at in self.qualified_at.items():
            key = (product, 0)
            first[key] = min(first.get(key, sent_at), sent_at)
        return first


async def plant_bursts(producer: AIOKafkaProducer, topic: str, seconds: float,
                       planted: PlantedWindows) -> int:  # fmt: skip
    """One burst of BURST_VIEWS views of a new product every BURST_EVERY_S; returns bursts."""
    stamp = TimestampFormatter()
    bursts = math.floor(seconds / BURST_EVERY_S)
    slots = 10
    began = time.perf_counter()
    for n in range(bursts):
        await asyncio.sleep(max(began + n * BURST_EVERY_S - time.perf_counter(), 0))
        product = f"flash-{n:04d}"
        for slot in range(slots):
            for i in range(slot * BURST_VIEWS // slots, (slot + 1) * BURST_VIEWS // slots):
                t_ms = int(time.time() * 1000)
                event = {"user_id": f"B{i:04d}", "product_id": product, "event_type": "view",
                         "timestamp": stamp.format(t_ms)}  # fmt: skip
                sent_at = time.perf_counter()
                await producer.send(topic, orjson.dumps(event), key=product.encode())
                planted.view(product, t_ms, sent_at)
            await asyncio.sleep(BURST_SECONDS / slots)
    await producer.flush()
    return bursts


def _window_start_ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def alert_key(record: dict[str, object]) -> tuple[str, int] | None:
    return str(record["product_id"]), _window_start_ms(str(record["window_start"]))


def incident_open_key(record: dict[str, object]) -> tuple[str, int] | None:
    return (str(record["product_id"]), 0) if record["event"] == "opened" else None


async def read_records(
    bootstrap: str, topic: str, key_of: Callable[[dict[str, object]], tuple[str, int] | None],
    into: dict[tuple[str, int], float], stop: asyncio.Event,
    decided: dict[tuple[str, int], float] | None = None,
) -> None:  # fmt: skip
    """Note when each record is first read: key_of(record) -> perf_counter(); and into
    `decided`, its `detected_at` (the worker's clock when the window stage decided it, before
    its transaction) on the same perf_counter() scale: this machine's clock for both."""
    # read_committed, as every reader of alerts must: an alert counts once its transaction has.
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=5, isolation_level="read_committed")  # fmt: skip
    await consumer.start()
    try:
        while not (partitions := await topic_partitions(bootstrap, topic)):
            await asyncio.sleep(0.2)  # the worker creates the topic as it starts
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        for tp in tps:
            consumer.seek(tp, starts[tp])
        while not stop.is_set():
            polled = await consumer.getmany(timeout_ms=50)
            read_at = time.perf_counter()
            wall_minus_perf = time.time() - read_at
            for records in polled.values():
                for record in records:
                    value = orjson.loads(record.value)
                    key = key_of(value)
                    if key is not None:
                        into.setdefault(key, read_at)
                        if decided is not None:
                            at = datetime.fromisoformat(str(value["detected_at"])).timestamp()
                            decided.setdefault(key, at - wall_minus_perf)
    finally:
        await consumer.stop()


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def _p(values: list[float], share: float) -> float | None:
    return round(percentile(values, share), 3) if values else None


async def measure(
    bootstrap: str, workdir: Path, rate: float, seconds: float, processes: int = 1
) -> dict[str, object]:
    """One worker process on a 1-partition input, or, with `processes` > 1, the product as
    `make run` deploys it: `clickstream worker --processes N` on a 4-partition input."""
    topic = await create_topic(bootstrap, "bench-latency", 1 if processes == 1 else 4)
    env = WorkerEnv(bootstrap, workdir / "w", partitions=4,
                    extra={"PYTHONUNBUFFERED": "1", "SINK_FLUSH_SECONDS": "10"})  # fmt: skip
    env.topic = topic
    worker = Worker(env).start() if processes == 1 else SupervisedWorkers(env, processes).start()
    assert worker.proc is not None
    shoppers = None
    try:
        await wait_assigned(worker, ingest_joined_line(worker))
        read: dict[tuple[str, int], float] = {}
        opened: dict[tuple[str, int], float] = {}
        decided: dict[tuple[str, int], float] = {}
        stop = asyncio.Event()
        readers = [
            asyncio.create_task(
                read_records(bootstrap, env.alerts_topic, alert_key, read, stop, decided)
            ),
            asyncio.create_task(
                read_records(bootstrap, env.incidents_topic, incident_open_key, opened, stop)
            ),
        ]
        shoppers = start_shoppers(bootstrap, topic, rate - PLANTED_RATE, WARMUP_S + seconds + 5,
                                  workdir / "shoppers.log")  # fmt: skip
        pids = {"worker": worker.proc.pid, "shoppers": shoppers.pid}
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                    enable_idempotence=True, linger_ms=1)  # fmt: skip
        await producer.start()
        planted = PlantedWindows()
        try:
            await asyncio.sleep(WARMUP_S)
            async with LagProbe(bootstrap) as probe:
                began = await Traffic.now(probe, topic, pids)
                bursts = await plant_bursts(producer, topic, seconds, planted)
                traffic = (await Traffic.now(probe, topic, pids)).since(began)
        finally:
            await producer.stop()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            planted.qualified_at.keys() <= read.keys()
            and planted.first_qualified().keys() <= opened.keys()
        ):
            assert worker.alive(), worker.log()[-3000:]
            await asyncio.sleep(0.2)
        stop.set()
        await asyncio.gather(*readers)
    finally:
        if shoppers is not None:
            stop_shoppers(shoppers)
        worker.stop()
    latencies = [read[k] - sent for k, sent in planted.qualified_at.items() if k in read]
    to_decision = [decided[k] - sent for k, sent in planted.qualified_at.items() if k in decided]
    to_reader = [read[k] - decided[k] for k in planted.qualified_at if k in decided]
    first = planted.first_qualified()
    opens = [opened[k] - sent for k, sent in first.items() if k in opened]
    expected = len(planted.qualified_at)
    unexpected = [k for k in read if k[0].startswith("flash-") and k not in planted.qualified_at]
    return {
        "rate": rate, "seconds": seconds, "bursts": bursts, "count": len(latencies),
        "expected": expected, "missing": expected - len(latencies),
        "unexpected_planted_alerts": len(unexpected),
        "other_alerts": sum(1 for k in read if not k[0].startswith("flash-")),
        "p50_s": _p(latencies, 0.50), "p99_s": _p(latencies, 0.99),
        # in the order sent: a second half much slower than the first is a worker falling behind
        "p50_first_half_s": _p(latencies[: len(latencies) // 2], 0.50),
        "p50_second_half_s": _p(latencies[len(latencies) // 2 :], 0.50),
        "max_s": round(max(latencies), 3) if latencies else None,
        "decided_p50_s": _p(to_decision, 0.50), "decided_p99_s": _p(to_decision, 0.99),
        "commit_and_read_p50_s": _p(to_reader, 0.50),
        "commit_and_read_p99_s": _p(to_reader, 0.99),
        "incident_opens": len(opens), "incident_opens_expected": len(first),
        "incident_open_p50_s": _p(opens, 0.50), "incident_open_p99_s": _p(opens, 0.99),
    } | traffic  # fmt: skip


def run_rate(bootstrap: str, rate: float, seconds: float, processes: int = 1) -> dict[str, object]:
    """Latency of planted alerts over `seconds` of bursts at a total of `rate` events/s."""
    quiet = wait_until_quiet()
    log(f"latency: {rate:,.0f} events/s live, {processes} worker process(es), bursts for "
        f"{seconds:.0f} s after a warm-up")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as scratch:
        f = asyncio.run(measure(bootstrap, Path(scratch), rate, seconds, processes))
    f["processes"] = processes
    achieved = int(f["achieved_rate"])  # type: ignore[call-overload]
    log(f"latency at {rate:,.0f} ev/s (achieved {achieved:,} ev/s; worker "
        f"{f['worker_cores']} cores, shoppers {f['shoppers_cores']}): alerts p50 {f['p50_s']} s "
        f"(first half {f['p50_first_half_s']} s, second {f['p50_second_half_s']} s), "
        f"p99 {f['p99_s']} s, {f['count']} of {f['expected']} (to decision p99 "
        f"{f['decided_p99_s']} s, commit+read p99 {f['commit_and_read_p99_s']} s); incident "
        f"opens p50 {f['incident_open_p50_s']} s, p99 {f['incident_open_p99_s']} s, "
        f"{f['incident_opens']} of {f['incident_opens_expected']}")  # fmt: skip
    if achieved < SHORTFALL * rate:
        log(f"latency: the input got only {achieved:,} of {rate:,.0f} events/s asked")
    return f | quiet | {"loadavg_after": load_average()}


def run(bootstrap: str, rates: tuple[float, ...] = (5000.0, 20000.0), seconds: float = 60.0,
        processes: int = 1) -> dict[str, object]:  # fmt: skip
    """Figures of `run_rate` for each rate, keyed by the rate ("5000", "20000")."""
    return {f"{rate:g}": run_rate(bootstrap, rate, seconds, processes) for rate in rates}


if __name__ == "__main__":
    rates = os.environ.get("BENCH_LATENCY_RATES", "5000,20000")
    result = run(os.environ.get("TEST_KAFKA_BOOTSTRAP", "localhost:9092"),
                 tuple(float(r) for r in rates.split(",")),
                 processes=int(os.environ.get("BENCH_LATENCY_PROCESSES", "1")))  # fmt: skip
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
