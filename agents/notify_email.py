"""The email channel: each incident open and resolve as a plain-text email to ALERT_EMAIL_TO.

It uses the report's mail settings (SMTP_HOST and the rest, see `app.mail_config.MailConfig`) with
ALERT_EMAIL_TO as the recipients; without SMTP_HOST each email is written to DATA_DIR/outbox
as `incident_<delivery id>.eml`, a name fixed per notification so that writing it again
replaces it. The Message-ID is fixed per notification too, so mail clients fold a repeat.

A server that does not take the message at all (unreachable, a timeout, any refusal of the
session) is retried: mail settings are fixed by people, not by retrying, and /health says so
meanwhile. A recipient refused with 4xx is offered the message again, alone; one refused with
5xx is skipped (logged), and the notification is rejected when every recipient was.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote

from app.console_text import escape_control
from app.errors import DeliveryError, NotificationRejected, NotificationRetryable
from app.mail_config import MailConfig
from app.mail_delivery import Mailer, RetryPolicy
from app.notify.records import IncidentNotice
from app.notify.signing import DELIVERY_HEADER, EVENT_HEADER
from app.notify.text import email_body, email_subject
from app.storage.durable import write_file_atomically

TIMEOUT_S = 10.0
_HEADERS = policy.default.clone(max_line_length=998)  # no folded subjects (see batch.mail)
_BODY = policy.default.clone(max_line_length=76)  # quoted-printable lines


def outbox_path(outbox: Path, notice: IncidentNotice) -> Path:
    """`incident_<delivery id, %-escaped>.eml`, or a digest of the id when that is too long."""
    name = quote(notice.delivery_id, safe="-._")
    if len(name) > 150:
        name = hashlib.sha256(notice.delivery_id.encode()).hexdigest()[:32]
    return outbox / f"incident_{name}.eml"


def incident_message(notice: IncidentNotice, config: MailConfig, now: datetime) -> EmailMessage:
    """One plain-text message, quoted-printable UTF-8 (7-bit on the wire)."""
    record = notice.record
    digest = hashlib.sha256(notice.delivery_id.encode()).hexdigest()[:32]
    message = EmailMessage(policy=_BODY)
    message["Subject"] = email_subject(record)
    message["From"] = config.sender
    message["To"] = ", ".join(config.recipients)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = f"<incident-{digest}@{config.sender.rpartition('@')[2]}>"
    message[DELIVERY_HEADER] = escape_control(notice.delivery_id)
    message[EVENT_HEADER] = record.event
    message.set_content(email_body(record), cte="quoted-printable")
    message.policy = _HEADERS
    return message


class EmailChannel:
    """Mails notices per `config` (SMTP, or the `outbox` directory when its host is None)."""

    name = "email"

    def __init__(self, config: MailConfig, outbox: Path, timeout: float = TIMEOUT_S) -> None:
        self.config = dataclasses.replace(config, timeout=timeout)
        self.outbox = outbox
        recipients = ", ".join(config.recipients)
        where = f"via {config.server}" if config.host else "in the outbox"
        self.target = f"{recipients} {where}"
        self._mailer = Mailer(self.config, outbox, RetryPolicy(attempts=1))
        self._remaining: dict[str, tuple[str, ...]] = {}  # delivery id -> recipients to try
        self._reached: set[str] = set()  # delivery ids some recipient has

    async def deliver(self, notice: IncidentNotice) -> None:
        """One attempt; raises NotificationRetryable or NotificationRejected when it failed."""
        message = incident_message(notice, self.config, datetime.now(UTC))
        if self.config.host is None:
            path = outbox_path(self.outbox, notice)
            try:
                await asyncio.to_thread(write_file_atomically, path, message.as_bytes(), fsync=True)
            except OSError as exc:
                msg = f"cannot write {path}: {exc}"
                raise NotificationRetryable(msg) from None
            return
        key = notice.delivery_id
        targets = self._remaining.get(key, self.config.recipients)
        try:
            delivery = await asyncio.to_thread(self._mailer.deliver, message, targets)
        except DeliveryError as exc:
            raise NotificationRetryable(str(exc)) from None
        if delivery.delivered:
            self._reached.add(key)
        later = [r for r in delivery.refused if r.reply.startswith("4")]
        if later:
            self._remaining[key] = tuple(r.address for r in later)
            msg = "; ".join(f"{r.address} refused for now: {r.reply}" for r in later)
            raise NotificationRetryable(msg)
        self._remaining.pop(key, None)
        reached = key in self._reached
        self._reached.discard(key)
        if not reached:
            msg = "; ".join(f"{r.address} refused: {r.reply}" for r in delivery.refused)
            raise NotificationRejected(msg)

    async def close(self) -> None:
        """Nothing to release: every attempt opens its own SMTP session."""
