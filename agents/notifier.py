"""Incident notifications in the worker: a service that runs the notifier when a channel is set.

With ALERT_WEBHOOK_URL and/or ALERT_EMAIL_TO set, every worker joins the consumer group
`<APP_ID>-notifier` on INCIDENTS_TOPIC (see `agents.notify_consumer`); with neither, there is
no consumer at all. The stall watchdog does not watch this group: a receiver that is down
holds back notifications, never counting, and must not restart the worker. /health and
/metrics report the channels instead (`app.notify.status`).
"""

from __future__ import annotations

from mode import Service

from agents.notify_consumer import IncidentNotifier
from app.faust_app import ClickstreamApp
from app.settings import Settings


class NotifierService(Service):
    """Starts and stops this worker's incident notifier, if any channel is configured."""

    notifier: IncidentNotifier | None = None

    def __init__(self, settings: Settings, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.settings = settings

    async def on_start(self) -> None:
        self.notifier = IncidentNotifier.from_settings(self.settings)
        if self.notifier is not None:
            await self.notifier.start()

    async def on_stop(self) -> None:
        if self.notifier is not None:
            await self.notifier.stop()


def register(app: ClickstreamApp) -> None:
    """Run the incident notifier in this worker (it stays idle with no channel set)."""
    app.add_service(NotifierService(app.settings))
