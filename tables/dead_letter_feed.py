"""Dead letters of the last hour by reason, held in memory by every worker for the dashboard.

Each worker follows DLQ_TOPIC outside any consumer group and read_committed, from up to
TAIL_RECORDS before each partition's end, and keeps (time, reason, detail) of the records
produced in the last hour (by the record's timestamp, the wall clock of its producer). The
reason and detail are the `x-dlq-reason` and `x-dlq-detail` headers the ingest stage sets.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from mode import Service

from app.faust_app import ClickstreamApp
from app.time_format import iso_utc_ms
from tables.topic_follow import follow_topic

HOUR_MS = 3600_000
TAIL_RECORDS = 20_000
MAX_HELD = 100_000


@dataclass(frozen=True, slots=True)
class DeadLetterSample:
    at_ms: int
    reason: str
    detail: str


class DeadLetterLog:
    """Dead letters by time, oldest first; at most MAX_HELD of the last hour are kept."""

    def __init__(self) -> None:
        self.samples: deque[DeadLetterSample] = deque(maxlen=MAX_HELD)

    def add(self, sample: DeadLetterSample) -> None:
        self.samples.append(sample)

    def last_hour(self, now_ms: int) -> dict[str, Any]:
        """{"by_reason": {reason: count}, "total", "newest": {at, reason, detail} | None}."""
        since = now_ms - HOUR_MS
        while self.samples and self.samples[0].at_ms < since:
            self.samples.popleft()
        recent = [s for s in self.samples if s.at_ms >= since]
        newest = max(recent, key=lambda s: s.at_ms, default=None)
        return {
            "by_reason": dict(sorted(Counter(s.reason for s in recent).items())),
            "total": len(recent),
            "newest": None
            if newest is None
            else {"at": iso_utc_ms(newest.at_ms), "reason": newest.reason, "detail": newest.detail},
        }


def header(record: Any, name: str) -> str:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode(errors="replace")
    return ""


dead_letter_log = DeadLetterLog()


class DeadLetterFeed(Service):
    """Feeds `dead_letter_log` from DLQ_TOPIC for as long as the worker runs."""

    def __init__(self, app: ClickstreamApp, **kwargs: Any) -> None:
        self.app = app
        self.settings = app.settings
        super().__init__(**kwargs)

    @Service.task
    async def _follow(self) -> None:
        servers = self.settings.kafka_bootstrap_servers
        await follow_topic(self, servers, self.settings.dlq_topic, TAIL_RECORDS, self._on_record)

    def _on_record(self, record: Any) -> None:
        if record.timestamp >= time.time() * 1000 - HOUR_MS:
            reason = header(record, "x-dlq-reason") or "unknown"
            dead_letter_log.add(
                DeadLetterSample(record.timestamp, reason, header(record, "x-dlq-detail"))
            )


def register(app: ClickstreamApp) -> None:
    """Follow DLQ_TOPIC into `dead_letter_log` while the worker runs."""
    app.add_service(DeadLetterFeed(app))
