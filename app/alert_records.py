"""Flash-sale alert records as they travel on ALERTS_TOPIC: the one parser every reader uses.

Anything else on the topic (not JSON, not an object, a field missing or of the wrong type, a
time that is not ISO-8601 UTC) is not an alert: readers skip it, count it in
`clickstream_alert_records_skipped_total{reader}` and log the first one, so a stray message
never stops a stage and never stops it again on replay.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from app import metrics

logger = logging.getLogger(__name__)

SKIPPED = metrics.ALERT_RECORDS_SKIPPED
_INT64_MAX = 2**63 - 1  # the Parquet columns are int64


def _utc_time(text: str) -> str:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        msg = f"{text[:64]!r} is not an ISO-8601 time"
        raise ValueError(msg) from None
    if moment.utcoffset() != timedelta(0):
        msg = f"{text!r} is not in UTC (end it with Z or +00:00)"
        raise ValueError(msg)
    return text


UtcTime = Annotated[str, AfterValidator(_utc_time)]
Count = Annotated[int, Field(ge=0, le=_INT64_MAX)]
Name = Annotated[str, Field(min_length=1)]


@dataclass(frozen=True, config=ConfigDict(strict=True))
class AlertRecord:
    """One flash-sale alert (docs/design.md, "Event, alert and storage formats"); times are
    ISO-8601 UTC text as published."""

    alert_id: Name
    product_id: Name
    window_start: UtcTime
    window_end: UtcTime
    views: Count
    add_to_cart: Count
    purchases: Count
    detected_at: UtcTime

    def __post_init__(self) -> None:
        if datetime.fromisoformat(self.window_end) <= datetime.fromisoformat(self.window_start):
            msg = f"window_end {self.window_end} is not after window_start {self.window_start}"
            raise ValueError(msg)

    def to_dict(self) -> dict[str, str | int]:
        """The alert as the JSON object published on ALERTS_TOPIC."""
        return dataclasses.asdict(self)

    def to_json(self) -> bytes:
        """The alert as the bytes of a message on ALERTS_TOPIC."""
        return orjson.dumps(self.to_dict())


_ADAPTER = TypeAdapter(AlertRecord)


def _validated(raw: bytes | None) -> AlertRecord:
    """The alert in `raw`, or ValueError (pydantic's ValidationError is one) saying why not."""
    if raw is None:
        msg = "the message has no value (a tombstone)"
        raise ValueError(msg)
    return _ADAPTER.validate_json(raw)


def parse_alert_record(raw: bytes | None) -> AlertRecord | None:
    """The alert in a message's value, or None when the value is not an alert."""
    try:
        return _validated(raw)
    except ValueError:
        return None


def validation_problem(exc: ValueError) -> str:
    """One line for a record that failed to parse: the first field and what was wrong."""
    if not isinstance(exc, ValidationError):
        return str(exc)
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


class AlertRecordReader:
    """Parses one reader's consumed records: skips, counts and logs (once) the non-alerts."""

    def __init__(self, reader: str) -> None:
        self.reader = reader
        self._warned = False

    def alert_of(self, record: Any) -> AlertRecord | None:
        """The alert in a consumed record (aiokafka ConsumerRecord), or None after counting it."""
        try:
            return _validated(record.value)
        except ValueError as exc:
            SKIPPED.inc(1, self.reader)
            if not self._warned:
                self._warned = True
                logger.warning(
                    "%s: skipping a record that is not an alert at %s[%s]@%s (%s); "
                    'further ones are only counted in %s{reader="%s"}',
                    self.reader, record.topic, record.partition, record.offset,
                    validation_problem(exc), SKIPPED.name, self.reader,
                )  # fmt: skip
            return None
