"""Instants as ISO-8601 UTC text with a `Z`, from epoch milliseconds or epoch seconds.

Two forms, each kept as its readers know it: `iso_utc_ms` is the alert, incident and web API
form (`2024-06-01T00:00:00Z`, a fraction only when there is one); `iso_utc_s` is the
simulator's wire form, always with milliseconds (`2024-06-01T00:00:00.500Z`).
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc_ms(epoch_ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC with a Z; the fraction only when not zero."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def iso_utc_s(epoch_seconds: float) -> str:
    """Epoch seconds as ISO-8601 UTC with exactly three decimals and a Z."""
    second, millis = divmod(int(epoch_seconds * 1000), 1000)
    moment = datetime.fromtimestamp(second, tz=UTC)
    return f"{moment.strftime('%Y-%m-%dT%H:%M:%S')}.{millis:03d}Z"


def epoch_ms_of_iso(text: str) -> int:
    """ISO-8601 text with an offset or a Z (as the two functions above write) as epoch ms."""
    return int(datetime.fromisoformat(text).timestamp() * 1000)
