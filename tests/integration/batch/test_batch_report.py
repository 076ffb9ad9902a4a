"""The daily report over real Parquet files equals an independent recount over the same events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from app.cli import cli
from app.settings import get_settings, load_settings
from batch.job import ReportJob
from tests.support.batch_data import (
    event_at,
    flash_sale,
    generate_events,
    oracle_alerts,
    write_alerts_parquet,
    write_events_parquet,
    write_jsonl,
)
from tests.support.batch_recount import recount
from tests.support.window_oracle import WindowOracle

NEW_YORK = ZoneInfo("America/New_York")
FIXED_NOW = datetime(2024, 12, 1, 12, 0, tzinfo=UTC)


def _edge_events() -> list[dict[str, object]]:
    """Events on both sides of New York's 2024-03-10 boundaries (a 23-hour day)."""
    start = datetime(2024, 3, 10, tzinfo=NEW_YORK).astimezone(UTC)
    end = datetime(2024, 3, 11, tzinfo=NEW_YORK).astimezone(UTC)
    ms = timedelta(milliseconds=1)
    return [
        event_at(start - ms, "edge_before", "purchase"),
        event_at(start, "edge_first", "view"),
        event_at(end - ms, "edge_last", "purchase"),
        event_at(end, "edge_after", "purchase"),
    ]


def _flash_sales() -> list[dict[str, object]]:
    """Bursts that alert (few purchases) on the days the tests report, and one that does not."""
    return [
        *flash_sale("flash_a", datetime(2024, 3, 10, 12, tzinfo=UTC), 150, 2),
        *flash_sale("flash_b", datetime(2024, 3, 10, 23, 57, tzinfo=UTC), 130, 0),
        *flash_sale("flash_a", datetime(2024, 3, 11, 3, tzinfo=UTC), 180, 4),
        *flash_sale("flash_c", datetime(2024, 11, 3, 6, 30, tzinfo=UTC), 120, 1),
        *flash_sale("hot_seller", datetime(2024, 3, 10, 15, tzinfo=UTC), 200, 30),
    ]


@pytest.fixture(scope="module")
def events() -> list[dict[str, object]]:
    """Three days of events (8,000 users), flash sales and DST-edge events, in time order."""
    generated = generate_events(
        datetime(2024, 3, 9, tzinfo=UTC), datetime(2024, 3, 12, tzinfo=UTC),
        count=90_000, users=8_000, products=60, seed=7,
    )  # fmt: skip
    generated += generate_events(
        datetime(2024, 11, 2, 20, tzinfo=UTC), datetime(2024, 11, 4, 8, tzinfo=UTC),
        count=20_000, users=3_000, products=40, seed=11,
    )  # fmt: skip
    everything = generated + _edge_events() + _flash_sales()
    return sorted(everything, key=lambda e: str(e["timestamp"]))


@pytest.fixture(scope="module")
def oracle(events: list[dict[str, object]]) -> WindowOracle:
    """The stream's rule over the events in stored order (one partition)."""
    return WindowOracle().feed_all((0, e) for e in events)


@pytest.fixture(scope="module")
def dataset(
    tmp_path_factory: pytest.TempPathFactory, events: list[dict[str, object]], oracle: WindowOracle
) -> Path:
    """The events as JSONL and sink Parquet; the alerts those the stream's rule gives them."""
    root = tmp_path_factory.mktemp("batch-data")
    alerts = oracle_alerts(oracle.alerts)
    assert len(alerts) > 20
    write_jsonl(events, root / "events.jsonl")
    write_jsonl(alerts, root / "alerts.jsonl")
    write_events_parquet(events, root / "data")
    write_alerts_parquet(alerts, root / "data")
    # Files the report must never open: another day's partition, and an unfinished file.
    (root / "data/events/date=2024-03-20").mkdir(parents=True)
    (root / "data/events/date=2024-03-20/broken.parquet").write_bytes(b"not parquet")
    (root / "data/events/date=2024-03-10/.inflight.parquet").write_bytes(b"half written")
    return root


@pytest.fixture
def report_env(dataset: Path, clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """DATA_DIR pointing at a copy-free view of the dataset, reports going to a fresh dir."""
    data_dir = clean_env / "data"
    data_dir.mkdir()
    (data_dir / "events").symlink_to(dataset / "data/events")
    (data_dir / "alerts").symlink_to(dataset / "data/alerts")
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    get_settings.cache_clear()
    yield data_dir
    get_settings.cache_clear()


def _report(data_dir: Path, day: date, tz: str) -> dict[str, object]:
    settings = load_settings(data_dir=data_dir, report_timezone=tz)
    outcome = ReportJob(settings, now=lambda: FIXED_NOW).run(day, send=False)
    assert outcome.status == "written", outcome.detail
    assert outcome.report is not None
    return outcome.report.summary.as_dict()


@pytest.mark.parametrize(
    ("day", "tz"),
    [
        (date(2024, 3, 10), "UTC"),
        (date(2024, 3, 10), "America/New_York"),  # 23 hours, two UTC dates
        (date(2024, 11, 3), "America/New_York"),  # 25 hours, two UTC dates
        (date(2024, 3, 11), "Asia/Kolkata"),  # +05:30: starts on the previous UTC date
    ],
)
def test_report_equals_independent_recount(
    report_env: Path, dataset: Path, oracle: WindowOracle, day: date, tz: str
) -> None:
    report = _report(report_env, day, tz)
    expected = recount(dataset / "events.jsonl", dataset / "alerts.jsonl", day, tz,
                       oracle=oracle, checks=True)  # fmt: skip
    assert report["generated_at"] == FIXED_NOW.isoformat()
    del report["generated_at"]
    assert report == expected
    assert isinstance(report["unique_users"], int) and report["unique_users"] > 2_000


def test_big_day_has_several_thousand_users_and_alerts(report_env: Path) -> None:
    report = _report(report_env, date(2024, 3, 10), "UTC")
    assert report["unique_users"] > 5_000  # type: ignore[operator]
    assert report["flash_sale_alerts"]["count"] > 0  # type: ignore[index]
    assert any(c["category"] is None for c in report["conversion_by_category"])  # type: ignore[attr-defined]


def test_day_boundaries_are_local_midnights_across_dst(report_env: Path) -> None:
    report = _report(report_env, date(2024, 3, 10), "America/New_York")
    assert report["period_start"] == "2024-03-10T05:00:00+00:00"
    assert report["period_end"] == "2024-03-11T04:00:00+00:00"
    edge = next(c for c in report["conversion_by_category"] if c["category"] == "edge")  # type: ignore[attr-defined]
    # Inside: the view at local midnight and the purchase 1 ms before the next one.
    assert (edge["views"], edge["purchases"]) == (1, 1)


def test_report_files_match_the_summary(report_env: Path) -> None:
    report = _report(report_env, date(2024, 3, 10), "UTC")
    reports = report_env / "reports"
    on_disk = json.loads((reports / "summary_2024-03-10.json").read_text())
    assert on_disk == report
    text = (reports / "summary_2024-03-10.txt").read_text()
    html = (reports / "summary_2024-03-10.html").read_text()
    total = f"{report['total_events']:,}"
    assert total in text and total in html
    assert not [p.name for p in reports.iterdir() if p.name.endswith(".tmp")]


def test_cli_prints_the_chosen_format(report_env: Path) -> None:
    result = CliRunner().invoke(
        cli, ["report", "--date", "2024-03-10", "--no-send", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["date"] == "2024-03-10"
    assert "summary_2024-03-10.html" in result.stderr


def test_cli_no_data_is_a_clear_error_without_email(report_env: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "--date", "2023-01-01"])
    assert result.exit_code == 3
    assert "no data for 2023-01-01" in result.stderr
    assert not (report_env / "outbox").exists()
    assert not (report_env / "reports/summary_2023-01-01.json").exists()


def test_cli_backfill_runs_each_day_and_prints_a_table(report_env: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "--from", "2024-03-08", "--to", "2024-03-11"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert [line.split()[:2] for line in lines[1:5]] == [
        ["2024-03-08", "no"], ["2024-03-09", "sent"], ["2024-03-10", "sent"], ["2024-03-11", "sent"],
    ]  # fmt: skip
    assert lines[-1] == "0 written, 3 sent, 0 skipped, 0 failed, 1 no data"
    assert len(list((report_env / "outbox").glob("*.eml"))) == 3
    again = CliRunner().invoke(cli, ["report", "--from", "2024-03-09", "--to", "2024-03-10"])
    assert (
        again.stdout.strip().splitlines()[-1] == "0 written, 0 sent, 2 skipped, 0 failed, 0 no data"
    )
    assert len(list((report_env / "outbox").glob("*.eml"))) == 3


def test_cli_rejects_mixed_date_options(report_env: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "--date", "2024-03-10", "--from", "2024-03-09"])
    assert result.exit_code == 2
    assert "either --date or --from/--to" in result.output


def test_a_day_that_has_not_ended_is_not_sent(report_env: Path) -> None:
    today = datetime.now(UTC).date()
    result = CliRunner().invoke(cli, ["report", "--date", str(today + timedelta(days=1))])
    assert result.exit_code == 1
    assert "has not ended yet" in str(result.exception)
    assert not (report_env / "outbox").exists()
