"""`clickstream backtest` from the command line: formats, the sweep, and bad input."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from app.cli import cli
from app.settings import get_settings
from tests.support.batch_stream_store import processing_order, shop_events, store_as_sink
from tests.support.window_oracle import WindowOracle

START = int(datetime(2024, 6, 1, 9, tzinfo=UTC).timestamp() * 1000)
DAY = date(2024, 6, 1)


@pytest.fixture
def data_dir(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("DATA_DIR", str(clean_env / "data"))
    get_settings.cache_clear()
    yield clean_env / "data"
    get_settings.cache_clear()


@pytest.fixture
def placed(data_dir: Path) -> list[tuple[int, dict[str, object]]]:
    events = shop_events(7, 2, 8000, START, disorder=0.02)
    store_as_sink(events, data_dir)
    return events


def _run(*args: str) -> Result:
    get_settings.cache_clear()
    return CliRunner().invoke(cli, ["backtest", "--from", str(DAY), "--to", str(DAY), *args])


def _oracle(placed: list[tuple[int, dict[str, object]]], views: int, purchases: int) -> set:
    oracle = WindowOracle(views=views, purchases=purchases).feed_all(processing_order(placed))
    day_start = int(datetime(2024, 6, 1, tzinfo=UTC).timestamp() * 1000)
    return {key for key in oracle.alerts if day_start <= key[1] < day_start + 86_400_000}


def test_sweep_counts_equal_the_oracle_for_every_pair(placed: list) -> None:  # type: ignore[type-arg]
    result = _run("--sweep", "views=10,20,40", "purchases=1,3", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 6
    for row in rows:
        views, purchases = int(row["views_threshold"]), int(row["purchases_threshold"])
        assert int(row["alerts"]) == len(_oracle(placed, views, purchases)), row
    text = _run("--sweep", "views=10,20,40", "purchases=1,3").stdout
    assert "purchases < 3" in text and "views > 40" in text


def test_json_lists_every_alert_with_final_counts(placed: list) -> None:  # type: ignore[type-arg]
    result = _run("--views", "20", "--purchases", "3", "--format", "json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    found = {(a["product_id"], int(datetime.fromisoformat(a["window_start"]).timestamp() * 1000))
             for a in body["alerts"]}  # fmt: skip
    assert found == _oracle(placed, 20, 3) and body["alert_count"] == len(found) > 10
    oracle = WindowOracle(views=20, purchases=3).feed_all(processing_order(placed))
    assert body["qualifying_windows"] == len(oracle.qualifying())
    assert all(a["views"] > 20 for a in body["alerts"])
    text = _run("--views", "20", "--purchases", "3").stdout
    assert f"Alerts: {len(found):,}" in text and "Top " in text


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--sweep", "views=ten"], "is not NAME=N,N,..."),
        (["--sweep", "purchases=0"], "purchases (N >= 1)"),
        (["views=100"], "threshold lists go with --sweep"),
        (["--window", "600", "--step", "70"], "is not a multiple of --step 70"),
    ],
)
def test_bad_input_is_one_clear_line(data_dir: Path, args: list[str], needle: str) -> None:
    result = _run(*args)
    assert result.exit_code == 2
    assert needle in result.output and "Traceback" not in result.output


def test_no_events_is_a_clear_error(data_dir: Path) -> None:
    result = _run()
    assert result.exit_code == 3
    assert "no events from 2024-06-01 to 2024-06-01" in result.stderr
