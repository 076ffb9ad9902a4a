"""`clickstream import`: the old system's logs and our simulator's output, into the store once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result

from app.cli import cli
from app.settings import get_settings
from tests.support.batch_original_logs import original_day, write_log
from tests.support.batch_recount import recount
from tests.support.batch_stream_store import processing_order
from tests.support.window_oracle import WindowOracle

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY = date(2024, 6, 1)
NEXT = date(2024, 6, 2)


@pytest.fixture
def data_dir(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("DATA_DIR", str(clean_env / "data"))
    get_settings.cache_clear()
    yield clean_env / "data"
    get_settings.cache_clear()


def _run(*args: str) -> Result:
    get_settings.cache_clear()
    return CliRunner().invoke(cli, list(args))


def _stored(data_dir: Path) -> tuple[int, int, int]:
    """Rows, distinct ids and distinct source partitions, read back by DuckDB."""
    with duckdb.connect() as con:
        row = con.execute(
            "SELECT count(*), count(DISTINCT event_id), count(DISTINCT kafka_partition) "
            "FROM read_parquet(?)", [str(data_dir / "events" / "*" / "*.parquet")],
        ).fetchone()  # fmt: skip
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def test_original_logs_import_once_and_report_and_backtest_work_on_them(
    data_dir: Path, tmp_path: Path
) -> None:
    logs = tmp_path / "raw"
    first = write_log(logs, DAY, original_day(DAY, 20_000, seed=1, flash_product="product_77"))
    write_log(logs, NEXT, original_day(NEXT, 12_000, seed=2))
    result = _run("import", str(logs))
    assert result.exit_code == 0, result.output
    assert _stored(data_dir) == (32_000, 32_000, 2)  # one line, one row; a source per file
    again = _run("import", str(first), str(logs / f"clickstream_{NEXT}.jsonl"))
    assert again.exit_code == 0, again.output
    assert _stored(data_dir) == (32_000, 32_000, 2)
    assert "0 events imported, 32,000 already stored" in again.stdout

    # Imported days report like any other: totals equal a recount of the log itself.
    report = _run("report", "--date", str(DAY), "--no-send", "--format", "json")
    assert report.exit_code == 0, report.output
    got = json.loads(report.stdout)
    expected = recount(first, None, DAY, "UTC")
    for name in ("total_events", "events_by_type", "unique_users", "buyers",
                 "top_5_viewed_products", "conversion_by_category", "funnel", "hourly_traffic"):  # fmt: skip
        assert got[name] == expected[name], name
    assert got["reconciliation"]["mismatches"] == 0  # the stream never saw these windows
    assert got["reconciliation"]["imported_not_compared"] > 0

    # The backtest replays each file as a source of its own, in line order.
    backtest = _run("backtest", "--from", str(DAY), "--to", str(DAY), "--format", "json")
    assert backtest.exit_code == 0, backtest.output
    found = {(a["product_id"], a["window_start"]) for a in json.loads(backtest.stdout)["alerts"]}
    placed = [(n, _in_ms(line)) for n, day in enumerate((DAY, NEXT))
              for line in (logs / f"clickstream_{day}.jsonl").read_text().splitlines()]  # fmt: skip
    oracle = WindowOracle().feed_all(processing_order(placed, first_offset=1))
    expected_alerts = {(p, _iso(w)) for p, w in oracle.alerts if _iso(w).startswith(str(DAY))}
    assert found == expected_alerts and len(found) > 4


def _in_ms(line: str) -> dict[str, object]:
    """An event with its time as epoch milliseconds, floored as the worker floors."""
    event = json.loads(line)
    moment = datetime.fromisoformat(event["timestamp"])
    return {**event, "timestamp": (moment - EPOCH) // timedelta(milliseconds=1)}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def test_three_bad_lines_give_three_rejects_with_reasons(data_dir: Path, tmp_path: Path) -> None:
    lines = original_day(DAY, 500, seed=3)
    lines[10] = "{not json"
    lines[20] = json.dumps({"user_id": "user_1", "event_type": "view",
                            "timestamp": "2024-06-01T10:00:00+00:00"})  # fmt: skip
    lines[30] = lines[30].replace('"view"', '"wishlist"').replace('"purchase"', '"wishlist"')
    lines[30] = lines[30].replace('"add_to_cart"', '"wishlist"')
    log = write_log(tmp_path / "raw", DAY, lines)
    rejects = tmp_path / "rejects.jsonl"
    result = _run("import", str(log), "--rejects", str(rejects))
    assert result.exit_code == 0, result.output
    assert "497 events imported" in result.stdout and "3 rejected" in result.stdout
    found = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in found] == [
        (11, "not_json"), (21, "missing_field"), (31, "unknown_event_type"),
    ]  # fmt: skip
    assert all(r["file"] == log.name and r["detail"] and r["text"] for r in found)
    assert _stored(data_dir)[0] == 497


def test_our_simulators_output_keeps_its_event_ids(data_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "sim.jsonl"
    simulated = _run("simulate", "--start", "2024-06-01T08:00:00Z", "--count", "3000",
                     "--seed", "4", "--output", str(output))  # fmt: skip
    assert simulated.exit_code == 0, simulated.output
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    result = _run("import", str(output))
    assert result.exit_code == 0, result.output
    assert _stored(data_dir) == (len(lines), len(lines), 1)
    with duckdb.connect() as con:
        ids = {row[0] for row in con.execute(
            "SELECT event_id FROM read_parquet(?)",
            [str(data_dir / "events" / "*" / "*.parquet")]).fetchall()}  # fmt: skip
    assert ids == {str(line["event_id"]) for line in lines}
    assert "0 events imported" in _run("import", str(output)).stdout


def test_a_missing_file_is_one_clear_line(data_dir: Path, tmp_path: Path) -> None:
    result = _run("import", str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 2
    assert "does not exist" in result.output and "Traceback" not in result.output
