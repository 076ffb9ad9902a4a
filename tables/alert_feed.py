"""The newest flash-sale alerts, held in memory by every worker for GET /api/alerts.

Each worker follows ALERTS_TOPIC on its own, outside any consumer group (every partition,
starting RING_SIZE records from each partition's end), so any worker answers from memory with
the whole deployment's alerts and no call to the others. The topic, not Parquet, is the source:
it is the same for every worker on any host, and an alert is on it before it reaches a file.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mode import Service

from app.alert_records import AlertRecordReader
from app.faust_app import ClickstreamApp
from app.kafka.topics import topic_tail

logger = logging.getLogger(__name__)

RING_SIZE = 1000


class AlertRing:
    """At most `capacity` alerts by alert_id; the newest (by detected_at) are kept."""

    def __init__(self, capacity: int = RING_SIZE) -> None:
        self.capacity = capacity
        self._alerts: dict[str, dict[str, Any]] = {}

    def add(self, alert: dict[str, Any]) -> None:
        self._alerts[str(alert["alert_id"])] = alert
        if len(self._alerts) > self.capacity * 2:
            self._alerts = {str(a["alert_id"]): a for a in self.newest(self.capacity)}

    def newest(self, limit: int) -> list[dict[str, Any]]:
        """Newest first: by detected_at, then window_start, then alert_id, all descending."""
        ordered = sorted(
            self._alerts.values(),
            key=lambda a: (a["detected_at"], a["window_start"], a["alert_id"]),
            reverse=True,
        )
        return ordered[: min(limit, self.capacity)]

    def get(self, alert_id: str) -> dict[str, Any] | None:
        """The alert with this id (`product_id:window_start_ms`), if it is still held."""
        return self._alerts.get(alert_id)

    def of_product(self, product_id: str) -> list[dict[str, Any]]:
        """The held alerts of one product, newest first."""
        return [a for a in self.newest(self.capacity) if a["product_id"] == product_id]

    def __len__(self) -> int:
        return min(len(self._alerts), self.capacity)


alert_ring = AlertRing()


class AlertFeed(Service):
    """Feeds `alert_ring` from ALERTS_TOPIC for as long as the worker runs."""

    def __init__(self, app: ClickstreamApp, **kwargs: Any) -> None:
        self.app = app
        self.settings = app.settings
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        self.alert_reader = AlertRecordReader("alert_feed")

    @Service.task
    async def _follow(self) -> None:
        while not self.should_stop:
            try:
                await self._follow_once()
            except Exception as exc:  # the broker went away: follow again from the tail
                logger.warning("alert feed interrupted (%s); following again in 5 s", exc)
                await self.sleep(5.0)

    async def _follow_once(self) -> None:
        servers, topic = self.settings.kafka_bootstrap_servers, self.settings.alerts_topic
        async with topic_tail(servers, topic, RING_SIZE) as tail:
            if tail is None:  # the worker creates the topic at start-up
                await self.sleep(2.0)
                return
            while not self.should_stop:
                polled = await tail.consumer.getmany(timeout_ms=1000, max_records=1000)
                for records in polled.values():
                    for record in records:
                        alert = self.alert_reader.alert_of(record)
                        if alert is not None:
                            alert_ring.add(alert.to_dict())
                await asyncio.sleep(0)


def register(app: ClickstreamApp) -> None:
    """Follow ALERTS_TOPIC into `alert_ring` while the worker runs."""
    app.add_service(AlertFeed(app))
