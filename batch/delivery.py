"""Handing the report email over: SMTP (STARTTLS or SSL, auth) with retries, or the outbox.

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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from email.message import EmailMessage
from pathlib import Path

from app.errors import DeliveryError
from batch.files import atomic_write
from batch.mail import MailConfig

logger = logging.getLogger(__name__)


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
    """Where the message went: `smtp` to a server, or `outbox` as an .eml file."""

    channel: str
    target: str
    message_id: str
    attempts: int


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

    def deliver(self, message: EmailMessage) -> Delivery:
        if self.config.host is None:
            return self._to_outbox(message)
        return self._to_smtp(message)

    def _to_outbox(self, message: EmailMessage) -> Delivery:
        date = message["X-Clickstream-Report-Date"] or "undated"
        stamp = message["Date"].datetime.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = self.outbox / f"summary_{date}_{stamp}_{uuid.uuid4().hex[:6]}.eml"
        atomic_write(path, message.as_bytes())
        logger.info("SMTP_HOST is not set: wrote the report email to %s", path)
        return Delivery("outbox", str(path), str(message["Message-ID"]), 1)

    def _to_smtp(self, message: EmailMessage) -> Delivery:
        config = self.config
        for attempt in range(1, self.retry.attempts + 1):
            try:
                self._send_once(message)
            except (OSError, smtplib.SMTPException) as exc:
                reason = self._redact(f"{type(exc).__name__}: {exc}")
                if _is_permanent(exc) or attempt == self.retry.attempts:
                    msg = (
                        f"could not send {message['Subject']!r} via {config.server} "
                        f"(attempt {attempt} of {self.retry.attempts}): {reason}"
                    )
                    raise DeliveryError(msg) from None
                pause = self.retry.delay(attempt)
                logger.warning(
                    "Sending via %s failed (attempt %s of %s): %s; retrying in %.1f s",
                    config.server, attempt, self.retry.attempts, reason, pause,
                )  # fmt: skip
                self._sleep(pause)
            else:
                logger.info("Sent %r to %s via %s", message["Subject"],
                            ", ".join(config.recipients), config.server)  # fmt: skip
                return Delivery("smtp", config.server, str(message["Message-ID"]), attempt)
        msg = "retry policy allows no attempt"
        raise DeliveryError(msg)

    def _send_once(self, message: EmailMessage) -> None:
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
            refused = client.send_message(message)
        if refused:
            logger.warning("The server refused some recipients: %s", ", ".join(sorted(refused)))

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


def _is_permanent(exc: BaseException) -> bool:
    """A 5xx answer, a refused certificate or a missing extension will not heal by retrying."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    return isinstance(exc, smtplib.SMTPNotSupportedError | ssl.SSLCertVerificationError)
