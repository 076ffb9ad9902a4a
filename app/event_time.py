"""An input event's `timestamp` to epoch milliseconds (UTC): ISO-8601 or epoch s/ms/us/ns.

Every form is floored to the millisecond, so one instant lands in the same window however it
is written. A timestamp that is no time, or before 2000, raises `InvalidEventError` with the
dead-letter reason `bad_timestamp`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from app.errors import InvalidEventError
from app.rejections import Reason

# Epoch numbers are told apart by magnitude; each bound is the year 5138 in the smaller unit.
_EPOCH_MS_FROM = 10**11
_EPOCH_US_FROM = 10**14
_EPOCH_NS_FROM = 10**17
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
MIN_EVENT_TIME_MS = 946_684_800_000  # 2000-01-01: earlier timestamps are taken as mistakes


def parse_timestamp_ms(value: object) -> int:
    """ISO-8601 (naive means UTC) or epoch s/ms/us/ns, to epoch milliseconds, floored.

    One rounding rule for every form (floor to the millisecond), so the same instant written
    as float seconds or as an ISO string lands in the same window.
    """
    if isinstance(value, bool):
        raise InvalidEventError(Reason.BAD_TIMESTAMP, f"timestamp {value!r} is not a time")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidEventError(Reason.BAD_TIMESTAMP, f"timestamp {value!r} is not a time")
        ms = _epoch_ms(value)
    elif isinstance(value, str):
        fast = _utc_millis_ms(value)
        if fast is not None:
            ms = fast
        else:
            text = value.strip()
            if text.isdigit():
                return parse_timestamp_ms(int(text))
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                raise InvalidEventError(
                    Reason.BAD_TIMESTAMP, f"timestamp {value[:64]!r} is not ISO-8601 or epoch"
                ) from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            ms = (parsed - _EPOCH) // _ONE_MS  # exact: datetimes hold whole microseconds
    else:
        raise InvalidEventError(Reason.BAD_TIMESTAMP, f"timestamp has type {type(value).__name__}")
    if ms < MIN_EVENT_TIME_MS:
        raise InvalidEventError(Reason.BAD_TIMESTAMP, f"timestamp {value!r} is before 2000")
    return ms


_SECOND_MS: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM:SS" -> epoch ms, for _utc_millis_ms
_SECOND_CACHE_SIZE = 100_000
_MILLIS = {f"{i:03d}": i for i in range(1000)}


def _utc_millis_ms(text: str) -> int | None:
    """`YYYY-MM-DDTHH:MM:SS.mmmZ` (what JavaScript's toISOString and our simulator write) to
    epoch ms, or None for any other form. The same value as the general ISO path at a
    fraction of its cost (timedelta arithmetic dominates that): each distinct second is
    parsed once and looked up after."""
    if len(text) != 24 or text[23] != "Z" or text[19] != ".":
        return None
    millis = _MILLIS.get(text[20:23])
    if millis is None:
        return None
    second = text[:19]
    base = _SECOND_MS.get(second)
    if base is None:
        if (
            text[4] != "-" or text[7] != "-" or text[10] not in "T "
            or text[13] != ":" or text[16] != ":"
        ):  # fmt: skip
            return None
        try:
            parsed = datetime.fromisoformat(second)
        except ValueError:
            return None
        if len(_SECOND_MS) >= _SECOND_CACHE_SIZE:
            _SECOND_MS.clear()
        base = _SECOND_MS[second] = (parsed.replace(tzinfo=UTC) - _EPOCH) // _ONE_MS
    return base + millis


def _epoch_ms(value: int | float) -> int:
    """Epoch seconds, milliseconds, microseconds or nanoseconds, by magnitude, floored to ms."""
    size = abs(value)
    if size < _EPOCH_MS_FROM:
        # Float seconds carry microseconds at best: round to those first, so 0.123 is not
        # read as 0.12299999 and floored a millisecond early.
        return round(value * 1_000_000) // 1000
    whole = math.floor(value)
    if size < _EPOCH_US_FROM:
        return whole
    if size < _EPOCH_NS_FROM:
        return whole // 1000
    if size < _EPOCH_NS_FROM * 1000:
        return whole // 1_000_000
    detail = f"timestamp {value!r} is too large even for epoch nanoseconds"
    raise InvalidEventError(Reason.BAD_TIMESTAMP, detail)
