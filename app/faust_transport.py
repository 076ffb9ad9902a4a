"""Faust's Kafka transport with an idempotent, acks=all producer.

Faust enables idempotence only with exactly-once processing; the worker's changelog and alert
writes need it with at-least-once too, so that a retried send is never written twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.transport import drivers
from faust.transport.drivers import aiokafka as aiokafka_driver


class IdempotentProducer(aiokafka_driver.Producer):
    def _settings_extra(self) -> Mapping[str, Any]:
        return {"acks": "all", "enable_idempotence": True}


class IdempotentTransport(aiokafka_driver.Transport):
    Producer = IdempotentProducer


def install() -> None:
    """Make `kafka://` broker URLs use this transport."""
    drivers.TRANSPORTS.aliases["kafka"] = f"{__name__}:IdempotentTransport"
