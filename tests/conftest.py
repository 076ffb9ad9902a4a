"""Shared fixtures: one real Kafka broker per session, a fresh topic and group per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.kafka.broker import LocalBroker, free_port


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The broker `make test` started, or one started here through the same launcher."""
    given = os.environ.get("TEST_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    broker = LocalBroker(tmp_path_factory.mktemp("kafka"))
    status = broker.start(port=free_port())
    try:
        yield status.bootstrap
    finally:
        broker.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest_asyncio.fixture
async def new_topic(kafka_bootstrap: str) -> AsyncIterator[object]:
    """A factory `await new_topic(partitions=1)` that creates a topic no other test uses."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()

    async def create(partitions: int = 1, prefix: str = "test") -> str:
        name = unique(prefix)
        await admin.create_topics([NewTopic(name, partitions, 1)])
        return name

    try:
        yield create
    finally:
        await admin.close()


@pytest_asyncio.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    """A producer with the settings the product uses: acks=all, idempotent."""
    prod = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    await prod.start()
    try:
        yield prod
    finally:
        await prod.stop()


@pytest_asyncio.fixture
async def consumer_factory(kafka_bootstrap: str) -> AsyncIterator[object]:
    """A factory for consumers that read from the beginning, each in its own group."""
    made: list[AIOKafkaConsumer] = []

    async def make(*topics: str) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=kafka_bootstrap,
            group_id=unique("test-group"),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        made.append(consumer)
        return consumer

    try:
        yield make
    finally:
        for consumer in made:
            await consumer.stop()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No stray configuration: an empty working directory (no .env) and no config variables."""
    from app.settings import Settings

    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path
