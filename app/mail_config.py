"""How mail goes out (SMTP or the outbox, sender, recipients): the mail settings checked
together up front, for the daily report and for incident notifications alike."""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import getaddresses

from pydantic import SecretStr

from app.errors import SettingsError
from app.settings import Settings

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


def incident_mail_config(settings: Settings) -> MailConfig | None:
    """How incident emails go (None without ALERT_EMAIL_TO). Raises SettingsError naming the
    variable to fix when the mail settings do not fit together."""
    if not settings.alert_email_to or not settings.alert_email_to.strip():
        return None
    with_recipients = settings.model_copy(update={"email_to": settings.alert_email_to})
    try:
        return MailConfig.from_settings(with_recipients)
    except SettingsError as exc:
        if exc.variable == "EMAIL_TO":  # the recipients are ALERT_EMAIL_TO's here
            variable = "ALERT_EMAIL_TO"
            raise SettingsError(variable, settings.alert_email_to, exc.allowed) from None
        raise
