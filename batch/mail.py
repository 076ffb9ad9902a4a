"""Who the report is mailed to and how: mail settings checked up front, and the message itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid

from pydantic import SecretStr

from app.errors import SettingsError
from app.settings import Settings
from batch.files import RenderedReport
from batch.render import subject

# Python folds some subjects just over 78 characters as "Subject:\n <text>", which its own
# parser reads back with a leading space; RFC 5322's hard limit of 998 avoids the fold.
_POLICY = policy.default.clone(max_line_length=998)
# The body encoders take their line length from the policy too; RFC 2045 caps QP lines at 76.
_BODY_POLICY = policy.default.clone(max_line_length=76)
_OUTBOX_SENDER = "clickstream@localhost"
_OUTBOX_RECIPIENT = "reports@localhost"


@dataclass(frozen=True, slots=True)
class MailConfig:
    """SMTP delivery (host set) or the outbox (host None), with sender and recipients."""

    host: str | None
    port: int
    user: str | None
    password: SecretStr | None
    starttls: bool
    ssl: bool
    sender: str
    recipients: tuple[str, ...]
    timeout: float = 30.0

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_settings(cls, settings: Settings) -> MailConfig:
        """Check the mail variables together; a bad combination names the variable to fix."""
        host = settings.smtp_host.strip() if settings.smtp_host else None
        recipients = _addresses("EMAIL_TO", settings.email_to)
        sender_list = _addresses("EMAIL_FROM", settings.email_from)
        if host is None:
            return cls(
                None, 0, None, None, False, False,
                sender_list[0] if sender_list else _OUTBOX_SENDER,
                recipients or (_OUTBOX_RECIPIENT,),
            )  # fmt: skip
        user = settings.smtp_user or None
        error = _combination_error(settings, recipients, sender_list, user)
        if error is not None:
            raise error
        default_port = 465 if settings.smtp_ssl else 587 if settings.smtp_starttls else 25
        return cls(
            host=host,
            port=settings.smtp_port or default_port,
            user=user,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            ssl=settings.smtp_ssl,
            sender=sender_list[0] if sender_list else str(user),
            recipients=recipients,
        )


def _combination_error(
    settings: Settings, recipients: tuple[str, ...], senders: tuple[str, ...], user: str | None
) -> SettingsError | None:
    """The first mail variable that does not fit with the others, when SMTP_HOST is set."""
    if not recipients:
        return SettingsError(
            "EMAIL_TO", settings.email_to, "email addresses, comma separated (SMTP_HOST is set)"
        )
    if not senders and not (user and "@" in user):
        return SettingsError(
            "EMAIL_FROM", settings.email_from, "an email address (SMTP_HOST is set)"
        )
    if settings.smtp_starttls and settings.smtp_ssl:
        return SettingsError("SMTP_SSL", True, "false when SMTP_STARTTLS is true (pick one)")
    if user and settings.smtp_password is None:
        return SettingsError("SMTP_PASSWORD", None, "a password, required with SMTP_USER")
    if settings.smtp_password is not None and not user:
        return SettingsError("SMTP_USER", None, "a user name, required with SMTP_PASSWORD")
    return None


def _addresses(variable: str, value: str | None) -> tuple[str, ...]:
    if not value or not value.strip():
        return ()
    found = tuple(address for _, address in getaddresses([value]) if address)
    if not found or any("@" not in address for address in found):
        raise SettingsError(variable, value, "email addresses, comma separated")
    return found


def build_message(report: RenderedReport, config: MailConfig, now: datetime) -> EmailMessage:
    """One multipart/alternative message: the text part first, then the HTML part.

    Both parts are quoted-printable UTF-8, so what goes on the wire is 7-bit ASCII in lines
    of at most 76 characters whatever the report holds: no raw NUL or other control byte,
    no 8-bit data for a server without 8BITMIME, no HTML line over the 998 limit. (The
    renderers already show control characters in ids as escapes, see `batch.render.shown`.)
    """
    message = EmailMessage(policy=_BODY_POLICY)
    message["Subject"] = subject(report.summary)
    message["From"] = config.sender
    message["To"] = ", ".join(config.recipients)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid("daily-summary", domain=config.sender.rpartition("@")[2])
    message["X-Clickstream-Report-Date"] = report.summary.date.isoformat()
    message.set_content(report.text, cte="quoted-printable")
    message.add_alternative(report.html, subtype="html", cte="quoted-printable")
    message.policy = _POLICY  # serialisation follows the top-level policy: headers unfolded
    return message
