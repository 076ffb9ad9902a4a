"""A real single-node Apache Kafka broker (KRaft) for development and tests, without Docker."""

from app.kafka.broker import BrokerStatus, LocalBroker

__all__ = ["BrokerStatus", "LocalBroker"]
