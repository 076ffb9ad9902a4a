"""Simulator throughput: generation alone (JSON Lines to /dev/null) and max rate into Kafka.

    bash scripts/test-with-broker.sh .venv/bin/python bench/simulator.py

Each figure is the rate `clickstream simulate` reports in its summary (acknowledged events per
second of run time, start-up excluded), so it is what a user sees. The machine is shared (the
broker's JVM competes for the same two cores), so each case reports the best of ROUNDS runs.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

CLICKSTREAM = str(Path(sys.executable).parent / "clickstream")
EVENTS = 1_000_000
KAFKA_CASES = ((1, 1), (1, 4), (100, 1), (100, 4))  # (events per message, partitions)
ROUNDS = 3


def _rate(args: list[str], rounds: int = ROUNDS) -> float:
    return max(_one_rate(args) for _ in range(rounds))


def _one_rate(args: list[str]) -> float:
    done = subprocess.run(
        [CLICKSTREAM, "simulate", "--seed", "1", *args], capture_output=True, text=True, check=True
    )
    match = re.search(
        r"Sent ([\d,]+) events in [\d.]+ s \(([\d,]+) events/s\), 0 failed", done.stdout
    )
    if not match:
        msg = f"no summary in: {done.stdout!r} {done.stderr[-500:]!r}"
        raise RuntimeError(msg)
    return float(match.group(2).replace(",", ""))


async def _create_topic(bootstrap: str, partitions: int) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        name = f"bench-simulator-{uuid.uuid4().hex[:8]}"
        await admin.create_topics([NewTopic(name, partitions, 1)])
        return name
    finally:
        await admin.close()


def run(
    bootstrap: str,
    events: int = EVENTS,
    rounds: int = ROUNDS,
    cases: tuple[tuple[int, int], ...] = KAFKA_CASES,
) -> dict[str, float]:
    """Events/s for generation alone and for each Kafka case (live, --rate 0)."""
    figures = {
        "generate_to_devnull": _rate(
            ["--start", "2024-06-01T00:00:00Z", "--count", str(events), "--output", "/dev/null"],
            rounds,
        ),
    }
    for batch_size, partitions in cases:
        topic = asyncio.run(_create_topic(bootstrap, partitions))  # one topic for all rounds
        figures[f"kafka_batch{batch_size}_partitions{partitions}"] = _rate(
            [
                "--bootstrap",
                bootstrap,
                "--topic",
                topic,
                "--rate",
                "0",
                "--count",
                str(events),
                "--batch-size",
                str(batch_size),
            ],
            rounds,
        )
    return figures


def main() -> None:
    bootstrap = os.environ.get("TEST_KAFKA_BOOTSTRAP", "localhost:9092")
    figures = run(bootstrap)
    width = max(len(name) for name in figures)
    print(f"{'case':<{width}}  events/s  (best of {ROUNDS} runs of {EVENTS:,} events)")
    for name, rate in figures.items():
        print(f"{name:<{width}}  {rate:>8,.0f}")


if __name__ == "__main__":
    main()
