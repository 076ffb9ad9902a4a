"""Mail settings are checked together; the message is one multipart/alternative; no secret leaks."""

from __future__ import annotations

import smtplib
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from pydantic import SecretStr

from app.errors import DeliveryError, SettingsError
from app.kafka.broker import free_port
from app.mail_config import MailConfig
from app.mail_delivery import Mailer, RetryPolicy, _is_permanent
from app.settings import load_settings
from batch.files import RenderedReport
from batch.mail import build_message
from tests.support.daily_summary import make_summary

SECRET = "pa55-w0rd-xyz"


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"smtp_host": "mail.example"}, "EMAIL_TO"),
        ({"smtp_host": "mail.example", "email_to": "a@example"}, "EMAIL_FROM"),
        ({"smtp_host": "m", "email_to": "a@x", "email_from": "b@x", "smtp_ssl": True,
          "smtp_starttls": True}, "SMTP_SSL"),
        ({"smtp_host": "m", "email_to": "a@x", "email_from": "b@x", "smtp_user": "u"},
         "SMTP_PASSWORD"),
        ({"email_to": "not an address"}, "EMAIL_TO"),
    ],
)  # fmt: skip
def test_bad_combinations_name_the_variable(
    clean_env: Path, overrides: dict[str, object], variable: str
) -> None:
    with pytest.raises(SettingsError) as info:
        MailConfig.from_settings(load_settings(**overrides))
    assert info.value.variable == variable
    assert "\n" not in str(info.value)


def test_defaults(clean_env: Path) -> None:
    outbox = MailConfig.from_settings(load_settings())
    assert outbox.host is None and outbox.recipients == ("reports@localhost",)
    starttls = MailConfig.from_settings(load_settings(
        smtp_host="m", smtp_starttls=True, smtp_user="me@x", smtp_password=SECRET, email_to="a@x, b@x",
    ))  # fmt: skip
    assert (starttls.port, starttls.sender, starttls.recipients) == (587, "me@x", ("a@x", "b@x"))
    assert SECRET not in repr(starttls)
    ssl_config = MailConfig.from_settings(
        load_settings(smtp_host="m", smtp_ssl=True, email_to="a@x", email_from="b@x")
    )
    assert ssl_config.port == 465


def test_message_is_multipart_alternative_text_then_html() -> None:
    config = MailConfig(None, 0, None, None, False, False, "r@shop.example", ("a@x", "b@x"))
    report = RenderedReport.of(make_summary())
    raw = build_message(report, config, datetime(2024, 3, 11, 5, 15, tzinfo=UTC)).as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == (
        "Clickstream daily summary 2024-03-10: 1,234,567 events, 45,678 users, 9,876 buyers"
    )
    assert parsed["To"] == "a@x, b@x" and parsed["Message-ID"].endswith("@shop.example>")
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed.get_body(("plain",)).get_content() == report.text  # type: ignore[union-attr]


def test_retry_policy_doubles_and_caps() -> None:
    policy_ = RetryPolicy(attempts=6, base_delay=1, max_delay=5)
    assert [policy_.delay(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]


def test_permanent_errors_are_not_retried() -> None:
    assert _is_permanent(smtplib.SMTPAuthenticationError(535, b"bad credentials"))
    assert not _is_permanent(smtplib.SMTPResponseException(421, b"try later"))
    assert not _is_permanent(ConnectionRefusedError())
    assert not _is_permanent(smtplib.SMTPServerDisconnected())


def test_refused_connection_is_retried_then_fails_without_the_password(tmp_path: Path) -> None:
    config = MailConfig(
        "127.0.0.1", free_port(), "me", SecretStr(SECRET), False, False, "r@x", ("a@x",)
    )
    sleeps: list[float] = []
    mailer = Mailer(config, tmp_path, RetryPolicy(attempts=3, base_delay=0.5), sleep=sleeps.append)
    message = build_message(RenderedReport.of(make_summary()), config, datetime.now(UTC))
    with pytest.raises(DeliveryError, match="attempt 3 of 3") as info:
        mailer.deliver(message)
    assert sleeps == [0.5, 1.0]
    assert SECRET not in str(info.value) and info.value.__cause__ is None


def test_redaction_covers_plain_and_base64_forms(tmp_path: Path) -> None:
    config = MailConfig("h", 25, "me", SecretStr(SECRET), False, False, "r@x", ("a@x",))
    mailer = Mailer(config, tmp_path)
    import base64

    leaked = (
        f"{SECRET} {base64.b64encode(SECRET.encode()).decode()} "
        + base64.b64encode(f"\0me\0{SECRET}".encode()).decode()
    )
    assert mailer._redact(leaked) == "*** *** ***"


def test_control_characters_in_ids_never_reach_the_wire_raw() -> None:
    from batch.summary import AlertedProduct, AlertSummary, CategoryConversion, ProductViews

    config = MailConfig(None, 0, None, None, False, False, "r@shop.example", ("a@x",))
    summary = make_summary(
        top_5_viewed_products=(ProductViews("p\0nul", 20), ProductViews("tab\there é", 3)),
        conversion_by_category=(CategoryConversion("bell\x07", 20, 1, 5.0),),
        flash_sale_alerts=AlertSummary(1, (AlertedProduct("del\x7f\x85", 1, 150),)),
    )
    report = RenderedReport.of(summary)
    raw = build_message(report, config, datetime(2024, 3, 11, 5, 15, tzinfo=UTC)).as_bytes()
    body = raw.split(b"\n\n", 1)[1]  # after the top-level headers
    assert max(raw) < 128 and max(len(line) for line in body.splitlines()) <= 76
    for rendering in (report.text, report.html):
        for shown in ("p\\x00nul", "tab\\x09here é", "bell\\x07", "del\\x7f\\x85"):
            assert shown in rendering
        assert not any(ord(c) < 32 and c != "\n" for c in rendering)
    assert '"product_id": "p\\u0000nul"' in report.json  # the JSON keeps the exact id
