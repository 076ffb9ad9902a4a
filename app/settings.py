"""The one settings object: every variable of the README's configuration table, read from the
environment and `.env`."""

from __future__ import annotations

import functools
import re
from datetime import time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.errors import SettingsError
from app.web_host import is_loopback
from app.windowing.spec import WindowSpec

_SECRET_FIELDS = frozenset({"smtp_password", "web_token", "alert_webhook_secret"})
_REPORT_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class Settings(BaseSettings):
    """Validated configuration. Field descriptions say what each variable accepts."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    kafka_bootstrap_servers: str = Field(
        "localhost:9092", min_length=1, description="a host:port list, comma separated"
    )
    kafka_topic: str = Field("clickstream-events", min_length=1, description="a topic name")
    alerts_topic: str = Field("flash-sale-alerts", min_length=1, description="a topic name")
    dlq_topic: str = Field("clickstream-events-dlq", min_length=1, description="a topic name")
    incidents_topic: str = Field("flash-sale-incidents", min_length=1, description="a topic name")
    views_threshold: int = Field(100, ge=0, description="a whole number >= 0")
    purchases_threshold: int = Field(5, ge=1, description="a whole number >= 1")
    window_size: int = Field(600, ge=1, description="a whole number of seconds >= 1")
    window_step: int = Field(
        60, ge=1, description="a whole number of seconds >= 1 that divides WINDOW_SIZE"
    )
    allowed_lateness: int = Field(60, ge=0, description="a whole number of seconds >= 0")
    simulator_interval: float = Field(0.1, ge=0, description="a number of seconds >= 0")
    num_users: int = Field(1000, ge=1, description="a whole number >= 1")
    num_products: int = Field(100, ge=1, description="a whole number >= 1")
    data_dir: Path = Field(Path("./data"), description="a directory path")
    report_time: time = Field(time(0, 15), description="a time of day as HH:MM (24-hour)")
    report_timezone: str = Field("UTC", description="an IANA time zone such as Europe/Berlin")
    smtp_host: str | None = Field(None, description="a host name, or unset to write .eml files")
    smtp_port: int | None = Field(None, ge=1, le=65535, description="a port from 1 to 65535")
    smtp_user: str | None = Field(None, description="a user name")
    smtp_password: SecretStr | None = Field(None, description="a password")
    smtp_starttls: bool = Field(False, description="true or false")
    smtp_ssl: bool = Field(False, description="true or false (implicit TLS, usually port 465)")
    email_from: str | None = Field(None, description="an email address")
    email_to: str | None = Field(None, description="email addresses, comma separated")
    web_host: str = Field("127.0.0.1", min_length=1, description="an address to bind")
    web_port: int = Field(6066, ge=1, le=65535, description="a port from 1 to 65535")
    web_token: SecretStr | None = Field(None, description="a bearer token for the web API")
    web_allow_anonymous: bool = Field(
        False, description="true or false (serve a non-loopback WEB_HOST without WEB_TOKEN)"
    )
    app_id: str = Field(
        "clickstream", pattern=r"^[A-Za-z0-9._-]+$", description="letters, digits, . _ -"
    )
    partitions: int = Field(
        4, ge=1, le=256, description="a whole number from 1 to 256 (worker partitions)"
    )
    sink_flush_events: int = Field(50_000, ge=1, description="a whole number >= 1")
    sink_flush_seconds: float = Field(10.0, gt=0, le=300, description="seconds, > 0 and <= 300")
    max_event_bytes: int = Field(262144, ge=64, description="a whole number of bytes >= 64")
    max_clock_skew: int = Field(3600, ge=0, description="a whole number of seconds >= 0")
    incident_quiet_seconds: int | None = Field(
        None, ge=1, description="a whole number of seconds >= 1 (unset = WINDOW_SIZE)"
    )
    incident_update_seconds: float = Field(60.0, ge=0, description="a number of seconds >= 0")
    console_alerts: Literal["incidents", "windows"] = Field(
        "incidents", description="incidents or windows"
    )
    alert_webhook_url: str | None = Field(
        None, pattern=r"^https?://[^\s/]+", description="an http:// or https:// URL"
    )
    alert_webhook_secret: SecretStr | None = Field(
        None, description="a secret that signs webhook bodies (HMAC-SHA256)"
    )
    alert_email_to: str | None = Field(
        None, description="email addresses, comma separated, for incident notifications"
    )
    stall_seconds: float = Field(
        60.0, gt=0, description="a number of seconds > 0 and greater than SINK_FLUSH_SECONDS"
    )

    @field_validator("report_time", mode="before")
    @classmethod
    def _parse_report_time(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = _REPORT_TIME.match(value.strip())
            if not match:
                msg = "not HH:MM"
                raise ValueError(msg)
            return time(int(match.group(1)), int(match.group(2)))
        return value

    @field_validator("report_timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            msg = "unknown time zone"
            raise ValueError(msg) from exc
        return value

    @field_validator("window_step")
    @classmethod
    def _step_divides_size(cls, value: int, info: ValidationInfo) -> int:
        size = info.data.get("window_size")
        if size is not None and size % value != 0:
            msg = f"does not divide WINDOW_SIZE={size}"
            raise ValueError(msg)
        return value

    @field_validator("stall_seconds")
    @classmethod
    def _stall_after_flush(cls, value: float, info: ValidationInfo) -> float:
        # The ingest stage commits once per SINK_FLUSH_SECONDS: a shorter stall threshold
        # would call every healthy flush interval a stall.
        flush = info.data.get("sink_flush_seconds")
        if flush is not None and value <= flush:
            msg = f"is not greater than SINK_FLUSH_SECONDS={flush}"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _web_exposure(self) -> Settings:
        # SettingsError is no ValueError: pydantic lets it through as it is, so the user sees
        # the same one line as for any other setting, naming WEB_TOKEN.
        check_web_exposure(self)
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.report_timezone)

    @property
    def window_spec(self) -> WindowSpec:
        """WINDOW_SIZE and WINDOW_STEP as the window arithmetic takes them (milliseconds)."""
        return WindowSpec.from_seconds(self.window_size, self.window_step)

    @property
    def ingest_group(self) -> str:
        """The ingest stage's consumer group."""
        return f"{self.app_id}-ingest"

    @property
    def windows_group(self) -> str:
        """The window stage's consumer group."""
        return f"{self.app_id}-windows"

    @property
    def alert_sink_group(self) -> str:
        """The alert sink's consumer group."""
        return f"{self.app_id}-alert-sink"

    @property
    def notifier_group(self) -> str:
        """The incident notifier's consumer group."""
        return f"{self.app_id}-notifier"

    @property
    def product_events_topic(self) -> str:
        """The worker's internal topic of validated events regrouped by product partition."""
        return f"{self.app_id}-events-by-product"

    @property
    def incident_quiet_ms(self) -> int:
        """How long no window of a product may qualify before its incident resolves, in ms."""
        quiet = (
            self.window_size if self.incident_quiet_seconds is None else self.incident_quiet_seconds
        )
        return quiet * 1000


def check_web_exposure(settings: Settings) -> None:
    """Refuse to serve a non-loopback address to anyone unless the user chose to."""
    host = settings.web_host
    if is_loopback(host) or settings.web_token is not None or settings.web_allow_anonymous:
        return
    allowed = (
        f"a token, because WEB_HOST={host!r} is reachable from other machines "
        "(or set WEB_ALLOW_ANONYMOUS=true to serve the API to anyone without one)"
    )
    variable = "WEB_TOKEN"
    raise SettingsError(variable, None, allowed)


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning pydantic's report into one line naming the first bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "configuration"
        info = Settings.model_fields.get(field)
        allowed = info.description if info and info.description else first["msg"]
        value = "<hidden>" if field in _SECRET_FIELDS else first.get("input")
        raise SettingsError(field.upper(), value, str(allowed)) from None


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, validated once."""
    return load_settings()
