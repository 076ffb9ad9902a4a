"""Streaming end to end: the real worker against a plain aiokafka consume-and-count loop.

    bash scripts/test-with-broker.sh .venv/bin/python -m bench.streaming

Per case (events per message x input partitions) one topic is filled with the simulator
(historical mode, fixed seed, 10,000 products), then consumed from the start twice:

- baseline: one aiokafka consumer (max_poll_records 5000, the worker's fetch settings) that
  parses every event with orjson and counts it into each of its 10 hopping windows
  (600 s / 60 s) per product in a dict: the machine's consume-and-count limit;
- ours: a worker subprocess (`faust -A agents.worker_app worker`: ingest, validation, Parquet
  sink, window stage, alerts), timed from its ingest consumer's assignment until the ingest
  group and the window stage's group have both committed everything. Nothing is subtracted.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from app.kafka.topics import topic_partitions
from bench.probes import (
    LagProbe,
    create_topic,
    load_average,
    log,
    rss_mb,
    wait_assigned,
    wait_until_quiet,
)
from tests.support.worker import Worker, WorkerEnv

CLICKSTREAM = str(Path(sys.executable).parent / "clickstream")
PRODUCTS = 10_000
WORKER_PARTITIONS = 4  # PARTITIONS' default: what `faust -A agents.worker_app worker` runs with
STEP_MS, SIZE_MS = 60_000, 600_000
TYPE_INDEX = {"view": 0, "add_to_cart": 1, "purchase": 2}
SEED = 1


def history_start(events: int, rate: float) -> datetime:
    """Noon UTC of a day far enough back that the run ends before now (and within retention)."""
    density = rate if rate > 0 else 10.0  # the simulator's historical default
    span = timedelta(seconds=2 * events / density + 7200)  # x2: the daily curve's quiet hours
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=1 + span.days) + timedelta(hours=12)
    if start + span > datetime.now(UTC) or datetime.now(UTC) - start > timedelta(days=6):
        msg = f"{events} events at {rate} events/s of event time do not fit in Kafka's retention"
        raise ValueError(msg)
    return start


def fill_topic(bootstrap: str, topic: str, events: int, batch_size: int, rate: float) -> float:
    """Write the case's events with `clickstream simulate`; return its events/s."""
    start = history_start(events, rate).isoformat().replace("+00:00", "Z")
    done = subprocess.run(
        [CLICKSTREAM, "simulate", "--start", start, "--count", str(events), "--seed", str(SEED),
         "--products", str(PRODUCTS), "--rate", f"{rate:g}", "--batch-size", str(batch_size),
         "--topic", topic, "--bootstrap", bootstrap],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    match = re.search(r"\(([\d,]+) events/s\), 0 failed", done.stdout)
    if not match:
        msg = f"the simulator did not report success: {done.stdout[-500:]} {done.stderr[-500:]}"
        raise RuntimeError(msg)
    return float(match.group(1).replace(",", ""))


def count_message(value: bytes, counts: dict[tuple[str, int], list[int]]) -> int:
    """Parse one message (an event or an array of them) and count it into every window."""
    parsed = orjson.loads(value)
    events = parsed if isinstance(parsed, list) else (parsed,)
    for event in events:
        t = int(datetime.fromisoformat(event["timestamp"]).timestamp() * 1000)
        kind = TYPE_INDEX[event["event_type"]]
        product = event["product_id"]
        newest = t - t % STEP_MS
        for start in range(newest - SIZE_MS + STEP_MS, newest + 1, STEP_MS):
            window = counts.get((product, start))
            if window is None:
                window = counts[(product, start)] = [0, 0, 0]
            window[kind] += 1
    return len(events)


async def consume_and_count(bootstrap: str, topic: str) -> dict[str, object]:
    """The baseline: read the whole topic once, counting every event's windows in a dict."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=5000,
        fetch_max_wait_ms=50, max_partition_fetch_bytes=4 << 20,
    )  # fmt: skip
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in await topic_partitions(bootstrap, topic)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        for tp in tps:
            consumer.seek(tp, starts[tp])
        counts: dict[tuple[str, int], list[int]] = {}
        events = 0
        remaining = {tp for tp in tps if ends[tp] > starts[tp]}
        began = time.perf_counter()
        while remaining:
            polled = await consumer.getmany(*remaining, timeout_ms=500, max_records=5000)
            for tp, records in polled.items():
                for record in records:
                    events += count_message(record.value, counts)
                if records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        elapsed = time.perf_counter() - began
    finally:
        await consumer.stop()
    return {"events": events, "seconds": round(elapsed, 2), "events_per_s": round(events / elapsed),
            "windows": len(counts)}  # fmt: skip


def _alerts_sent(web_port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=5) as page:
            text = page.read().decode()
    except OSError:
        return None
    match = re.search(r"^clickstream_alerts_total (\d+)", text, re.MULTILINE)
    return int(match.group(1)) if match else None


async def worker_end_to_end(
    bootstrap: str, topic: str, events: int, data_dir: Path, timeout: float
) -> dict[str, object]:
    """Ours: a real worker from its ingest assignment until both groups committed everything."""
    # The product's default flush interval, not the tests' 1 s.
    env = WorkerEnv(bootstrap, data_dir, partitions=WORKER_PARTITIONS,
                    extra={"PYTHONUNBUFFERED": "1", "SINK_FLUSH_SECONDS": "10"})  # fmt: skip
    env.topic = topic
    worker = Worker(env).start()
    assert worker.proc is not None
    try:
        began = await wait_assigned(worker)
        drained = False
        async with LagProbe(bootstrap) as probe:
            while time.perf_counter() - began < timeout:
                if not worker.alive():
                    msg = f"the worker died:\n{worker.log()[-3000:]}"
                    raise RuntimeError(msg)
                # Ingest first: once it has committed, the internal topic holds everything.
                if await probe.lag(f"{env.app_id}-ingest", topic) == 0 and (
                    await probe.lag(f"{env.app_id}-windows", env.internal_topic) == 0
                ):
                    drained = True
                    break
                await asyncio.sleep(0.25)
        elapsed = time.perf_counter() - began
        alerts = await asyncio.to_thread(_alerts_sent, env.web_port)
        peak = rss_mb(worker.proc.pid, "VmHWM")
    finally:
        worker.stop()
    return {"events": events, "seconds": round(elapsed, 2), "drained": drained,
            "events_per_s": round(events / elapsed), "alerts": alerts,
            "peak_rss_mb": round(peak) if peak else None}  # fmt: skip


async def run_case(
    bootstrap: str, events: int, batch_size: int, partitions: int, rate: float, timeout: float
) -> dict[str, object]:
    topic = await create_topic(bootstrap, f"bench-stream-b{batch_size}-p{partitions}", partitions)
    log(f"streaming: filling {topic} with {events:,} events, {batch_size} per message")
    fill_rate = await asyncio.to_thread(fill_topic, bootstrap, topic, events, batch_size, rate)
    quiet = await asyncio.to_thread(wait_until_quiet)
    log(f"streaming: baseline consume-and-count on {topic}")
    baseline = await consume_and_count(bootstrap, topic)
    baseline["loadavg_after"] = load_average()
    quiet_ours = await asyncio.to_thread(wait_until_quiet)
    log(f"streaming: worker end to end on {topic} (up to {timeout:.0f} s)")
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as scratch:
        ours = await worker_end_to_end(bootstrap, topic, events, Path(scratch) / "w", timeout)
    ours["loadavg_after"] = load_average()
    ratio = float(ours["events_per_s"]) / float(baseline["events_per_s"])  # type: ignore[arg-type]
    log(f"streaming: ours {ours['events_per_s']:,} ev/s, baseline "
        f"{baseline['events_per_s']:,} ev/s, ratio {ratio:.2f}")  # fmt: skip
    return {
        "batch_size": batch_size, "partitions": partitions, "events": events,
        "products": PRODUCTS, "event_rate": rate, "fill_events_per_s": fill_rate,
        "baseline": baseline | quiet, "ours": ours | quiet_ours, "ratio": round(ratio, 3),
    }  # fmt: skip


def run(
    bootstrap: str,
    events: int = 1_000_000,
    batch_sizes: tuple[int, ...] = (1, 100),
    partitions: tuple[int, ...] = (1,),
    rate: float = 5000.0,
    timeout: float = 600.0,
) -> dict[str, object]:
    """Every (events per message, partitions) case; keys like `batch1_partitions1`."""
    figures: dict[str, object] = {}
    for parts in partitions:
        for size in batch_sizes:
            figures[f"batch{size}_partitions{parts}"] = asyncio.run(
                run_case(bootstrap, events, size, parts, rate, timeout)
            )
    return figures


if __name__ == "__main__":
    result = run(os.environ.get("TEST_KAFKA_BOOTSTRAP", "localhost:9092"))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
