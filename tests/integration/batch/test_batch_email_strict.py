"""A strict mail server: a NUL in a product id still gets through; a refused recipient is retried.

The server (tests/support/smtp_server.py, `StrictInbox`) answers 554 to a message holding a NUL byte
and 550 to the recipients it is told to refuse. Expected numbers come from the test's own
events, counted with a plain loop, never from the report.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from app.cli import cli
from app.kafka.broker import free_port
from app.mail_config import MailConfig
from app.mail_delivery import Mailer, RetryPolicy
from app.settings import get_settings, load_settings
from batch.job import ReportJob
from tests.support.batch_data import event_at, generate_events, write_events_parquet, write_jsonl
from tests.support.batch_recount import recount
from tests.support.smtp_server import start_strict_server

DAY = date(2024, 3, 10)
NUL_PRODUCT = "p\u0000nul"
SHOWN = "p\\x00nul"  # how the report shows it: control characters as \xNN escapes
OPS, CEO = "ops@shop.example", "ceo@shop.example"


def _write_dataset(root: Path, *, nul_views: int) -> Path:
    start = datetime(2024, 3, 10, tzinfo=UTC)
    events = generate_events(start, start + timedelta(days=1),
                             count=400, users=150, products=40, seed=11)  # fmt: skip
    events += [
        event_at(start + timedelta(minutes=37 * i), f"nul_user_{i:02d}", "view", NUL_PRODUCT)
        for i in range(nul_views)
    ]
    events.sort(key=lambda e: str(e["timestamp"]))
    write_jsonl(events, root / "events.jsonl")
    write_events_parquet(events, root / "data")
    return root


@pytest.fixture(scope="module")
def nul_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_dataset(tmp_path_factory.mktemp("nul-product"), nul_views=20)


@pytest.fixture(scope="module")
def plain_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_dataset(tmp_path_factory.mktemp("plain-products"), nul_views=0)


@pytest.fixture
def data_dir(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """DATA_DIR and mail settings for two recipients; the test links the events in."""
    target = clean_env / "data"
    target.mkdir()
    monkeypatch.setenv("DATA_DIR", str(target))
    monkeypatch.setenv("EMAIL_FROM", "Reports <reports@shop.example>")
    monkeypatch.setenv("EMAIL_TO", f"{OPS}, {CEO}")
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    get_settings.cache_clear()
    yield target
    get_settings.cache_clear()


def _nul_views(dataset: Path) -> int:
    """Views of the NUL product within DAY (UTC), by a plain loop over the test's own events."""
    import json

    count = 0
    with (dataset / "events.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            event = json.loads(line)
            on_day = event["timestamp"].startswith(DAY.isoformat())
            if on_day and event["event_type"] == "view" and event["product_id"] == NUL_PRODUCT:
                count += 1
    return count


def _report(port: int, *extra: str) -> Result:
    get_settings.cache_clear()
    env = {"SMTP_PORT": str(port)}
    return CliRunner().invoke(cli, ["report", "--date", str(DAY), *extra], env=env)


def test_a_nul_in_a_product_id_is_delivered_escaped(data_dir: Path, nul_dataset: Path) -> None:
    dataset = nul_dataset
    (data_dir / "events").symlink_to(dataset / "data/events")
    views = _nul_views(dataset)
    assert views == 20
    expected = recount(dataset / "events.jsonl", None, DAY, "UTC")
    top = {p["product_id"]: p["views"] for p in expected["top_5_viewed_products"]}  # type: ignore[attr-defined]
    assert top[NUL_PRODUCT] == views  # the product is among the day's top 5
    port = free_port()
    controller, inbox = start_strict_server(port, refuse=set())
    try:
        result = _report(port)
    finally:
        controller.stop()
    assert result.exit_code == 0, result.output
    assert inbox.refused_for_nul == 0
    assert len(inbox.messages) == 1 and inbox.envelopes[0][1] == [OPS, CEO]
    # Safe for any server: 7-bit bytes, body lines within quoted-printable's 76 characters.
    raw = inbox.raw[0]
    assert max(raw) < 128
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    message = inbox.messages[0]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "\0" not in text and "\0" not in html
    assert f"{SHOWN:<20}{views:>10,} views" in text
    assert f">{SHOWN}</td>" in html and f">{views:,}</td>" in html
    written = (data_dir / "reports" / f"summary_{DAY}.txt").read_text(encoding="utf-8")
    assert written == text.replace("\r\n", "\n")  # the wire's CRLF back to the file's LF


def test_a_refused_recipient_fails_the_run_and_only_they_get_the_retry(
    data_dir: Path, plain_dataset: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (data_dir / "events").symlink_to(plain_dataset / "data/events")
    port = free_port()
    controller, inbox = start_strict_server(port, refuse={CEO})
    caplog.set_level(logging.INFO)
    try:
        partial = _report(port)
        first_run_log = [record.getMessage() for record in caplog.records]
        still_refused = _report(port)
        inbox.refuse.clear()
        retried = _report(port)
        rerun = _report(port)
        forced = _report(port, "--force")
    finally:
        controller.stop()

    # First run: ops got it, ceo did not; a non-zero exit and one line saying so.
    assert partial.exit_code == 4, partial.output
    last_line = partial.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: ")
    assert f"sent to {OPS}" in last_line and f"refused by {CEO}" in last_line
    assert "550" in last_line
    sent_lines = [line for line in first_run_log if line.startswith("Sent ")]
    assert len(sent_lines) == 1 and OPS in sent_lines[0] and CEO not in sent_lines[0]
    # The rerun offers the report to ceo only; the server still refuses, so the run fails.
    assert still_refused.exit_code == 1, still_refused.output
    assert f"refused by {CEO}" in still_refused.stderr
    # Once the server accepts ceo, ceo alone gets it; then the day is done; --force sends to all.
    assert retried.exit_code == 0, retried.output
    assert rerun.exit_code == 0 and "Skipped: already sent" in rerun.stderr
    assert forced.exit_code == 0, forced.output
    assert inbox.rcpt_attempts == [[OPS, CEO], [CEO], [CEO], [OPS, CEO]]
    assert [rcpts for _, rcpts in inbox.envelopes] == [[OPS], [CEO], [OPS, CEO]]

    runs = ReportJob(load_settings()).runs.history(DAY)
    assert [r.status for r in runs] == ["partial", "failed", "sent", "skipped", "sent"]
    assert [r.delivered_to for r in runs] == [(OPS,), (), (CEO,), (), (OPS, CEO)]
    assert [r.refused_by for r in runs] == [(CEO,), (CEO,), (), (), ()]


def test_a_recipient_deferred_with_4xx_gets_it_on_the_next_attempt(
    data_dir: Path, plain_dataset: Path
) -> None:
    (data_dir / "events").symlink_to(plain_dataset / "data/events")
    port = free_port()
    controller, inbox = start_strict_server(port, refuse=set(), defer={CEO})
    settings = load_settings(smtp_port=port)
    sleeps: list[float] = []
    mailer = Mailer(MailConfig.from_settings(settings), data_dir / "outbox",
                    retry=RetryPolicy(attempts=3, base_delay=0.01), sleep=sleeps.append)  # fmt: skip
    try:
        outcome = ReportJob(settings, mailer).run(DAY, send=True)
    finally:
        controller.stop()
    assert outcome.status == "sent", outcome.detail
    assert sleeps == [0.01]
    assert inbox.rcpt_attempts == [[OPS, CEO], [CEO]]
    assert [rcpts for _, rcpts in inbox.envelopes] == [[OPS], [CEO]]
    record = ReportJob(settings).runs.history(DAY)[-1]
    assert (record.delivered_to, record.refused_by) == ((OPS, CEO), ())
