"""Handing an email over (the daily report, incident notifications): SMTP (STARTTLS or SSL,
auth) with retries, or the outbox.

A server may accept a message for some recipients and refuse others; `Delivery` says which,
per recipient. A recipient refused with 4xx is offered the message again within the retries;
one refused with 5xx is final for this run.

The SMTP password is used only in `login`; every error text that leaves this module passes
through `_redact`, and exceptions are not chained, so it appears in no log and no traceback.
"""

from __future__ import annotations

import base64
import logging
import smtplib
import ssl
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from email.message import EmailMessage
from pathlib import Path

from app.errors import DeliveryError
from app.mail_config import MailConfig
from app.report_runs import RecipientOutcome
from app.storage.durable import write_file_atomically

logger = logging.getLogger(__name__)

# What smtplib reports for the recipients a server refused: address -> (code, reply).
_Refused = dict[str, tuple[int, bytes]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`attempts` tries in all; the pause doubles from `base_delay`, capped at `max_delay`."""

    attempts: int = 4
    base_delay: float = 5.0
    max_delay: float = 120.0

    def delay(self, failed_attempt: int) -> float:
        return float(min(self.max_delay, self.base_delay * 2 ** (failed_attempt - 1)))


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where the message went (`smtp` to a server, or `outbox` as an .eml), and to whom."""

    channel: str
    target: str
    message_id: str
    attempts: int
    recipients: tuple[RecipientOutcome, ...]

    @property
    def delivered(self) -> tuple[str, ...]:
        return tuple(r.address for r in self.recipients if r.delivered)

    @property
    def refused(self) -> tuple[RecipientOutcome, ...]:
        return tuple(r for r in self.recipients if not r.delivered)


class Mailer:
    """Delivers messages per `MailConfig`; `sleep` and `ssl_context` are injectable for tests."""

    def __init__(
        self,
        config: MailConfig,
        outbox: Path,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        ssl_context: Callable[[], ssl.SSLContext] = ssl.create_default_context,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._ssl_context = ssl_context

    def deliver(self, message: EmailMessage, recipients: Sequence[str] | None = None) -> Delivery:
        """Send to `recipients` (default: all configured); refusals are in the result.

        Raises `DeliveryError` when the message could not be handed over at all.
        """
        targets = tuple(recipients) if recipients is not None else self.config.recipients
        if self.config.host is None:
            return self._to_outbox(message, targets)
        return self._to_smtp(message, targets)

    def _to_outbox(self, message: EmailMessage, targets: tuple[str, ...]) -> Delivery:
        date = message["X-Clickstream-Report-Date"] or "undated"
        stamp = message["Date"].datetime.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = self.outbox / f"summary_{date}_{stamp}_{uuid.uuid4().hex[:6]}.eml"
        write_file_atomically(path, message.as_bytes(), fsync=True)
        logger.info("SMTP_HOST is not set: wrote the report email to %s", path)
        delivered = tuple(RecipientOutcome(address, True) for address in targets)
        return Delivery("outbox", str(path), str(message["Message-ID"]), 1, delivered)

    def _to_smtp(self, message: EmailMessage, targets: tuple[str, ...]) -> Delivery:
        if self.retry.attempts < 1 or not targets:
            msg = f"nothing to do: {self.retry.attempts} attempts allowed, recipients {targets}"
            raise DeliveryError(msg)
        outcomes: dict[str, RecipientOutcome] = {}
        pending, attempt = targets, 0
        while pending and attempt < self.retry.attempts:
            attempt += 1
            try:
                refused = self._send_once(message, pending)
            except (OSError, smtplib.SMTPException) as exc:
                reason = self._redact(f"{type(exc).__name__}: {exc}")
                if _is_permanent(exc) or attempt == self.retry.attempts:
                    if not outcomes:
                        msg = (
                            f"could not send {message['Subject']!r} via {self.config.server} "
                            f"(attempt {attempt} of {self.retry.attempts}): {reason}"
                        )
                        raise DeliveryError(msg) from None
                    # Some already have it: report the rest as refused rather than fail all.
                    outcomes.update({a: RecipientOutcome(a, False, reason) for a in pending})
                    break
                self._pause(attempt, f"sending failed: {reason}")
                continue
            outcomes.update(_outcomes(pending, refused))
            pending = tuple(a for a, (code, _) in refused.items() if 400 <= code < 500)
            if pending and attempt < self.retry.attempts:
                self._pause(attempt, f"{', '.join(pending)} refused for now")
        delivery = Delivery("smtp", self.config.server, str(message["Message-ID"]), attempt,
                            tuple(outcomes[address] for address in targets))  # fmt: skip
        if delivery.delivered:
            logger.info("Sent %r to %s via %s", message["Subject"],
                        ", ".join(delivery.delivered), self.config.server)  # fmt: skip
        for refusal in delivery.refused:
            logger.warning("%s refused %s: %s", self.config.server, refusal.address, refusal.reply)
        return delivery

    def _pause(self, attempt: int, why: str) -> None:
        pause = self.retry.delay(attempt)
        logger.warning("%s (attempt %s of %s via %s); retrying in %.1f s",
                       why, attempt, self.retry.attempts, self.config.server, pause)  # fmt: skip
        self._sleep(pause)

    def _send_once(self, message: EmailMessage, targets: tuple[str, ...]) -> _Refused:
        """One SMTP session; the recipients the server refused, with their code and reply."""
        config = self.config
        assert config.host is not None
        client: smtplib.SMTP
        if config.ssl:
            client = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout, context=self._ssl_context()
            )
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        with client:
            client.ehlo()
            if config.starttls:
                client.starttls(context=self._ssl_context())
                client.ehlo()
            if config.user and config.password is not None:
                client.login(config.user, config.password.get_secret_value())
            try:
                return client.send_message(message, to_addrs=list(targets))
            except smtplib.SMTPRecipientsRefused as exc:
                return exc.recipients

    def _redact(self, text: str) -> str:
        if self.config.password is None:
            return text
        secret = self.config.password.get_secret_value()
        if not secret:
            return text
        user = self.config.user or ""
        forms = [
            secret,
            base64.b64encode(secret.encode()).decode(),
            base64.b64encode(f"\0{user}\0{secret}".encode()).decode(),
        ]
        for form in forms:
            text = text.replace(form, "***")
        return text


def _outcomes(targets: tuple[str, ...], refused: _Refused) -> dict[str, RecipientOutcome]:
    """Per recipient of one attempt: delivered, or refused with the server's one-line reply."""
    outcomes = {}
    for address in targets:
        if address in refused:
            code, reply = refused[address]
            text = " ".join(reply.decode("utf-8", "replace").split())
            outcomes[address] = RecipientOutcome(address, False, f"{code} {text}")
        else:
            outcomes[address] = RecipientOutcome(address, True)
    return outcomes


def _is_permanent(exc: BaseException) -> bool:
    """A 5xx answer, a refused certificate or a missing extension will not heal by retrying."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    return isinstance(exc, smtplib.SMTPNotSupportedError | ssl.SSLCertVerificationError)
