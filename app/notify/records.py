"""Incident records as they travel on INCIDENTS_TOPIC, parsed once for the notifier.

The record's schema and its one parser are `app.incident_records`; here each record becomes a
notice: the parsed record, the object as published, and its delivery id. Anything else on the
topic is skipped, counted in `clickstream_incident_records_skipped_total{reader}` and logged
once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.incident_records import IncidentRecord, IncidentRecordReader, parse_incident_value

logger = logging.getLogger(__name__)

NOTIFIED_EVENTS = frozenset({"opened", "resolved"})
__all__ = ["IncidentNotice", "IncidentRecord", "NoticeReader", "moment", "parse_incident"]


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
    return IncidentNotice(*parse_incident_value(raw))


def moment(text: str | None) -> datetime | None:
    """A published time as an aware UTC datetime (None stays None)."""
    return None if text is None else datetime.fromisoformat(text)


class NoticeReader:
    """Parses the notifier's consumed records: skips, counts and logs (once) the non-incidents
    (`app.incident_records.IncidentRecordReader`)."""

    def __init__(self, reader: str) -> None:
        self._reader = IncidentRecordReader(reader)

    def notice_of(self, record: Any) -> IncidentNotice | None:
        """The incident in a consumed record (aiokafka ConsumerRecord), or None after counting."""
        parsed = self._reader.published_of(record)
        return None if parsed is None else IncidentNotice(*parsed)
