"""Flash-sale incident records as they travel on INCIDENTS_TOPIC: the one parser every reader uses
(the web's incident feed and the notifier).

A record (key = product_id) is a JSON object: incident_id, event (opened | updated | resolved),
sequence (0 for the open, +1 per record), product_id, status (open | resolved), the wall-clock
`opened_at`, `emitted_at` and `resolved_at` (ISO-8601 UTC), the first and latest alerted
window's bounds, `windows` alerted, `peak_views`, `purchases`, the thresholds in force and
`resolution` (null, quiet or purchases). Unknown extra fields are kept out, not refused.

Anything else on the topic is skipped, counted in
`clickstream_incident_records_skipped_total{reader}` and logged once per reader.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Annotated, Any, Literal

import orjson
from pydantic import ConfigDict, Field, TypeAdapter
from pydantic.dataclasses import dataclass

from app import metrics
from app.alert_records import Count, Name, UtcTime, validation_problem

logger = logging.getLogger(__name__)

SKIPPED = metrics.INCIDENT_RECORDS_SKIPPED


@dataclass(frozen=True, config=ConfigDict(strict=True, extra="ignore"))
class IncidentRecord:
    """One state of one incident; a later `sequence` of the same incident_id replaces it."""

    incident_id: Name
    event: Literal["opened", "updated", "resolved"]
    sequence: Count
    product_id: Name
    status: Literal["open", "resolved"]
    opened_at: UtcTime
    first_window_start: UtcTime
    first_window_end: UtcTime
    latest_window_start: UtcTime
    latest_window_end: UtcTime
    windows: Annotated[int, Field(ge=1)]
    peak_views: Count
    purchases: Count
    views_threshold: Count
    purchases_threshold: Count
    emitted_at: UtcTime
    resolved_at: UtcTime | None = None
    resolution: Literal["quiet", "purchases"] | None = None

    def __post_init__(self) -> None:
        if (self.status == "resolved") != (self.resolved_at is not None):
            msg = f"status {self.status!r} does not match resolved_at {self.resolved_at!r}"
            raise ValueError(msg)

    def to_dict(self) -> dict[str, Any]:
        """The record as the JSON object published on INCIDENTS_TOPIC."""
        return dataclasses.asdict(self)


_ADAPTER = TypeAdapter(IncidentRecord)


def parse_incident_value(raw: bytes | None) -> tuple[IncidentRecord, dict[str, Any]]:
    """The incident in a message's value, and the JSON object as published (fields this
    parser does not know included). Raises ValueError with the reason when it is none."""
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
    return _ADAPTER.validate_json(raw), published


class IncidentRecordReader:
    """Parses one reader's consumed records: skips, counts and logs (once) the non-incidents."""

    def __init__(self, reader: str) -> None:
        self.reader = reader
        self._warned = False

    def incident_of(self, record: Any) -> IncidentRecord | None:
        """The incident in a consumed record (aiokafka ConsumerRecord), or None after counting."""
        parsed = self.published_of(record)
        return None if parsed is None else parsed[0]

    def published_of(self, record: Any) -> tuple[IncidentRecord, dict[str, Any]] | None:
        """The incident in a consumed record and its published JSON object, or None after
        counting."""
        try:
            return parse_incident_value(record.value)
        except ValueError as exc:
            SKIPPED.inc(1, self.reader)
            if not self._warned:
                self._warned = True
                logger.warning(
                    "%s: skipping a record that is not an incident at %s[%s]@%s (%s); "
                    'further ones are only counted in %s{reader="%s"}',
                    self.reader, record.topic, record.partition, record.offset,
                    validation_problem(exc), SKIPPED.name, self.reader,
                )  # fmt: skip
            return None
