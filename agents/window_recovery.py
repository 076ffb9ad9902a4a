"""Taking over a worker partition: fencing its producer and rebuilding its state from its changelog.

Recovery reads the partition's changelog to its last stable offset (docs/design.md, "State");
the producer's init_transactions, under the partition's transactional id, aborts a killed
owner's open transaction first ("Delivery guarantees").
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from agents.alerts import recent_alert_ids
from agents.incidents import PartitionIncidents
from agents.local_handoff import Inbox
from agents.window_changelog import ALERTED, INCIDENTS, SLICES, ChangelogStore, read_changelog
from agents.window_checkpoint import PartitionCheckpoint
from agents.window_partition import OwnedPartition
from app.kafka.transactions import RETRY_BACKOFF_MS
from app.product_batches import product_partition
from app.settings import Settings
from app.windowing.partition_windows import PartitionWindows
from app.windowing.slices import state_key

logger = logging.getLogger(__name__)

RETENTION_MS = 3600 * 1000


def changelog_topic(settings: Settings) -> str:
    """`<APP_ID>-window-state-changelog`: the compacted topic of every partition's state."""
    return f"{settings.app_id}-window-state-changelog"


async def fence(settings: Settings, partition: int) -> AIOKafkaProducer:
    """Worker partition `partition`'s transactional producer, started: its
    init_transactions aborts a killed owner's open transaction and fences a stalled one.
    Raises KafkaError while the broker is away."""
    s = settings
    producer = AIOKafkaProducer(
        bootstrap_servers=s.kafka_bootstrap_servers,
        transactional_id=f"{s.app_id}-windows-{partition}",
        linger_ms=5, max_batch_size=1 << 20, max_request_size=4 << 20,
        retry_backoff_ms=RETRY_BACKOFF_MS,
    )  # fmt: skip
    await producer.start()
    return producer


async def recover(
    settings: Settings,
    group_id: str,
    restorer: AIOKafkaConsumer,
    consumer: AIOKafkaConsumer | None,
    tp: TopicPartition,
    producer: AIOKafkaProducer,
    wake: asyncio.Event,
    sent_ids: list[set[str]],
) -> OwnedPartition:
    """Take over input partition `tp`, its producer started (fenced): rebuild its state from
    its changelog, read with `restorer`. Its committed offset is `consumer`'s position (0
    without one); `wake` is set when its inbox has a handoff ready. `sent_ids`: empty, or
    the alert ids on ALERTS_TOPIC read once for every partition starting afresh (filled on
    first need). Raises KafkaError while the broker is away."""
    s = settings
    stored = await read_changelog(restorer, TopicPartition(changelog_topic(s), tp.partition))
    slices = ChangelogStore(SLICES, stored[SLICES])
    alerted = ChangelogStore(ALERTED, stored[ALERTED])
    open_incidents = ChangelogStore(INCIDENTS, stored[INCIDENTS])
    if not any(stored.values()):
        if not sent_ids:
            sent_ids.append(await recent_alert_ids(s.kafka_bootstrap_servers, s.alerts_topic))
        adopt_sent_alerts(settings, tp.partition, alerted, sent_ids[0])
    state = PartitionWindows(
        s.window_spec, s.views_threshold, s.purchases_threshold, RETENTION_MS,
        slices, alerted,
        stored_slice_keys=slices.keys(), stored_alert_keys=alerted.keys(),
    )  # fmt: skip
    incidents = PartitionIncidents(
        s.window_spec, s.views_threshold, s.purchases_threshold, s.incident_quiet_ms,
        int(s.incident_update_seconds * 1000), open_incidents, open_incidents.keys(),
    )  # fmt: skip
    checkpoint = PartitionCheckpoint(
        tp.partition, producer, changelog_topic(s), s.alerts_topic, s.incidents_topic,
        group_id, (slices, alerted, open_incidents),
        console_windows=s.console_alerts == "windows",
    )  # fmt: skip
    committed = await consumer.position(tp) if consumer is not None else 0
    inbox = Inbox(tp.partition, wake)
    return OwnedPartition(state, incidents, checkpoint, committed, inbox, saved_at=time.monotonic())


def adopt_sent_alerts(
    settings: Settings, partition: int, alerted: ChangelogStore, ids: set[str]
) -> None:
    """A partition with no state at all (a new APP_ID, a lost changelog) replays its input
    from the start: the alerts already on ALERTS_TOPIC for its products (`ids`, alert ids
    `product:window start ms`) are marked sent in `alerted`, so the replay does not send
    them twice. The markers go into the first checkpoint."""
    adopted = 0
    for alert_id in ids:
        product, _, start = alert_id.rpartition(":")
        if (
            product
            and start.isdigit()
            and (product_partition(product, settings.partitions) == partition)
        ):
            alerted[state_key(product, int(start))] = b"1"
            adopted += 1
    if adopted:
        logger.info(
            "windows: partition %s starts afresh; %s sent alerts adopted", partition, adopted
        )
