"""The report email reaches a real SMTP server exactly once, also over STARTTLS with auth."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import cli
from app.kafka.broker import free_port
from app.mail_config import MailConfig
from app.mail_delivery import Mailer, RetryPolicy
from app.settings import Settings, get_settings, load_settings
from batch.job import ReportJob
from tests.support.batch_data import generate_events, write_events_parquet, write_jsonl
from tests.support.batch_recount import recount
from tests.support.smtp_server import self_signed_cert, server_tls_context, start_server

DAY = date(2024, 3, 10)
PASSWORD = "s3cret-Pa55-do-not-log"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mail-data")
    events = generate_events(
        datetime(2024, 3, 10, tzinfo=UTC), datetime(2024, 3, 11, tzinfo=UTC),
        count=6_000, users=2_000, products=30, seed=5,
    )  # fmt: skip
    write_jsonl(events, root / "events.jsonl")
    write_events_parquet(events, root / "data")
    return root


@pytest.fixture
def data_dir(dataset: Path, clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    target = clean_env / "data"
    target.mkdir()
    (target / "events").symlink_to(dataset / "data/events")
    monkeypatch.setenv("DATA_DIR", str(target))
    monkeypatch.setenv("EMAIL_FROM", "Reports <reports@shop.example>")
    monkeypatch.setenv("EMAIL_TO", "ops@shop.example, ceo@shop.example")
    get_settings.cache_clear()
    yield target
    get_settings.cache_clear()


@pytest.fixture
def expected(dataset: Path) -> dict[str, object]:
    return recount(dataset / "events.jsonl", None, DAY, "UTC")


def _subject(expected: dict[str, object]) -> str:
    return (
        f"Clickstream daily summary {DAY}: {expected['total_events']:,} events, "
        f"{expected['unique_users']:,} users, {expected['buyers']:,} buyers"
    )


def _assert_one_good_message(messages: list, expected: dict[str, object]) -> None:  # type: ignore[type-arg]
    assert len(messages) == 1
    message = messages[0]
    assert message["Subject"] == _subject(expected)
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for number in (expected["total_events"], expected["unique_users"], expected["buyers"],
                   expected["window_shoppers"]):  # fmt: skip
        assert f"{number:,}" in text and f"{number:,}" in html
    top = expected["top_5_viewed_products"][0]  # type: ignore[index]
    assert top["product_id"] in text and top["product_id"] in html


def test_plain_smtp_gets_exactly_one_multipart_message(
    data_dir: Path, expected: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    controller, inbox = start_server(port)
    try:
        monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("SMTP_PORT", str(port))
        result = CliRunner().invoke(cli, ["report", "--date", str(DAY)])
    finally:
        controller.stop()
    assert result.exit_code == 0, result.output
    _assert_one_good_message(inbox.messages, expected)
    assert inbox.envelopes == [("reports@shop.example", ["ops@shop.example", "ceo@shop.example"])]


def test_starttls_with_auth_and_the_password_stays_secret(
    data_dir: Path, expected: dict[str, object], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    cert, key = self_signed_cert(tmp_path)
    port = free_port()
    controller, inbox = start_server(
        port, tls_context=server_tls_context(cert, key), require_starttls=True,
        auth_required=True, authenticator=("mailer", PASSWORD),
    )  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts the test's own CA
    for name, value in {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_STARTTLS": "true",
                        "SMTP_USER": "mailer", "SMTP_PASSWORD": PASSWORD}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG)
    try:
        result = CliRunner().invoke(cli, ["report", "--date", str(DAY)])
        monkeypatch.setenv("SMTP_PASSWORD", "wrong-" + PASSWORD)
        get_settings.cache_clear()
        refused = CliRunner().invoke(cli, ["report", "--date", str(DAY), "--force"])
    finally:
        controller.stop()
    assert result.exit_code == 0, result.output
    assert inbox.logins == ["mailer"]
    _assert_one_good_message(inbox.messages, expected)
    # A wrong password is permanent (535): one attempt, a failed run, and no secret anywhere.
    assert refused.exit_code == 1
    assert "535" in refused.stderr and "attempt 1 of" in refused.stderr
    everything = result.output + refused.output + caplog.text
    assert PASSWORD not in everything
    runs = ReportJob(load_settings()).runs.history(DAY)
    assert [r.status for r in runs] == ["sent", "failed"]
    assert all(PASSWORD not in r.detail for r in runs)


def test_implicit_tls_smtp_ssl(data_dir: Path, expected: dict[str, object], tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    port = free_port()
    controller, inbox = start_server(port, ssl_context=server_tls_context(cert, key))
    settings = load_settings(smtp_host="127.0.0.1", smtp_port=port, smtp_ssl=True)
    mailer = Mailer(MailConfig.from_settings(settings), data_dir / "outbox",
                    ssl_context=lambda: ssl.create_default_context(cafile=str(cert)))  # fmt: skip
    try:
        outcome = ReportJob(settings, mailer).run(DAY, send=True)
    finally:
        controller.stop()
    assert outcome.status == "sent", outcome.detail
    _assert_one_good_message(inbox.messages, expected)


def _job(settings: Settings, port: int, sleeps: list[float]) -> ReportJob:
    config = MailConfig.from_settings(settings.model_copy(update={"smtp_port": port}))
    mailer = Mailer(config, settings.data_dir / "outbox",
                    retry=RetryPolicy(attempts=3, base_delay=0.01), sleep=sleeps.append)  # fmt: skip
    return ReportJob(settings, mailer)


def test_smtp_down_retries_then_fails_and_sends_once_when_back(
    data_dir: Path, expected: dict[str, object]
) -> None:
    port = free_port()  # nothing listens here yet
    settings = load_settings(smtp_host="127.0.0.1", smtp_port=port)
    sleeps: list[float] = []
    down = _job(settings, port, sleeps).run(DAY, send=True)
    assert down.status == "failed"
    assert "attempt 3 of 3" in down.detail
    assert sleeps == [0.01, 0.02]  # backoff doubles between the three attempts
    assert {p.name for p in (data_dir / "reports").glob("summary_*")} == {
        "summary_2024-03-10.json", "summary_2024-03-10.txt", "summary_2024-03-10.html",
    }  # fmt: skip
    controller, inbox = start_server(port)
    try:
        back = _job(settings, port, sleeps).run(DAY, send=True)
        rerun = _job(settings, port, sleeps).run(DAY, send=True)
        assert len(inbox.messages) == 1
        forced = _job(settings, port, sleeps).run(DAY, send=True, force=True)
    finally:
        controller.stop()
    assert (back.status, rerun.status, forced.status) == ("sent", "skipped", "sent")
    assert "already sent" in rerun.detail
    assert len(inbox.messages) == 2
    _assert_one_good_message(inbox.messages[1:], expected)
    statuses = [r.status for r in ReportJob(settings).runs.history(DAY)]
    assert statuses == ["failed", "sent", "skipped", "sent"]


def test_cli_rerun_does_not_email_twice_but_force_does(data_dir: Path) -> None:
    port = free_port()
    controller, inbox = start_server(port)
    env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port)}
    try:
        first = CliRunner().invoke(cli, ["report", "--date", str(DAY)], env=env)
        get_settings.cache_clear()
        second = CliRunner().invoke(cli, ["report", "--date", str(DAY)], env=env)
        assert len(inbox.messages) == 1
        get_settings.cache_clear()
        forced = CliRunner().invoke(cli, ["report", "--date", str(DAY), "--force"], env=env)
    finally:
        controller.stop()
    assert (first.exit_code, second.exit_code, forced.exit_code) == (0, 0, 0)
    assert "Skipped: already sent" in second.stderr
    assert len(inbox.messages) == 2


def test_smtp_host_without_email_to_names_the_variable(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.delenv("EMAIL_TO")
    get_settings.cache_clear()
    with pytest.raises(SystemExit) as exit_info:
        _main(["report", "--date", str(DAY)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: EMAIL_TO=None is not allowed")


def _main(argv: list[str]) -> None:
    import sys

    from app.cli import main

    saved = sys.argv
    sys.argv = ["clickstream", *argv]
    try:
        main()
    finally:
        sys.argv = saved


def test_without_smtp_host_the_message_goes_to_the_outbox(
    data_dir: Path, expected: dict[str, object]
) -> None:
    from email import message_from_bytes, policy

    result = CliRunner().invoke(cli, ["report", "--date", str(DAY)])
    assert result.exit_code == 0, result.output
    files = list((data_dir / "outbox").glob("summary_2024-03-10_*.eml"))
    assert len(files) == 1
    message = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    _assert_one_good_message([message], expected)
