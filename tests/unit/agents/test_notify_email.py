"""Incident email settings, the message, and the outbox when SMTP_HOST is unset."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import orjson
import pytest

from agents.notify_consumer import IncidentNotifier
from agents.notify_email import EmailChannel, outbox_path
from app.errors import SettingsError
from app.mail_config import incident_mail_config
from app.notify.records import parse_incident
from app.settings import load_settings
from tests.support.incident_record import OPENED


def test_no_alert_email_to_means_no_email_and_no_channel_means_no_notifier(
    clean_env: Path,
) -> None:
    settings = load_settings(email_to="reports@example.com")
    assert incident_mail_config(settings) is None
    assert IncidentNotifier.from_settings(settings) is None


def test_channels_follow_the_settings(clean_env: Path) -> None:
    settings = load_settings(alert_webhook_url="https://hooks.example.com/T0/B0/secret-token",
                             alert_email_to="oncall@example.com")  # fmt: skip
    notifier = IncidentNotifier.from_settings(settings)
    assert notifier is not None and notifier.group_id == "clickstream-notifier"
    assert [(lane.channel.name, lane.channel.target) for lane in notifier.lanes] == [
        ("webhook", "https://hooks.example.com"),  # never the secret path
        ("email", "oncall@example.com in the outbox"),
    ]


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"alert_email_to": "not an address"}, "ALERT_EMAIL_TO"),
        ({"alert_email_to": "a@example.com", "smtp_host": "mail"}, "EMAIL_FROM"),
    ],
)
def test_bad_mail_settings_name_the_variable(
    clean_env: Path, overrides: dict[str, object], variable: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        incident_mail_config(load_settings(**overrides))
    assert raised.value.variable == variable


async def test_without_smtp_host_each_notification_is_one_eml_written_once(
    clean_env: Path, tmp_path: Path
) -> None:
    config = incident_mail_config(load_settings(alert_email_to="oncall@example.com"))
    assert config is not None and config.host is None
    channel = EmailChannel(config, tmp_path / "outbox")
    notice = parse_incident(orjson.dumps(OPENED))
    await channel.deliver(notice)
    await channel.deliver(notice)  # a repeat replaces the same file
    (path,) = (tmp_path / "outbox").iterdir()
    assert path == outbox_path(tmp_path / "outbox", notice)
    assert path.name == "incident_P0036%3A1764489600000%2F0.eml"
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["To"] == "oncall@example.com"
    assert message["Subject"] == "Flash sale P0036 opened: 140 views, 2 purchases"
    assert message["X-Clickstream-Delivery"] == "P0036:1764489600000/0"
    assert message["Message-ID"].startswith("<incident-")
