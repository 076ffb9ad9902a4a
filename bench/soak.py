"""Soak: the worker as the product runs it, under live traffic for a long while; is each worker
process's memory flat and under MAX_RSS_MB, does it keep up?

    SOAK_MINUTES=30 bash scripts/test-with-broker.sh .venv/bin/python -m bench.soak

`clickstream worker --processes N`, N as `--processes auto` picks it (one per CPU, at most
PARTITIONS), reads a PARTITIONS-partition input topic into which `clickstream simulate` sends
live shoppers (SOAK_RATE, default 5,000 events/s, 10,000 products) for SOAK_MINUTES (default
30). Every SAMPLE_S the resident memory (VmRSS) of each worker process and of the whole process
tree (supervisor and workers), each worker's CPU time and the lag of the ingest and window
groups go into a CSV, plotted to a PNG under bench/results/.

The issue's rule, for each worker process (each is a worker of its own): the first
SOAK_WARMUP_MINUTES (default 5) of traffic are warm-up and left out; the mean RSS of the
last WINDOW_MINUTES must be within MAX_DRIFT of the mean of the first WINDOW_MINUTES after
warm-up, and the process's peak (VmHWM, the kernel's high-water mark, start-up included) under
MAX_RSS_MB. Runs with less than two windows after warm-up (SOAK_MINUTES < 25 with the default
warm-up) compare the first and last thirds of the time after warm-up instead. A restarted
worker process fails the soak: its memory is then no longer one process's. The tree total is
printed and plotted, not judged. Exit status 1 when any process is not flat, over the limit or
restarted.
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

from app.workers.command import process_count
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
from bench.process_tree import cpu_and_rss, tree_usage
from tests.support.worker import SupervisedWorkers, WorkerEnv

RESULTS = Path(__file__).parent / "results"
SAMPLE_S = 10.0
PARTITIONS = 4  # the product's default PARTITIONS; the worker creates its input topic so
WINDOW_MINUTES = 10.0
MAX_DRIFT = 0.05
MAX_RSS_MB = 500.0

Sample = dict[str, float]


async def sample(
    bootstrap: str, workdir: Path, rate: float, seconds: float, processes: int
) -> tuple[list[Sample], dict[str, object]]:
    """Run the workers under live traffic for `seconds`, sampling every SAMPLE_S; returns the
    samples and what only the end knows (peaks, restarts, the rate that arrived)."""
    topic = await create_topic(bootstrap, "bench-soak", PARTITIONS)
    env = WorkerEnv(bootstrap, workdir / "w", partitions=PARTITIONS,
                    extra={"PYTHONUNBUFFERED": "1", "SINK_FLUSH_SECONDS": "10"})  # fmt: skip
    env.topic = topic
    workers = SupervisedWorkers(env, processes).start()
    assert workers.proc is not None
    shoppers = None
    rows: list[Sample] = []
    peaks: dict[int, float] = {}
    try:
        await wait_assigned(workers, ingest_joined_line(workers))
        shoppers = start_shoppers(bootstrap, topic, rate, seconds + 30, workdir / "shoppers.log")
        began = time.monotonic()
        async with LagProbe(bootstrap) as probe:
            first_records = await probe.produced(topic)
            for n in range(int(seconds // SAMPLE_S) + 1):
                await asyncio.sleep(max(began + n * SAMPLE_S - time.monotonic(), 0))
                if not workers.alive():
                    msg = f"the supervisor died:\n{workers.log()[-3000:]}"
                    raise RuntimeError(msg)
                row: Sample = {"elapsed_s": round(time.monotonic() - began, 1)}
                for number, pids in sorted(workers.child_pids().items()):
                    cpu, rss = cpu_and_rss(pids[-1]) or (0.0, 0.0)
                    row |= {f"rss_mb_{number}": round(rss, 1), f"cpu_s_{number}": round(cpu, 1)}
                    peak = rss_mb(pids[-1], "VmHWM") or 0.0
                    peaks[number] = max(peaks.get(number, 0.0), peak, rss)
                ingest = await probe.lag(f"{env.app_id}-ingest", topic)
                windows = await probe.lag(f"{env.app_id}-windows", env.internal_topic)
                row |= {"tree_rss_mb": round(tree_usage(workers.proc.pid)[1], 1),
                        "ingest_lag": -1 if ingest is None else ingest,
                        "windows_lag": -1 if windows is None else windows,
                        "load_1m": load_average()[0]}  # fmt: skip
                rows.append(row)
                if n % 6 == 0:
                    log(f"soak: {row}")
            arrived = (await probe.produced(topic) - first_records) / rows[-1]["elapsed_s"]
    finally:
        if shoppers is not None:
            stop_shoppers(shoppers)
        workers.stop()
    restarts = {str(n): len(pids) - 1 for n, pids in workers.child_pids().items() if len(pids) > 1}
    return rows, {"peak_rss_mb": {str(n): round(p) for n, p in sorted(peaks.items())},
                  "restarts": restarts, "achieved_rate": round(arrived)}  # fmt: skip


def flatness_windows(seconds: float, warmup_s: float) -> tuple[float, float, float, bool]:
    """(first window's start, its end, last window's start, scaled?) in seconds of traffic;
    the last window ends with the run. Scaled to thirds when two windows do not fit."""
    after = seconds - warmup_s
    width = WINDOW_MINUTES * 60
    scaled = after < 2 * width
    if scaled:
        width = after / 3
    return warmup_s, warmup_s + width, seconds - width, scaled


def drift(rows: list[Sample], column: str, windows: tuple[float, float, float, bool]
          ) -> dict[str, float]:  # fmt: skip
    """Mean of `column` over the first window and over the last, their relative change, and
    the least-squares slope over the last window (MB/min): still growing, or grown and flat?"""
    start, end, last_start, _ = windows
    first = [r[column] for r in rows if start <= r["elapsed_s"] < end]
    last = [(r["elapsed_s"] / 60, r[column]) for r in rows if r["elapsed_s"] > last_start]
    first_mb, last_mb = sum(first) / len(first), sum(mb for _, mb in last) / len(last)
    mean_t = sum(t for t, _ in last) / len(last)
    spread = sum((t - mean_t) ** 2 for t, _ in last) or 1.0
    slope = sum((t - mean_t) * (mb - last_mb) for t, mb in last) / spread
    return {"first_mb": round(first_mb, 1), "last_mb": round(last_mb, 1),
            "drift": round(last_mb / first_mb - 1, 4),
            "last_slope_mb_per_min": round(slope, 2)}  # fmt: skip


def verdict(rows: list[Sample], ends: dict[str, object], seconds: float, warmup_s: float
            ) -> dict[str, object]:  # fmt: skip
    """The issue's rule for each worker process, the tree's figures, and `ok` for all."""
    windows = flatness_windows(seconds, warmup_s)
    peaks = ends["peak_rss_mb"]
    assert isinstance(peaks, dict)
    processes = {}
    for number, peak in peaks.items():
        found = drift(rows, f"rss_mb_{number}", windows)
        cores = (rows[-1][f"cpu_s_{number}"] - rows[0][f"cpu_s_{number}"]) / rows[-1]["elapsed_s"]
        processes[number] = found | {
            "peak_mb": peak, "cores": round(cores, 2),
            "flat": abs(found["drift"]) <= MAX_DRIFT, "under_limit": peak < MAX_RSS_MB,
        }  # fmt: skip
    tree = drift(rows, "tree_rss_mb", windows) | {"peak_mb": max(r["tree_rss_mb"] for r in rows)}
    flat = all(p["flat"] for p in processes.values())
    under = all(p["under_limit"] for p in processes.values())
    start, end, last_start, scaled = windows
    return {"flat": flat, "under_limit": under, "ok": flat and under and not ends["restarts"],
            "processes": processes, "tree": tree, "windows_minutes": [
                round(start / 60, 1), round(end / 60, 1), round(last_start / 60, 1),
                round(seconds / 60, 1)], "windows_scaled": scaled}  # fmt: skip


def window_minutes(found: dict[str, object]) -> tuple[float, float, float, float]:
    """Warm-up end = first window's start, its end, last window's start, the run's end."""
    minutes = found["windows_minutes"]
    assert isinstance(minutes, list)
    start, end, last_start, total = (float(m) for m in minutes)
    return start, end, last_start, total


def plot(rows: list[Sample], found: dict[str, object], png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [r["elapsed_s"] / 60 for r in rows]
    fig, (mem, lag) = plt.subplots(2, 1, sharex=True, figsize=(10, 7))
    processes = found["processes"]
    assert isinstance(processes, dict)
    for number in processes:
        mem.plot(minutes, [r[f"rss_mb_{number}"] for r in rows], label=f"worker process {number}")
    mem.plot(minutes, [r["tree_rss_mb"] for r in rows], color="grey", linestyle="--",
             label="process tree (supervisor + workers)")  # fmt: skip
    mem.axhline(MAX_RSS_MB, color="tab:red", linewidth=1, label=f"{MAX_RSS_MB:.0f} MB limit")
    start, end, last_start, total = window_minutes(found)
    mem.axvspan(0, start, color="grey", alpha=0.15, label="warm-up")
    mem.axvspan(start, end, color="tab:green", alpha=0.15, label="first window")
    mem.axvspan(last_start, total, color="tab:orange", alpha=0.15, label="last window")
    mem.set_ylabel("RSS (MB)")
    mem.set_ylim(bottom=0)
    mem.legend(loc="lower right", fontsize="small", ncol=2)
    mem.set_title(title)
    lag.plot(minutes, [max(r["ingest_lag"], 0) for r in rows], label="ingest group (records)")
    lag.plot(minutes, [max(r["windows_lag"], 0) for r in rows], label="window group (messages)")
    lag.set_ylabel("uncommitted")
    lag.set_xlabel("minutes of traffic")
    lag.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def run(bootstrap: str, minutes: float = 30.0, rate: float = 5000.0, warmup: float = 5.0
        ) -> dict[str, object]:  # fmt: skip
    """Soak for `minutes`; writes bench/results/soak-<time>.{csv,png} and returns the verdict."""
    seconds, processes = minutes * 60, process_count("auto", PARTITIONS)
    log(f"soak: {minutes:g} min at {rate:,.0f} events/s live, {processes} worker process(es) "
        f"(--processes auto), warm-up {warmup:g} min, sampling every {SAMPLE_S:g} s")  # fmt: skip
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as scratch:
        rows, ends = asyncio.run(sample(bootstrap, Path(scratch), rate, seconds, processes))
    found = verdict(rows, ends, seconds, warmup * 60)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(exist_ok=True)
    csv_path, png_path = RESULTS / f"soak-{stamp}.csv", RESULTS / f"soak-{stamp}.png"
    with csv_path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[-1]))
        writer.writeheader()
        writer.writerows(rows)
    flat = "flat" if found["flat"] else "NOT flat"
    plot(rows, found, png_path, f"soak: {minutes:g} min at {rate:,.0f} events/s, "
         f"{processes} worker process(es): memory {flat}")  # fmt: skip
    loads = [r["load_1m"] for r in rows]
    return found | ends | {
        "minutes": minutes, "warmup_minutes": warmup, "rate": rate, "samples": len(rows),
        "csv": str(csv_path), "png": str(png_path), "final_ingest_lag": rows[-1]["ingest_lag"],
        "final_windows_lag": rows[-1]["windows_lag"],
        "max_ingest_lag": max(r["ingest_lag"] for r in rows),
        "loadavg_before": load_before, "loadavg_after": load_average(),
        "load_1m_mean": round(sum(loads) / len(loads), 2), "load_1m_max": max(loads),
    }  # fmt: skip


def verdict_line(result: dict[str, object]) -> str:
    """`soak: flat|NOT flat, peak N MB ...` with each process's and the tree's numbers."""
    processes, tree = result["processes"], result["tree"]
    assert isinstance(processes, dict) and isinstance(tree, dict)
    peak = max(p["peak_mb"] for p in processes.values())
    limit = f"< {MAX_RSS_MB:.0f}" if result["under_limit"] else f"OVER {MAX_RSS_MB:.0f}"
    each = "; ".join(
        f"process {n}: mean RSS {p['first_mb']:.0f} -> {p['last_mb']:.0f} MB "
        f"({p['drift']:+.1%}; last window {p['last_slope_mb_per_min']:+.1f} MB/min), peak "
        f"{p['peak_mb']} MB, {p['cores']} cores"
        for n, p in processes.items()
    )
    start, end, last_start, total = window_minutes(result)
    scaled = " (scaled to thirds after warm-up: run too short)" if result["windows_scaled"] else ""
    restarts = f"; RESTARTED {result['restarts']}" if result["restarts"] else ""
    return (
        f"soak: {'flat' if result['flat'] else 'NOT flat'} (within {MAX_DRIFT:.0%}), peak "
        f"{peak:.0f} MB {limit} MB{restarts}: {each}; tree {tree['first_mb']:.0f} -> "
        f"{tree['last_mb']:.0f} MB ({tree['drift']:+.1%}), peak {tree['peak_mb']:.0f} MB; "
        f"windows {start}-{end} vs {last_start}-{total} min{scaled}; input "
        f"{result['achieved_rate']:,} of {result['rate']:,.0f} ev/s; final lag ingest "
        f"{result['final_ingest_lag']:.0f}, windows {result['final_windows_lag']:.0f}; load 1m "
        f"mean {result['load_1m_mean']}, max {result['load_1m_max']}; {result['png']}"
    )


def main() -> None:
    minutes = float(os.environ.get("SOAK_MINUTES", "30"))
    rate = float(os.environ.get("SOAK_RATE", "5000"))
    warmup = float(os.environ.get("SOAK_WARMUP_MINUTES", "5"))
    result = run(os.environ.get("TEST_KAFKA_BOOTSTRAP", "localhost:9092"), minutes, rate, warmup)
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    print(verdict_line(result))
    if not result["ok"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
