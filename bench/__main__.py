"""`make bench`: every performance figure as "ours / baseline = ratio", printed and saved as JSON.

Runs against the broker in TEST_KAFKA_BOOTSTRAP (scripts/test-with-broker.sh starts one).
Knobs for quicker or wider runs: BENCH_ONLY (throughput,streaming,latency,simulator,report,
dedup,backtest), BENCH_PROCESSES (the N of "ours, N processes"; default one per CPU, at most 4),
BENCH_PEERS (quix, spark: `make bench-peers`; empty for none), BENCH_THROUGHPUT_EVENTS,
BENCH_EVENTS, BENCH_PARTITIONS (e.g. 1,4), BENCH_EVENT_RATE (the history rate of the
throughput and streaming inputs), BENCH_STREAM_TIMEOUT, BENCH_LATENCY_RATES (the live rates in
events/s the alert latency is measured at, one after another; default 5000,20000),
BENCH_LATENCY_SECONDS (of planted bursts per rate), BENCH_LATENCY_PROCESSES (1: one worker
process on a 1-partition input; N: `clickstream worker --processes N` on 4 partitions, as
`make run` deploys; default as BENCH_PROCESSES), BENCH_SIM_EVENTS, BENCH_REPORT_EVENTS.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from app.workers.command import cpu_count
from bench import (
    backtest,
    dedup,
    latency,
    producer_limit,
    report,
    simulator,
    streaming,
    throughput,
)
from bench.probes import load_average, log
from bench.table import Row, format_table

RESULTS = Path(__file__).parent / "results"
SECTIONS = ("throughput", "streaming", "latency", "simulator", "report", "dedup", "backtest")


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _git_state() -> dict[str, object]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--", "app", "agents", "tables", "batch").splitlines()
    return {"commit": git("rev-parse", "HEAD"), "uncommitted_code_files": len(changed)}


def streaming_rows(figures: dict[str, object]) -> list[Row]:
    rows = []
    for case in figures.values():
        assert isinstance(case, dict)
        ours, base = case["ours"], case["baseline"]
        per_msg = "1 event/msg" if case["batch_size"] == 1 else f"{case['batch_size']} events/msg"
        parts = f"{case['partitions']} partition" + ("s" if case["partitions"] > 1 else "")
        bound = "" if ours["drained"] else "<= "
        rows.append(Row(
            f"streaming e2e, {per_msg}, {parts}", f"{bound}{ours['events_per_s']:,} ev/s",
            f"{base['events_per_s']:,} ev/s aiokafka+dict", case["ratio"],
            f"{case['events']:,} ev, {case['products']:,} products; "
            f"load {ours['loadavg_before'][0]}->{ours['loadavg_after'][0]} "
            f"(baseline {base['loadavg_before'][0]}->{base['loadavg_after'][0]})",
        ))  # fmt: skip
    return rows


def latency_rows(figures: dict[str, object]) -> list[Row]:
    """Per rate asked: alerts, then incident opens, each "p99 / the 1 s target"."""
    rows = []
    for f in figures.values():
        assert isinstance(f, dict)
        p99, open_p99 = f["p99_s"], f["incident_open_p99_s"]
        achieved, asked = f["achieved_rate"], f["rate"]
        short = " (SHORT of the rate asked)" if achieved < latency.SHORTFALL * asked else ""
        at = f"at {asked:,.0f} ev/s, {f.get('processes', 1)} process(es)"
        conditions = (f"achieved {achieved:,} ev/s{short}, worker {f['worker_cores']} "
                      f"cores, load {f['loadavg_before'][0]}->{f['loadavg_after'][0]}")  # fmt: skip
        rows.append(Row(
            f"alert latency p99 {at}", f"{p99} s", "1.0 s target", p99,
            f"p50 {f['p50_s']} s (halves {f['p50_first_half_s']}, {f['p50_second_half_s']}), "
            f"{f['count']} of {f['expected']} alerts; to decision p50 "
            f"{f['decided_p50_s']}/p99 {f['decided_p99_s']} s, commit+read p50 "
            f"{f['commit_and_read_p50_s']}/p99 {f['commit_and_read_p99_s']} s; {conditions}",
        ))  # fmt: skip
        rows.append(Row(
            f"incident-open latency p99 {at}", f"{open_p99} s", "1.0 s target", open_p99,
            f"p50 {f['incident_open_p50_s']} s, {f['incident_opens']} of "
            f"{f['incident_opens_expected']} incidents; {conditions}",
        ))  # fmt: skip
    return rows


def simulator_rows(ours: dict[str, float], raw: dict[int, dict[str, float]]) -> list[Row]:
    rows = []
    for batch, limit in raw.items():
        rate = ours[f"kafka_batch{batch}_partitions1"]
        per_msg = "1 event/msg" if batch == 1 else f"{batch} events/msg"
        rows.append(Row(f"simulator -> broker, {per_msg}", f"{rate:,.0f} ev/s",
                        f"{limit['events_per_s']:,} ev/s raw producer",
                        round(rate / limit["events_per_s"], 3),
                        f"generation alone {ours['generate_to_devnull']:,.0f} ev/s"))  # fmt: skip
    return rows


def report_rows(figures: dict[str, object]) -> list[Row]:
    (row,) = figures.values()
    assert isinstance(row, dict)
    n = row["events"]
    return [Row(f"daily report, {n:,} events",
                f"{n / row['report_s']:,.0f} ev/s ({row['report_s']} s)",
                f"{n / row['python_loop_s']:,.0f} ev/s ({row['python_loop_s']} s) Python loop",
                row["speedup"], "DuckDB over Parquet, results checked equal")]  # fmt: skip


def main() -> None:
    bootstrap = _env("TEST_KAFKA_BOOTSTRAP", "localhost:9092")
    only = set(_env("BENCH_ONLY", ",".join(SECTIONS)).split(","))
    started, began = datetime.now(UTC), time.monotonic()
    result: dict[str, object] = {"started_at": started.isoformat(), "machine": {
        "cpus": os.cpu_count(), "loadavg_start": load_average()}, "git": _git_state()}  # fmt: skip
    rows: list[Row] = []
    if "throughput" in only:
        figures = throughput.run(
            bootstrap, events=int(_env("BENCH_THROUGHPUT_EVENTS", "1000000")),
            processes=int(_env("BENCH_PROCESSES", str(min(cpu_count(), 4)))),
            rate=float(_env("BENCH_EVENT_RATE", "5000")),
            timeout=float(_env("BENCH_STREAM_TIMEOUT", "600")),
            peers=tuple(p for p in _env("BENCH_PEERS", "quix").split(",") if p),
        )  # fmt: skip
        result["throughput"] = figures
        rows += throughput.rows(figures)
    if "streaming" in only:
        figures = streaming.run(
            bootstrap, events=int(_env("BENCH_EVENTS", "1000000")),
            partitions=tuple(int(p) for p in _env("BENCH_PARTITIONS", "1").split(",")),
            rate=float(_env("BENCH_EVENT_RATE", "5000")),
            timeout=float(_env("BENCH_STREAM_TIMEOUT", "600")),
        )  # fmt: skip
        result["streaming"] = figures
        rows += streaming_rows(figures)
    if "latency" in only:
        rates = tuple(float(r) for r in _env("BENCH_LATENCY_RATES", "5000,20000").split(","))
        processes = _env(
            "BENCH_LATENCY_PROCESSES", _env("BENCH_PROCESSES", str(min(cpu_count(), 4)))
        )
        result["latency"] = figures = latency.run(
            bootstrap,
            rates,
            seconds=float(_env("BENCH_LATENCY_SECONDS", "60")),
            processes=int(processes),
        )
        rows += latency_rows(figures)
    if "simulator" in only:
        events = int(_env("BENCH_SIM_EVENTS", "1000000"))
        log(f"simulator: {events:,} events, 1 and 100 per message, then the raw producer")
        sim = simulator.run(bootstrap, events=events, rounds=1, cases=((1, 1), (100, 1)))
        raw = {batch: producer_limit.run(bootstrap, events, batch) for batch in (1, 100)}
        result["simulator"] = {
            "simulate": sim,
            "raw_producer": {f"batch{b}": f for b, f in raw.items()},
        }
        rows += simulator_rows(sim, raw)
    if "report" in only:
        events = int(_env("BENCH_REPORT_EVENTS", "10000000"))
        log(f"report: writing {events:,} events of a day, then DuckDB and the Python loop")
        with tempfile.TemporaryDirectory(prefix="bench-report-") as scratch:
            result["report"] = figures = report.run(Path(scratch), (events,))
        rows += report_rows(figures)
    if "dedup" in only:
        log("dedup: window state with a supplied event_id on every row, and without")
        result["dedup"] = figures = dedup.run()
        rows.append(Row(
            f"window state, {figures['events']:,} events with event ids",
            f"{figures['with_ids_events_per_s']:,} ev/s",
            f"{figures['without_ids_events_per_s']:,} ev/s without ids", figures["ratio"],  # type: ignore[arg-type]
            "apply + flush over dict stores, best of 5 each, alternated",
        ))  # fmt: skip
    if "backtest" in only:
        rows += backtest.bench_rows(result)
    result["table"] = [row.as_dict() for row in rows]
    result["machine"]["loadavg_end"] = load_average()  # type: ignore[index]
    result["duration_s"] = round(time.monotonic() - began)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"bench-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    data = orjson.dumps(result, option=orjson.OPT_INDENT_2)
    path.write_bytes(data)
    (RESULTS / "latest.json").write_bytes(data)
    print(format_table(rows, started, result["duration_s"]))  # type: ignore[arg-type]
    print(f"figures: {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    main()
