"""Throughput on one input, one broker, one run: raw limit, ours with 1 and N processes, peers.

    BENCH_ONLY=throughput bash scripts/test-with-broker.sh .venv/bin/python -m bench

Three cases, each a fresh 4-partition topic filled from the same simulator run (fixed seed,
10,000 products): `keyed` (one event per message, key = product_id, as `clickstream simulate`
sends), `unkeyed` (one event per message, no key: the original system's producer), and
`batch100` (100 events per message, the simulator's JSON arrays). On each topic, read from the
start, one after another:

- raw: `bench.raw_limit` in its own process (aiokafka + orjson + dict of 10 hopping windows);
- ours: `clickstream worker --processes 1`, then `--processes N`, timed from the first ingest
  assignment until the ingest and window groups have committed everything;
- peers (`bench.peers`, BENCH_PEERS): Quix Streams' hopping count (`quix`, the default), the
  seed's PySpark job (`spark`, in `make bench-peers`); empty for none.

CPU seconds and peak RSS are of the whole process tree (for ours: the supervisor and every
worker process), sampled from /proc; CPU counts from the start of the clock. The broker's own
CPU over the same span is reported beside it: on a 2-core machine the broker shares the cores,
and what a pipeline asks of it (second hops, changelog writes, transactions) is part of its
cost.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from bench.broker_cpu import broker_pid, cpu_seconds
from bench.peers import quix_peer, spark_peer
from bench.probes import LagProbe, create_topic, load_average, log, wait_assigned
from bench.process_tree import TreeSampler, run_measured
from bench.streaming import CLICKSTREAM, PRODUCTS, SEED, history_start
from bench.table import Row
from tests.support.worker import SupervisedWorkers, WorkerEnv

INPUT_PARTITIONS = 4
CASES = ("keyed", "unkeyed", "batch100")


def simulated_lines(events: int, rate: float) -> list[bytes]:
    """The simulator's events (one JSON object per line), the same for every case."""
    import subprocess

    start = history_start(events, rate).isoformat().replace("+00:00", "Z")
    done = subprocess.run(
        [CLICKSTREAM, "simulate", "--start", start, "--count", str(events), "--seed", str(SEED),
         "--products", str(PRODUCTS), "--rate", f"{rate:g}", "--output", "-"],
        capture_output=True, check=True,
    )  # fmt: skip
    return done.stdout.splitlines()


async def fill(bootstrap: str, topic: str, lines: list[bytes], case: str) -> None:
    """Produce the case's messages: keyed singles, unkeyed singles or arrays of 100."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=20, max_batch_size=1 << 20)  # fmt: skip
    await producer.start()
    try:
        if case == "batch100":
            for i in range(0, len(lines), 100):
                chunk = lines[i : i + 100]
                key = orjson.loads(chunk[0])["product_id"].encode()
                await producer.send(topic, b"[" + b",".join(chunk) + b"]", key=key)
        else:
            for line in lines:
                key = orjson.loads(line)["product_id"].encode() if case == "keyed" else None
                await producer.send(topic, line, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def ours(bootstrap: str, topic: str, events: int, processes: int, timeout: float
               ) -> dict[str, object]:  # fmt: skip
    """`clickstream worker --processes N` over the topic, from a fresh APP_ID."""
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as scratch:
        env = WorkerEnv(bootstrap, Path(scratch) / "w", partitions=INPUT_PARTITIONS,
                        extra={"PYTHONUNBUFFERED": "1", "SINK_FLUSH_SECONDS": "10"})  # fmt: skip
        env.topic = topic
        workers = SupervisedWorkers(env, processes).start()
        assert workers.proc is not None
        sampler = TreeSampler(workers.proc.pid).start()
        broker = broker_pid(bootstrap)
        try:
            began = await wait_assigned(workers)
            sampler.mark()
            broker_before = cpu_seconds(broker) if broker else 0.0
            drained = False
            async with LagProbe(bootstrap) as probe:
                while time.perf_counter() - began < timeout:
                    if not workers.alive():
                        msg = f"the workers died:\n{workers.log()[-3000:]}"
                        raise RuntimeError(msg)
                    if await probe.lag(f"{env.app_id}-ingest", topic) == 0 and (
                        await probe.lag(f"{env.app_id}-windows", env.internal_topic) == 0
                    ):
                        drained = True
                        break
                    await asyncio.sleep(0.25)
            elapsed = time.perf_counter() - began
            sampler.sample()
            cpu, peak = sampler.cpu_s, sampler.peak_rss_mb
            broker_cpu = cpu_seconds(broker) - broker_before if broker else None
        finally:
            sampler.stop()
            workers.stop()
    return {"events": events, "seconds": round(elapsed, 2), "drained": drained,
            "events_per_s": round(events / elapsed), "cpu_s": round(cpu, 1),
            "peak_rss_mb": round(peak),
            "broker_cpu_s": None if broker_cpu is None else round(broker_cpu, 1)}  # fmt: skip


def raw(bootstrap: str, topic: str) -> dict[str, object]:
    broker = broker_pid(bootstrap)
    before = cpu_seconds(broker) if broker else 0.0
    found = run_measured([sys.executable, "-m", "bench.raw_limit", bootstrap, topic])
    if broker:
        found["broker_cpu_s"] = round(cpu_seconds(broker) - before, 1)
    return found


def run(bootstrap: str, events: int, processes: int, rate: float, timeout: float,
        peers: tuple[str, ...] = ("quix",)) -> dict[str, object]:  # fmt: skip
    """Every case's figures; keys are the case names, then `raw`, `ours_1`, `ours_N`, peers."""
    log(f"throughput: simulating {events:,} events once for every case")
    lines = simulated_lines(events, rate)
    figures: dict[str, object] = {"processes": processes}
    for case in CASES:
        topic = asyncio.run(create_topic(bootstrap, f"bench-tp-{case}", INPUT_PARTITIONS))
        asyncio.run(fill(bootstrap, topic, lines, case))
        found: dict[str, object] = {"topic": topic, "events": events}
        log(f"throughput {case}: raw limit")
        found["raw"] = raw(bootstrap, topic) | {"loadavg": load_average()}
        for n in sorted({1, processes}):
            log(f"throughput {case}: ours, {n} process(es)")
            found[f"ours_{n}"] = asyncio.run(ours(bootstrap, topic, events, n, timeout)) | {
                "loadavg": load_average()
            }
        if "quix" in peers:
            log(f"throughput {case}: Quix Streams")
            found["quix"] = quix_peer(bootstrap, topic, events, case)
        if "spark" in peers:
            log(f"throughput {case}: PySpark Structured Streaming")
            found["spark"] = spark_peer(bootstrap, topic, events, case)
        figures[case] = found
    return figures


def _cells(got: object, events: int) -> tuple[str, str, float | None]:
    if not isinstance(got, dict) or "events_per_s" not in got:
        reason = got.get("unavailable", "not run") if isinstance(got, dict) else "not run"
        return "n/a", str(reason), None
    per_m = float(got["cpu_s"]) / events * 1e6
    bound = "" if got.get("drained", True) else "<= "
    note = f"{per_m:,.1f} CPU s/M ev, peak RSS {got['peak_rss_mb']} MB"
    if got.get("broker_cpu_s") is not None:
        note += f", broker {float(got['broker_cpu_s']) / events * 1e6:,.1f} CPU s/M ev"
    return f"{bound}{got['events_per_s']:,} ev/s", note, float(got["events_per_s"])


def rows(figures: dict[str, object]) -> list[Row]:
    """One row per (case, system): "ours / raw = ratio", CPU s per million events, peak RSS."""
    out = []
    n = figures["processes"]
    names = {"ours_1": "ours, 1 process"}
    if n != 1:
        names[f"ours_{n}"] = f"ours, {n} processes"
    names |= {"quix": "Quix Streams 3.28", "spark": "PySpark, the seed's job"}
    for case in CASES:
        found = figures.get(case)
        if not isinstance(found, dict):
            continue
        events = int(found["events"])
        raw_rate, raw_note, raw_value = _cells(found["raw"], events)
        for key, name in names.items():
            if key not in found:
                continue
            rate, note, value = _cells(found[key], events)
            ratio = round(value / raw_value, 3) if value and raw_value else None
            out.append(Row(f"{case}: {name}", rate, f"{raw_rate} raw", ratio,
                           f"{note} (raw: {raw_note})"))  # fmt: skip
    return out
