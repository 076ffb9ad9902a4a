"""Incident records as they travel on INCIDENTS_TOPIC, parsed once for the notifier.

A record is a JSON object (key = product_id): `incident_id`, `event` ("opened", "updated" or
"resolved"), `sequence` (0, 1, ... per incident) and `product_id` identify it; the story
fields (windows, counts, times) are optional here, so that a field the incident stage adds or
leaves out never silences a notification, but a field that is present must have its type.
Anything else on the topic is not an incident record: it is skipped, counted in
`clickstream_incident_records_skipped_total{reader}` and logged once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass

from app.alert_records import UtcTime
from app.metrics import REGISTRY

logger = logging.getLogger(__name__)

SKIPPED = REGISTRY.counter(
    "clickstream_incident_records_skipped_total",
    "Records on the incidents topic that are not incident records, skipped by each reader.",
    "reader",
)
Count = Annotated[int, Field(ge=0, le=2**63 - 1)]
Name = Annotated[str, Field(min_length=1)]
NOTIFIED_EVENTS = frozenset({"opened", "resolved"})


@pydantic_dataclass(frozen=True, config=ConfigDict(strict=True))
class IncidentRecord:
    """One incident event; times are ISO-8601 UTC text as published, counts whole numbers."""

    incident_id: Name
    event: Literal["opened", "updated", "resolved"]
    sequence: Count
    product_id: Name
    status: str | None = None
    opened_at: UtcTime | None = None
    first_window_start: UtcTime | None = None
    first_window_end: UtcTime | None = None
    latest_window_start: UtcTime | None = None
    latest_window_end: UtcTime | None = None
    windows: Count | None = None
    peak_views: Count | None = None
    purchases: Count | None = None
    views_threshold: Count | None = None
    purchases_threshold: Count | None = None
    emitted_at: UtcTime | None = None
    resolved_at: UtcTime | None = None
    resolution: str | None = None


_ADAPTER = TypeAdapter(IncidentRecord)


@dataclass(frozen=True, slots=True)
class IncidentNotice:
    """An incident record to notify about: the parsed record and the JSON object as published
    (fields this parser does not know are passed on to receivers untouched)."""

    record: IncidentRecord
    published: dict[str, Any]

    @property
    def delivery_id(self) -> str:
        """`<incident_id>/<sequence>`: the same for every delivery of this record, anywhere."""
        return f"{self.record.incident_id}/{self.record.sequence}"

    @property
    def notified(self) -> bool:
        """Whether people hear of it: opens and resolves do, updates do not."""
        return self.record.event in NOTIFIED_EVENTS


def parse_incident(raw: bytes | None) -> IncidentNotice:
    """The incident in a message's value; ValueError (with the reason) when it is none."""
    if raw is None:
        msg = "the message has no value (a tombstone)"
        raise ValueError(msg)
    try:
        published = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        msg = f"not JSON ({exc})"
        raise ValueError(msg) from None
    if not isinstance(published, dict):
        msg = f"a JSON {type(published).__name__}, not an object"
        raise ValueError(msg)
    return IncidentNotice(_ADAPTER.validate_json(raw), published)


def moment(text: str | None) -> datetime | None:
    """A published time as an aware UTC datetime (None stays None)."""
    return None if text is None else datetime.fromisoformat(text)


def _problem(exc: ValueError) -> str:
    if not isinstance(exc, ValidationError):
        return str(exc)
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


class IncidentRecordReader:
    """Parses one reader's consumed records: skips, counts and logs (once) the non-incidents."""

    def __init__(self, reader: str) -> None:
        self.reader = reader
        self._warned = False

    def notice_of(self, record: Any) -> IncidentNotice | None:
        """The incident in a consumed record (aiokafka ConsumerRecord), or None after counting."""
        try:
            return parse_incident(record.value)
        except ValueError as exc:
            SKIPPED.inc(label_value=self.reader)
            if not self._warned:
                self._warned = True
                logger.warning(
                    "%s: skipping a record that is not an incident at %s[%s]@%s (%s); "
                    'further ones are only counted in %s{reader="%s"}',
                    self.reader, record.topic, record.partition, record.offset,
                    _problem(exc), SKIPPED.name, self.reader,
                )  # fmt: skip
            return None
