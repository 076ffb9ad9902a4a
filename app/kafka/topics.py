"""Small questions about topics that aiokafka's consumer answers only for subscribed ones."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from app.errors import SettingsMismatchError


async def topic_partitions(bootstrap: str, topic: str) -> list[int]:
    """Partition numbers of `topic`, or [] when it does not exist (yet)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        # Describing a missing topic would make a broker with auto-create create it.
        if topic not in await admin.list_topics():
            return []
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"] != 0:
        return []
    return sorted(p["partition"] for p in described["partitions"])


async def ensure_topic(
    bootstrap: str, topic: str, partitions: int, setting: str | None = None
) -> None:
    """Create `topic` with `partitions` partitions when missing.

    With `setting`, an existing topic must also have exactly that many (it names the variable
    to fix); without, any existing partition count is fine.
    """
    existing = await topic_partitions(bootstrap, topic)
    if not existing:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, partitions, 1)])
        except TopicAlreadyExistsError:
            existing = await topic_partitions(bootstrap, topic)
        finally:
            await admin.close()
    if setting is not None and existing and len(existing) != partitions:
        msg = (
            f"topic {topic} has {len(existing)} partitions but {setting}={partitions}: "
            f"set {setting}={len(existing)}, or delete the topic and the worker state to rebuild"
        )
        raise SettingsMismatchError(msg)
