"""Backtest benchmark: DuckDB over a week of simulated history against a plain-Python loop.

    .venv/bin/python -m bench.backtest [WORKDIR]

Two weeks of history from `clickstream simulate` (seed 3): one at the simulator's default
density, one dense enough for 10M events. Each is stored as the sink stores it (Parquet by
UTC day, four partitions keyed by product, offsets in order) and backtested over the whole
week with the default rule; the baseline is the original system's approach, every event
through a Python loop with per-window dicts, in the same run. Both must find the same
alerts. Also the import rate of `clickstream import` over the original system's log format,
against a loop that only parses the same lines.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow.compute as pc
import pyarrow.parquet as pq

from app.kafka.partitioner import kafka_partition
from app.storage.schema import EVENTS_SCHEMA
from batch.backtest import Backtest, epoch_ms
from batch.backtest_rule import Thresholds, WindowRule
from bench.probes import log
from bench.table import Row
from tests.support.batch_original_logs import original_day, write_log

CLICKSTREAM = str(Path(sys.executable).parent / "clickstream")
START = datetime(2024, 6, 3, tzinfo=UTC)
WEEK_S = 7 * 86_400
PARTITIONS = 4
ROWS_PER_FILE = 1_000_000
RULE = WindowRule(600_000, 60_000, 60_000)
THRESHOLDS = Thresholds(100, 5)
_TYPES = {"view": 0, "add_to_cart": 1, "purchase": 2}


def simulate(path: Path, rate: float | None) -> int:
    """A week of simulated history as JSON Lines; returns the number of events."""
    args = [CLICKSTREAM, "simulate", "--start", START.isoformat(), "--duration", str(WEEK_S),
            "--seed", "3", "--output", str(path)]  # fmt: skip
    if rate is not None:
        args += ["--rate", str(rate)]
    subprocess.run(args, check=True, capture_output=True)
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def store_like_the_sink(jsonl: Path, data_dir: Path) -> None:
    """date=YYYY-MM-DD/<topic>-p<partition>-<first>-<last>.parquet, offsets in line order."""
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            "CREATE TABLE lines AS SELECT *, row_number() OVER () AS line "
            "FROM read_json(?, format = 'newline_delimited')",
            [str(jsonl)],
        )
        products = [
            row[0] for row in con.execute("SELECT DISTINCT product_id FROM lines").fetchall()
        ]
        con.execute("CREATE TABLE keyed (product_id VARCHAR, kafka_partition INTEGER)")
        keyed = [(p, kafka_partition(p.encode(), PARTITIONS)) for p in products]
        con.executemany("INSERT INTO keyed VALUES (?, ?)", keyed)
        con.execute("""
            CREATE TABLE events AS
            SELECT event_id, user_id, session_id, product_id, product_category, event_type,
                   timestamp::TIMESTAMPTZ AS event_time, price, NULL::VARCHAR AS extra,
                   kafka_partition,
                   row_number() OVER (PARTITION BY kafka_partition ORDER BY line) - 1
                       AS kafka_offset
            FROM lines JOIN keyed USING (product_id)
        """)  # fmt: skip
        for partition in range(PARTITIONS):
            table = con.sql(
                f"SELECT * FROM events WHERE kafka_partition = {partition} ORDER BY kafka_offset"
            ).to_arrow_table()
            for first in range(0, table.num_rows, ROWS_PER_FILE):
                chunk = table.slice(first, ROWS_PER_FILE)
                days = pc.cast(chunk["event_time"], "date32").unique().to_pylist()
                for day in days:
                    part = chunk.filter(pc.equal(pc.cast(chunk["event_time"], "date32"), day))
                    part = part.cast(EVENTS_SCHEMA)
                    offsets = part["kafka_offset"]
                    name = (f"clickstream-events-p{partition}-{pc.min(offsets).as_py():020d}-"
                            f"{pc.max(offsets).as_py():020d}.parquet")  # fmt: skip
                    folder = data_dir / "events" / f"date={day}"
                    folder.mkdir(parents=True, exist_ok=True)
                    pq.write_table(part, folder / name, compression="zstd")


def backtest_alerts(data_dir: Path) -> tuple[int, float]:
    began = time.perf_counter()
    with Backtest.over(data_dir, START, START + timedelta(seconds=WEEK_S), RULE) as backtest:
        backtest.decide([THRESHOLDS])
        count = backtest.alert_counts()[THRESHOLDS]
    return count, time.perf_counter() - began


def python_loop(data_dir: Path) -> tuple[int, float]:
    """Every event, partition by partition in offset order, through dicts: the stream's rule."""
    began = time.perf_counter()
    size, step, lateness = RULE.size_ms, RULE.step_ms, RULE.lateness_ms
    first, end = epoch_ms(START), epoch_ms(START) + WEEK_S * 1000
    columns = ["product_id", "event_type", "event_time", "kafka_partition", "kafka_offset"]
    by_partition: dict[int, list[Path]] = defaultdict(list)
    for path in sorted((data_dir / "events").glob("date=*/*.parquet")):
        by_partition[int(path.name.split("-p")[1].split("-")[0])].append(path)
    alerts = 0
    for paths in by_partition.values():
        windows: dict[tuple[str, int], list[int]] = {}
        decided: set[tuple[str, int]] = set()
        newest = None
        for path in sorted(paths, key=lambda p: p.name):
            table = pq.read_table(path, columns=columns)
            times = pc.cast(table["event_time"], "int64").to_pylist()
            rows = zip(table["product_id"].to_pylist(), table["event_type"].to_pylist(), times,
                       strict=True)  # fmt: skip
            for product, kind, t in rows:
                newest = t if newest is None or t > newest else newest
                watermark = newest - lateness
                index = _TYPES[kind]
                start = t - t % step - size + step
                while start <= t:
                    if start + size >= watermark:
                        key = (product, start)
                        counts = windows.get(key)
                        if counts is None:
                            counts = windows[key] = [0, 0, 0]
                        counts[index] += 1
                        if index == 0 and counts[0] > THRESHOLDS.views and key not in decided:
                            decided.add(key)
                            alerts += counts[2] < THRESHOLDS.purchases and first <= start < end
                    start += step
    return alerts, time.perf_counter() - began


def import_rate(workdir: Path, lines: int = 1_000_000) -> dict[str, float]:
    """`clickstream import` lines/s on the original log format, and a parse-only loop's."""
    day = date(2024, 6, 1)
    log_file = write_log(workdir / "raw", day, original_day(day, lines, seed=9))
    began = time.perf_counter()
    with log_file.open("rb") as handle:
        for line in handle:
            json.loads(line)
    parse_only = lines / (time.perf_counter() - began)
    env = {**os.environ, "DATA_DIR": str(workdir / "imported")}
    done = subprocess.run([CLICKSTREAM, "import", str(log_file)], capture_output=True, text=True,
                          check=True, env=env)  # fmt: skip
    match = re.search(r"\(([\d,]+) lines/s\)", done.stdout)
    if not match:
        msg = f"no rate in: {done.stdout!r} {done.stderr[-500:]!r}"
        raise RuntimeError(msg)
    rate = float(match.group(1).replace(",", ""))
    return {"lines": lines, "import_lines_per_s": rate, "parse_only_lines_per_s": round(parse_only),
            "ratio": round(rate / parse_only, 3)}  # fmt: skip


def run(workdir: Path) -> dict[str, object]:
    """Both weeks (default density, then 10M events), then the import rate."""
    results: dict[str, object] = {}
    for name, rate in (("default_density", None), ("ten_million", 10_000_000 / WEEK_S)):
        jsonl = workdir / f"{name}.jsonl"
        log(f"backtest: simulating a week ({name})")
        events = simulate(jsonl, rate)
        store_like_the_sink(jsonl, workdir / name)
        jsonl.unlink()
        log(f"backtest: {events:,} events stored; DuckDB, then the Python loop")
        ours, ours_s = backtest_alerts(workdir / name)
        loop, loop_s = python_loop(workdir / name)
        if ours != loop:
            msg = f"backtest and the Python loop disagree on {name}: {ours} != {loop} alerts"
            raise AssertionError(msg)
        results[name] = {
            "events": events,
            "alerts": ours,
            "backtest_s": round(ours_s, 2),
            "python_loop_s": round(loop_s, 1),
            "speedup": round(loop_s / ours_s, 1),
        }
    log("backtest: import rate on the original log format")
    results["import"] = import_rate(workdir)
    return results


def bench_rows(result: dict[str, object]) -> list[Row]:
    """Run in a scratch directory, keep the figures in result["backtest"], return the rows."""
    with tempfile.TemporaryDirectory(prefix="bench-backtest-") as scratch:
        figures = result["backtest"] = run(Path(scratch))
    rows = []
    for name in ("default_density", "ten_million"):
        case = figures[name]
        assert isinstance(case, dict)
        n, ours, loop = case["events"], case["backtest_s"], case["python_loop_s"]
        note = f"{case['alerts']:,} alerts, equal in both; 4 partitions keyed by product"
        baseline = f"{n / loop:,.0f} ev/s ({loop} s) Python loop"
        rows.append(Row(f"backtest, a week, {n:,} events", f"{n / ours:,.0f} ev/s ({ours} s)",
                        baseline, case["speedup"], note))  # fmt: skip
    imported = figures["import"]
    assert isinstance(imported, dict)
    note = "validated, deduplicated, Parquet written and fsynced"
    rows.append(Row(f"clickstream import, {imported['lines']:,} original-format lines",
                    f"{imported['import_lines_per_s']:,.0f} lines/s",
                    f"{imported['parse_only_lines_per_s']:,} lines/s json.loads alone",
                    imported["ratio"], note))  # fmt: skip
    return rows


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="bench-backtest-") as scratch:
        target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(scratch)
        print(json.dumps(run(target), indent=2))
