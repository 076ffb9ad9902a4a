"""Daily report benchmark: DuckDB over 1M and 10M events of one day vs a plain-Python loop.

Run: `.venv/bin/python bench/report.py [WORKDIR] [--sizes 1000000,10000000]`; prints a table.
The Python loop is the original system's approach (iterate rows, count in dicts); both
compute the same figures, and the run checks that they agree.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from app.report_day import ReportDay
from app.storage.schema import EVENTS_SCHEMA
from batch.query import compute_summary

DAY = date(2024, 6, 1)
USERS = 50_000
PRODUCTS = 1_000
CATEGORIES = ("electronics", "books", "fashion", "home", "toys", "sports", "beauty", "garden")
ROWS_PER_FILE = 1_000_000
_DAY_MS = 86_400_000


def _chunk(first_offset: int, rows: int, start_ms: int, span_ms: int, seed: int) -> pa.Table:
    """`rows` events spread over [start_ms, start_ms + span_ms), built column-wise by Arrow."""

    def uniform(salt: int) -> pa.Array:
        return pc.random(rows, initializer=seed * 7919 + salt)

    def index(values: pa.Array, n: int) -> pa.Array:
        return pc.cast(pc.floor(pc.multiply(values, n)), pa.int64())

    users = index(uniform(1), USERS)
    products = index(pc.power(uniform(2), 3), PRODUCTS)  # skewed: a few products get most views
    kind = uniform(3)
    type_index = pc.add(
        pc.cast(pc.greater_equal(kind, 0.7), pa.int64()),
        pc.cast(pc.greater_equal(kind, 0.9), pa.int64()),
    )
    offsets = pa.array(range(first_offset, first_offset + rows), pa.int64())
    times = pc.add(index(uniform(4), span_ms), start_ms)
    user_names = pa.array([f"U{n:06d}" for n in range(USERS)])
    product_names = pa.array([f"P{n:05d}" for n in range(PRODUCTS)])
    categories = pa.array([CATEGORIES[n % len(CATEGORIES)] for n in range(PRODUCTS)])
    return pa.table(
        {
            "event_id": pc.binary_join_element_wise("e", pc.cast(offsets, pa.string()), ""),
            "user_id": pc.take(user_names, users),
            "session_id": pa.nulls(rows, pa.string()),
            "product_id": pc.take(product_names, products),
            "product_category": pc.take(categories, products),
            "event_type": pc.take(pa.array(["view", "add_to_cart", "purchase"]), type_index),
            "event_time": pc.cast(times, pa.timestamp("ms", tz="UTC")),
            "price": pc.round(pc.multiply(uniform(5), 500), 2),
            "extra": pa.nulls(rows, pa.string()),
            "kafka_partition": pa.array([0] * rows, pa.int32()),
            "kafka_offset": offsets,
        },
        schema=EVENTS_SCHEMA,
    )


def write_day(data_dir: Path, total: int) -> float:
    """Write `total` events of DAY (UTC) as sink-like files of 1M rows, in time order."""
    folder = data_dir / "events" / f"date={DAY}"
    folder.mkdir(parents=True, exist_ok=True)
    start_ms = int(datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC).timestamp() * 1000)
    files = -(-total // ROWS_PER_FILE)
    began = time.perf_counter()
    for n in range(files):
        first = n * ROWS_PER_FILE
        rows = min(ROWS_PER_FILE, total - first)
        span = _DAY_MS // files
        table = _chunk(first, rows, start_ms + n * span, span, seed=n + 1)
        name = f"clickstream-events-p0-{first:020d}-{first + rows - 1:020d}.parquet"
        pq.write_table(table, folder / name, compression="zstd")
    return time.perf_counter() - began


def python_loop(data_dir: Path, day: ReportDay) -> dict[str, int]:
    """The original approach: every row through Python, counted in dicts and sets."""
    start_ms = int(day.start.timestamp() * 1000)
    end_ms = int(day.end.timestamp() * 1000)
    by_type: Counter[str] = Counter()
    kinds_by_user: defaultdict[str, set[str]] = defaultdict(set)
    views: Counter[str] = Counter()
    category_views: Counter[str] = Counter()
    category_purchases: Counter[str] = Counter()
    columns = ["user_id", "product_id", "product_category", "event_type", "event_time"]
    for path in sorted((data_dir / "events" / f"date={DAY}").glob("*.parquet")):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536, columns=columns):
            times = pc.cast(batch.column("event_time"), pa.int64()).to_pylist()
            rows = zip(
                batch.column("user_id").to_pylist(),
                batch.column("product_id").to_pylist(),
                batch.column("product_category").to_pylist(),
                batch.column("event_type").to_pylist(),
                times,
                strict=True,
            )
            for user, product, category, kind, at in rows:
                if not start_ms <= at < end_ms:
                    continue
                by_type[kind] += 1
                kinds_by_user[user].add(kind)
                if kind == "view":
                    views[product] += 1
                    category_views[category] += 1
                elif kind == "purchase":
                    category_purchases[category] += 1
    viewed = [u for u, k in kinds_by_user.items() if "view" in k]
    return {
        "total_events": sum(by_type.values()),
        "unique_users": len(kinds_by_user),
        "buyers": sum(1 for k in kinds_by_user.values() if "purchase" in k),
        "funnel_purchased": sum(
            1 for u in viewed if {"add_to_cart", "purchase"} <= kinds_by_user[u]
        ),
    }


def run(workdir: Path, sizes: tuple[int, ...] = (1_000_000, 10_000_000)) -> dict[str, object]:
    """Write, report and loop for each size; returns the figures by size."""
    day = ReportDay(DAY, ZoneInfo("UTC"))
    results: dict[str, object] = {}
    for size in sizes:
        data_dir = workdir / f"events-{size}"
        shutil.rmtree(data_dir, ignore_errors=True)
        write_s = write_day(data_dir, size)
        parquet_mb = sum(p.stat().st_size for p in data_dir.rglob("*.parquet")) / 1e6
        began = time.perf_counter()
        summary = compute_summary(data_dir, day)
        report_s = time.perf_counter() - began
        began = time.perf_counter()
        loop = python_loop(data_dir, day)
        loop_s = time.perf_counter() - began
        ours = {
            "total_events": summary.total_events,
            "unique_users": summary.unique_users,
            "buyers": summary.buyers,
            "funnel_purchased": summary.funnel.purchased,
        }
        if ours != loop:
            msg = f"DuckDB and the Python loop disagree for {size} events: {ours} != {loop}"
            raise AssertionError(msg)
        results[str(size)] = {
            "events": size,
            "parquet_mb": round(parquet_mb, 1),
            "write_s": round(write_s, 2),
            "report_s": round(report_s, 3),
            "python_loop_s": round(loop_s, 2),
            "speedup": round(loop_s / report_s, 1),
        }
    return results


@click.command()
@click.argument("workdir", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--sizes", default="1000000,10000000", show_default=True,
              help="Comma-separated event counts.")  # fmt: skip
def main(workdir: Path | None, sizes: str) -> None:
    """Time the daily report (DuckDB) against a per-event Python loop."""
    counts = tuple(int(s) for s in sizes.split(","))
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        results = run(workdir or Path(tmp), counts)
    head = f"{'events':>12} {'parquet MB':>11} {'write s':>8} {'report s':>9} "
    click.echo(head + f"{'python loop s':>14} {'speedup':>8}")
    for row in results.values():
        assert isinstance(row, dict)
        click.echo(
            f"{row['events']:>12,} {row['parquet_mb']:>11} {row['write_s']:>8} "
            f"{row['report_s']:>9} {row['python_loop_s']:>14} {row['speedup']:>7}x"
        )


if __name__ == "__main__":
    main()
