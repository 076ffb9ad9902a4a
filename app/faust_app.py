"""The only place the `faust.App` is built.

Nothing registers itself on import: `agents.worker_app` builds this app and calls each
stage's, feed's and page's `register(app)`, the one place the worker is wired
(docs/design.md, "Where things live").
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

import faust
from faust.types import AppT
from mode import ServiceT

from app import faust_transport
from app.settings import Settings
from app.web_host import advertised_host

S = TypeVar("S", bound=ServiceT)


class ClickstreamApp(faust.App):
    """The Faust app, which creates its own topics before any consumer can auto-create them."""

    settings: Settings

    async def on_first_start(self) -> None:
        # A consumer's metadata request makes a broker with auto-create on create a missing
        # topic with its default partition count; the repartition topic needs PARTITIONS.
        # An input topic created later would go unnoticed for minutes (metadata refresh).
        from app.kafka.topics import ensure_topic

        s = self.settings
        servers = s.kafka_bootstrap_servers
        for topic in (s.product_events_topic, s.alerts_topic):
            await ensure_topic(servers, topic, s.partitions, "PARTITIONS")
        for topic in (s.kafka_topic, s.dlq_topic):
            await ensure_topic(servers, topic, s.partitions)
        await super().on_first_start()

    def add_service(self, service: S) -> S:
        """Start `service` (an instance, built with what it needs) with the app."""
        self.service(cast(Any, service))
        return service


def settings_of(app: AppT) -> Settings:
    """The settings of the app a view or service runs in."""
    return cast(ClickstreamApp, app).settings


def build_app(settings: Settings) -> ClickstreamApp:
    """A Faust app configured from settings: the worker's services, timers and web server.

    Its local directory is per APP_ID, so a new deployment id never meets another's files.
    """
    faust_transport.install()
    datadir = settings.data_dir / "worker-state" / settings.app_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = ClickstreamApp(
        settings.app_id,
        broker=[f"kafka://{host.strip()}" for host in settings.kafka_bootstrap_servers.split(",")],
        topic_partitions=settings.partitions,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        # A crashed worker's partitions move to the others after 10 s, not Faust's 60 s.
        broker_session_timeout=10.0,
        autodiscover=False,  # agents.worker_app registers everything explicitly
        datadir=str(datadir),
        producer_acks=-1,
        web_host=advertised_host(settings.web_host),
        web_port=settings.web_port,
        web_bind=settings.web_host,
    )
    app.settings = settings
    return app
