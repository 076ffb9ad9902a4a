"""Flash-sale incidents, held in memory by every worker for the web (`tables.web.incidents`).

Each worker follows INCIDENTS_TOPIC from its start, outside any consumer group and
read_committed (incidents are produced in transactions), and keeps the newest state of each
incident by `sequence`, so any worker answers for the whole deployment from memory.
"""

from __future__ import annotations

from typing import Any

from mode import Service

from app.faust_app import ClickstreamApp
from app.incident_records import IncidentRecord, IncidentRecordReader
from app.time_format import epoch_ms_of_iso
from tables.topic_follow import follow_topic

CAPACITY = 5000


class IncidentBook:
    """The newest record of at most `capacity` incidents (the most recently opened kept)."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._by_id: dict[str, IncidentRecord] = {}

    def add(self, incident: IncidentRecord) -> None:
        known = self._by_id.get(incident.incident_id)
        if known is not None and known.sequence >= incident.sequence:
            return  # a replay or an older state read after a newer one
        self._by_id[incident.incident_id] = incident
        if len(self._by_id) > self.capacity * 2:
            kept = self.newest("all", self.capacity)
            self._by_id = {i.incident_id: i for i in kept}

    def newest(self, status: str, limit: int) -> list[IncidentRecord]:
        """Newest opened first (then incident_id descending); `status` all, open or resolved."""
        chosen = [i for i in self._by_id.values() if status in ("all", i.status)]
        chosen.sort(key=lambda i: (epoch_ms_of_iso(i.opened_at), i.incident_id), reverse=True)
        return chosen[:limit]

    def of_product(self, product_id: str) -> list[IncidentRecord]:
        """The held incidents of one product, newest opened first."""
        return [i for i in self.newest("all", len(self._by_id)) if i.product_id == product_id]


incident_book = IncidentBook()


class IncidentFeed(Service):
    """Feeds `incident_book` from INCIDENTS_TOPIC for as long as the worker runs."""

    def __init__(self, app: ClickstreamApp, **kwargs: Any) -> None:
        self.app = app
        self.settings = app.settings
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        self.reader = IncidentRecordReader("incident_feed")

    @Service.task
    async def _follow(self) -> None:
        servers = self.settings.kafka_bootstrap_servers
        await follow_topic(self, servers, self.settings.incidents_topic, 2**62, self._on_record)

    def _on_record(self, record: Any) -> None:
        incident = self.reader.incident_of(record)
        if incident is not None:
            incident_book.add(incident)


def register(app: ClickstreamApp) -> None:
    """Follow INCIDENTS_TOPIC into `incident_book` while the worker runs."""
    app.add_service(IncidentFeed(app))
