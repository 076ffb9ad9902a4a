"""Incident notifications by email through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from agents.notify_email import EmailChannel
from app.kafka.broker import free_port
from app.mail_config import MailConfig
from tests.support.notifier import (
    burst,
    delivery_id,
    drained,
    produce_incidents,
    running,
    until,
)
from tests.support.smtp_server import start_strict_server

NewTopic = Callable[..., Awaitable[str]]


async def test_one_email_per_open_and_resolve_to_alert_email_to(
    kafka_bootstrap: str, new_topic: NewTopic, tmp_path: Path
) -> None:
    topic = await new_topic(partitions=2, prefix="incidents")
    records = [*burst("P0036"), *burst("P0042")]
    await produce_incidents(kafka_bootstrap, topic, records)
    notified = [r for r in records if r["event"] != "updated"]
    port = free_port()
    # One address the server refuses for good: the others still get every email.
    controller, inbox = start_strict_server(port, refuse={"gone@example.com"})
    recipients = ("oncall@example.com", "gone@example.com", "lead@example.com")
    config = MailConfig("127.0.0.1", port, None, None, False, False, "cs@example.com", recipients)
    group = "notifier-mail"
    try:
        channel = EmailChannel(config, tmp_path / "outbox")
        async with running(kafka_bootstrap, topic, [channel], tmp_path, group):
            await until(lambda: len(inbox.messages) >= len(notified), "all mailed")
            await until(lambda: drained(kafka_bootstrap, group, topic), "all committed")
    finally:
        controller.stop()

    assert Counter(m["X-Clickstream-Delivery"] for m in inbox.messages) == Counter(
        delivery_id(r) for r in notified
    )
    assert [rcpts for _, rcpts in inbox.envelopes] == [
        ["oncall@example.com", "lead@example.com"]
    ] * len(notified)
    by_id = {m["X-Clickstream-Delivery"]: m for m in inbox.messages}
    opened = by_id["P0036:1764489600000/0"]
    assert opened["Subject"] == "Flash sale P0036 opened: 140 views, 2 purchases"
    assert opened["To"] == ", ".join(recipients)
    assert opened["X-Clickstream-Event"] == "opened"
    body = opened.get_content()
    assert body.startswith("Flash sale P0036: 140 views, 2 purchases in 10-min window")
    assert "peak views     140 (alerts above 100)" in body
    resolved = by_id["P0042:1764489600000/2"]
    assert resolved["Subject"] == "Flash sale P0042 resolved after 12 min"
    assert "resolution     quiet" in resolved.get_content()
    assert not (tmp_path / "outbox").exists()  # with an SMTP server, no .eml files
