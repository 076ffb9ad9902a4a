"""Where one worker process spends its time on a backlog: py-spy over the whole drain.

    bash scripts/test-with-broker.sh .venv/bin/python -m bench.profile [events] [keyed|unkeyed]

Fills a fresh 4-partition topic with the simulator's events (default 300,000, keyed by
product, as `clickstream simulate` sends them), starts one worker process, records it with
`py-spy record --format raw` (collapsed stacks of every thread's busy samples) from the first
assignment until the ingest and window groups have committed everything, and prints the share
of samples per stage and per hot frame. The stacks file stays under bench/results/ for a flame
graph (e.g. speedscope.app or inferno). Installs py-spy into the venv on first use.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from app.kafka.topics import topic_partitions
from bench.broker_cpu import broker_pid, cpu_seconds
from bench.probes import LagProbe, create_topic, log, wait_assigned
from bench.process_tree import run_measured
from bench.throughput import INPUT_PARTITIONS, fill, simulated_lines
from tests.support.worker import Worker, WorkerEnv

RESULTS = Path(__file__).parent / "results"
PY_SPY = Path(sys.executable).parent / "py-spy"
RATE_HZ = 200

# A sample belongs to the first stage whose marker appears in its stack (innermost first).
STAGES = (
    ("window stage: checkpoint (changelog, transaction)", ("window_checkpoint.py",)),
    (
        "window stage: counting",
        (
            "windowing/partition_windows.py",
            "windowing/batch_groups.py",
            "windowing/slice_cache.py",
            "windowing/slices.py",
            "windowing/seen_ids.py",
            "windowing/watermarks.py",
            "incidents.py",
        ),
    ),
    (
        "window stage: reading batches",
        ("window_stage.py", "window_loop.py", "window_partition.py", "window_recovery.py"),
    ),
    ("ingest: Parquet", ("partition_files.py", "storage/arrow.py", "ingest_sink.py")),
    ("ingest: validation", ("app/events.py",)),
    ("ingest: routing", ("ingest_router.py", "product_batches.py")),
    (
        "ingest: polls, sends, commits",
        (
            "agents/ingest.py",
            "ingest_commit.py",
            "ingest_delivery.py",
            "ingest_assignment.py",
            "ingest_dead_letters.py",
            "ingest_undecodable.py",
        ),
    ),
    ("web, probes, watchdog", ("tables/", "stall_watchdog.py", "pipeline_probe.py")),
)


# Leaves py-spy still reports as busy although they wait: the event loop's select, a pool
# thread waiting for work.
IDLE_LEAVES = ("EpollSelector.select (", "_worker (concurrent/futures/thread.py")


def _ensure_py_spy() -> None:
    if not PY_SPY.exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "py-spy"], check=True)


async def _topic_offsets(bootstrap: str, topic: str) -> int:
    """Sum of a topic's end offsets: its records plus its transaction markers."""
    parts = await topic_partitions(bootstrap, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return sum(ends.values())
    finally:
        await consumer.stop()


async def _drain(bootstrap: str, topic: str, env: WorkerEnv, worker: Worker) -> float:
    began = await wait_assigned(worker)
    async with LagProbe(bootstrap) as probe:
        while worker.alive():
            if await probe.lag(f"{env.app_id}-ingest", topic) == 0 and (
                await probe.lag(f"{env.app_id}-windows", env.internal_topic) == 0
            ):
                return time.perf_counter() - began
            await asyncio.sleep(0.25)
    msg = f"the worker died:\n{worker.log()[-3000:]}"
    raise RuntimeError(msg)


def _scrape(url: str) -> list[str]:
    """The worker's transaction, checkpoint and retry counters from its /metrics."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    wanted = ("transaction", "checkpoint", "retries", "changelog")
    return [
        line for line in text.splitlines()
        if not line.startswith("#") and any(w in line for w in wanted)
    ]  # fmt: skip


def _tree_cpu(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:
        return float("nan")


def _samples(stacks: Path) -> list[tuple[list[str], int]]:
    """(frames outermost first, sample count) per busy collapsed stack (idle leaves dropped);
    frames[0] names the thread."""
    out = []
    for line in stacks.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if count.isdigit() and not frames[-1].startswith(IDLE_LEAVES):
            out.append((frames, int(count)))
    return out


def summarize(stacks: Path) -> list[tuple[str, float]]:
    """Share of the busy samples (py-spy without --idle) per stage, over every thread."""
    by_stage: collections.Counter[str] = collections.Counter()
    total = 0
    for frames, n in _samples(stacks):
        total += n
        if "MainThread" not in frames[0]:
            kind = "Parquet writes" if "asyncio_" in frames[0] else frames[0].split(": ")[-1]
            by_stage[f"other thread: {kind}"] += n
            continue
        for name, markers in STAGES:
            if any(m in frame for frame in reversed(frames) for m in markers):
                by_stage[name] += n
                break
        else:
            by_stage["aiokafka, asyncio, Faust (outside our frames)"] += n
    return [(name, n / max(total, 1)) for name, n in by_stage.most_common()]


def hot_frames(stacks: Path, top: int = 25) -> list[tuple[str, float]]:
    """Self time per leaf frame (function (file:line) as py-spy names it), of the busy samples."""
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for frames, n in _samples(stacks):
        total += n
        leaves[frames[-1]] += n
    return [(frame, n / max(total, 1)) for frame, n in leaves.most_common(top)]


def main() -> None:
    bootstrap = os.environ["TEST_KAFKA_BOOTSTRAP"]  # set by scripts/test-with-broker.sh
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
    case = sys.argv[2] if len(sys.argv) > 2 else "keyed"
    _ensure_py_spy()
    RESULTS.mkdir(exist_ok=True)
    stacks = RESULTS / f"profile-{case}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.txt"
    log(f"profile: simulating {events:,} events ({case})")
    lines = simulated_lines(events, 5000)
    topic = asyncio.run(create_topic(bootstrap, f"bench-profile-{case}", INPUT_PARTITIONS))
    asyncio.run(fill(bootstrap, topic, lines, case))
    broker = broker_pid(bootstrap)
    if broker is not None:  # the broker's cost of serving the same input to the baseline
        before = cpu_seconds(broker)
        raw = run_measured([sys.executable, "-m", "bench.raw_limit", bootstrap, topic])
        print(f"raw limit: {raw['events_per_s']:,} ev/s, {raw['cpu_s']} CPU s, broker "
              f"{cpu_seconds(broker) - before:.1f} CPU s over the same input")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as scratch:
        env = WorkerEnv(bootstrap, Path(scratch) / "w", partitions=INPUT_PARTITIONS,
                        extra={"PYTHONUNBUFFERED": "1", "SINK_FLUSH_SECONDS": "10"})  # fmt: skip
        env.topic = topic
        worker = Worker(env).start()
        assert worker.proc is not None
        spy = subprocess.Popen(
            [str(PY_SPY), "record", "--pid", str(worker.proc.pid), "--format", "raw",
             "--rate", str(RATE_HZ), "--threads", "-o", str(stacks)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        broker_before = cpu_seconds(broker) if broker else 0.0
        worker_before = _tree_cpu(worker.proc.pid)
        try:
            seconds = asyncio.run(_drain(bootstrap, topic, env, worker))
            broker_cpu = cpu_seconds(broker) - broker_before if broker else float("nan")
            worker_cpu = _tree_cpu(worker.proc.pid) - worker_before
            changelog = asyncio.run(
                _topic_offsets(bootstrap, f"{env.app_id}-window-state-changelog")
            )
            internal = asyncio.run(_topic_offsets(bootstrap, env.internal_topic))
            scraped = _scrape(env.web_url + "/metrics")
        finally:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
            worker.stop()
    print(f"profile: {events:,} {case} events drained in {seconds:.1f} s "
          f"({events / seconds:,.0f} ev/s); stacks in {stacks}")  # fmt: skip
    print(f"CPU over the drain (from the start): worker {worker_cpu:.1f} s, broker "
          f"{broker_cpu:.1f} s; per million events: worker {worker_cpu / events * 1e6:.1f} s, "
          f"broker {broker_cpu / events * 1e6:.1f} s")  # fmt: skip
    print(f"offsets written (records + transaction markers): changelog {changelog:,} "
          f"({changelog / events:.3f} per event), {env.internal_topic.split('-', 1)[1]} "
          f"{internal:,}")  # fmt: skip
    for line in scraped:
        print(f"  /metrics: {line}")
    for name, share in summarize(stacks):
        print(f"  {share:6.1%}  {name}")
    print("hot frames (self time):")
    for frame, share in hot_frames(stacks):
        print(f"  {share:6.1%}  {frame}")


if __name__ == "__main__":
    main()
