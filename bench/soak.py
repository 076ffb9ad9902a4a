"""Soak: a worker under live traffic for a long while; is its memory flat, does it keep up?

    SOAK_MINUTES=30 bash scripts/test-with-broker.sh .venv/bin/python -m bench.soak

`clickstream simulate` sends live shoppers (SOAK_RATE, default 5,000 events/s, 10,000
products) for SOAK_MINUTES (default 30). Every SAMPLE_S the worker's resident memory
(/proc/<pid>/status VmRSS) and the lag of its ingest and window groups are sampled into a CSV
and plotted to a PNG under bench/results/. Memory is flat when it grew no more than 10% over
the last 20 of 30 minutes (for other lengths, the last two thirds of the run).
"""

from __future__ import annotations

import asyncio
import csv
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from bench.latency import start_shoppers, stop_shoppers
from bench.probes import (
    LagProbe,
    create_topic,
    ingest_joined_line,
    load_average,
    log,
    rss_mb,
    wait_assigned,
)
from tests.support.worker import Worker, WorkerEnv

RESULTS = Path(__file__).parent / "results"
SAMPLE_S = 10.0
WINDOW_SHARE = 20 / 30  # the "last 20 minutes" of 30
MAX_GROWTH = 0.10
FIELDS = ("elapsed_s", "rss_mb", "ingest_lag", "windows_lag", "load_1m")


async def sample(
    bootstrap: str, workdir: Path, rate: float, seconds: float
) -> list[dict[str, float]]:
    """Run the worker under live traffic for `seconds`, sampling every SAMPLE_S."""
    topic = await create_topic(bootstrap, "bench-soak", 1)
    env = WorkerEnv(bootstrap, workdir / "w", partitions=4,
                    extra={"PYTHONUNBUFFERED": "1", "SINK_FLUSH_SECONDS": "10"})  # fmt: skip
    env.topic = topic
    worker = Worker(env).start()
    assert worker.proc is not None
    shoppers = None
    rows: list[dict[str, float]] = []
    try:
        await wait_assigned(worker, ingest_joined_line(worker))
        shoppers = start_shoppers(bootstrap, topic, rate, seconds + 30, workdir / "shoppers.log")
        began = time.monotonic()
        async with LagProbe(bootstrap) as probe:
            for n in range(int(seconds // SAMPLE_S) + 1):
                await asyncio.sleep(max(began + n * SAMPLE_S - time.monotonic(), 0))
                if not worker.alive():
                    msg = f"the worker died:\n{worker.log()[-3000:]}"
                    raise RuntimeError(msg)
                ingest = await probe.lag(f"{env.app_id}-ingest", topic)
                windows = await probe.lag(f"{env.app_id}-windows", env.internal_topic)
                rows.append({
                    "elapsed_s": round(time.monotonic() - began, 1),
                    "rss_mb": round(rss_mb(worker.proc.pid) or 0.0, 1),
                    "ingest_lag": -1 if ingest is None else ingest,
                    "windows_lag": -1 if windows is None else windows,
                    "load_1m": load_average()[0],
                })  # fmt: skip
                if n % 6 == 0:
                    log(f"soak: {rows[-1]}")
    finally:
        if shoppers is not None:
            stop_shoppers(shoppers)
        worker.stop()
    return rows


def memory_verdict(rows: list[dict[str, float]], seconds: float) -> dict[str, object]:
    """Growth of RSS over the last WINDOW_SHARE of the run (mean of 3 samples at each end)."""
    window_s = seconds * WINDOW_SHARE
    inside = [r for r in rows if r["elapsed_s"] >= rows[-1]["elapsed_s"] - window_s]
    first = sum(r["rss_mb"] for r in inside[:3]) / len(inside[:3])
    last = sum(r["rss_mb"] for r in inside[-3:]) / len(inside[-3:])
    growth = last / first - 1
    return {"window_minutes": round(window_s / 60, 1), "rss_start_mb": round(first),
            "rss_end_mb": round(last), "growth": round(growth, 3),
            "flat": growth <= MAX_GROWTH}  # fmt: skip


def plot(rows: list[dict[str, float]], verdict: dict[str, object], png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [r["elapsed_s"] / 60 for r in rows]
    fig, (mem, lag) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    mem.plot(minutes, [r["rss_mb"] for r in rows], color="tab:blue")
    mem.axvspan(minutes[-1] - float(verdict["window_minutes"]), minutes[-1],  # type: ignore[arg-type]
                color="tab:orange", alpha=0.15, label="flatness window")  # fmt: skip
    mem.set_ylabel("worker RSS (MB)")
    mem.set_ylim(bottom=0)
    mem.legend(loc="lower right")
    mem.set_title(title)
    lag.plot(minutes, [max(r["ingest_lag"], 0) for r in rows], label="ingest group (records)")
    lag.plot(minutes, [max(r["windows_lag"], 0) for r in rows], label="window group (messages)")
    lag.set_ylabel("uncommitted")
    lag.set_xlabel("minutes")
    lag.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def run(bootstrap: str, minutes: float = 30.0, rate: float = 5000.0) -> dict[str, object]:
    """Soak for `minutes`; writes bench/results/soak-<time>.{csv,png} and returns the verdict."""
    seconds = minutes * 60
    log(f"soak: {minutes:g} min at {rate:,.0f} events/s live, sampling every {SAMPLE_S:g} s")
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as scratch:
        rows = asyncio.run(sample(bootstrap, Path(scratch), rate, seconds))
    verdict = memory_verdict(rows, seconds)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(exist_ok=True)
    csv_path, png_path = RESULTS / f"soak-{stamp}.csv", RESULTS / f"soak-{stamp}.png"
    with csv_path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    flat = "flat" if verdict["flat"] else "NOT flat"
    plot(rows, verdict, png_path, f"soak: {minutes:g} min at {rate:,.0f} events/s, memory {flat}")
    return verdict | {
        "minutes": minutes, "rate": rate, "samples": len(rows), "csv": str(csv_path),
        "png": str(png_path), "final_ingest_lag": rows[-1]["ingest_lag"],
        "final_windows_lag": rows[-1]["windows_lag"],
        "max_ingest_lag": max(r["ingest_lag"] for r in rows),
    }  # fmt: skip


def main() -> None:
    minutes = float(os.environ.get("SOAK_MINUTES", "30"))
    rate = float(os.environ.get("SOAK_RATE", "5000"))
    result = run(os.environ.get("TEST_KAFKA_BOOTSTRAP", "localhost:9092"), minutes, rate)
    window, growth = result["window_minutes"], result["growth"]
    assert isinstance(growth, float)
    scaled = "" if minutes == 30 else f" (scaled from 20 of 30 min to {window} of {minutes:g})"
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    print(
        f"memory {'flat' if result['flat'] else 'NOT flat'}: RSS {result['rss_start_mb']} -> "
        f"{result['rss_end_mb']} MB ({growth:+.1%}) over the last {window} min"
        f"{scaled}; limit +{MAX_GROWTH:.0%}. Final lag: ingest {result['final_ingest_lag']} "
        f"records, windows {result['final_windows_lag']} messages."
    )


if __name__ == "__main__":
    main()
