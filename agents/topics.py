"""The worker's Kafka topics, declared once for every agent."""

from __future__ import annotations

from app.faust_app import get_app
from app.settings import get_settings

app = get_app()
settings = get_settings()

product_events_topic = app.topic(
    settings.product_events_topic,
    partitions=settings.partitions,
    key_serializer="raw",
    value_serializer="raw",
    internal=True,
)
# Declared (created when missing) so that the alert sink subscribes on a fresh cluster too.
alerts_topic = app.topic(
    settings.alerts_topic,
    partitions=settings.partitions,
    key_serializer="raw",
    value_serializer="raw",
    internal=True,
)
