"""The window agent: counts product batches into exact hopping windows and emits alerts."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from faust import TopicT

from agents import stall_watchdog
from agents.alerts import alert_record, console, console_table, recent_alert_ids
from agents.topics import alerts_topic, product_events_topic
from agents.window_state import PartitionWindows
from app import metrics
from app.faust_app import get_app
from app.product_batches import ProductBatch
from app.settings import get_settings
from app.windows import WindowSpec
from tables.product_windows import alerted_table, slices_table, stored_keys

logger = logging.getLogger(__name__)
app = get_app()
settings = get_settings()
RETENTION_MS = 3600 * 1000
STEP_TIMEOUT_S = 60.0  # a Kafka round trip that takes longer stops the worker (then replay)

_states: dict[int, PartitionWindows] = {}
_recently_sent: set[str] = set()  # alert_ids found on ALERTS_TOPIC when partitions arrived
_checked_partitions: set[int] = set()  # partitions assigned since _recently_sent was read


def partition_state(partition: int) -> PartitionWindows:
    """The window state of one worker partition, created (and indexed) on first use."""
    state = _states.get(partition)
    if state is None:
        state = PartitionWindows(
            WindowSpec.from_seconds(settings.window_size, settings.window_step),
            settings.views_threshold,
            settings.purchases_threshold,
            RETENTION_MS,
            slices_table,
            alerted_table,
            stored_slice_keys=stored_keys(slices_table, partition),
            stored_alert_keys=stored_keys(alerted_table, partition),
            already_alerted=_recently_sent.__contains__,
        )
        _states[partition] = state
    return state


def known_partition_state(partition: int) -> PartitionWindows | None:
    """The state of a partition this worker has processed since it was assigned, if any."""
    return _states.get(partition)


@app.on_partitions_revoked.connect
async def _forget_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    """Caches of a partition that moves away may go stale: drop them."""
    for tp in args[0]:
        if tp.topic == product_events_topic.get_topic_name():
            _states.pop(tp.partition, None)
            _checked_partitions.discard(tp.partition)
            stall_watchdog.forget(tp.partition)


async def publish_alerts(topic: TopicT, records: list[dict[str, Any]]) -> None:
    """Send alerts and wait until Kafka has all of them (acks=all); a send that hangs is an
    error. All are sent before any is awaited: one round trip per batch, not per alert."""
    futures = [
        await topic.send(key=str(record["product_id"]).encode(), value=orjson.dumps(record))
        for record in records
    ]
    await asyncio.wait_for(asyncio.gather(*futures), STEP_TIMEOUT_S)


@app.agent(product_events_topic)
async def count_product_windows(stream: Any) -> None:
    """Apply each batch, send new alerts, persist state; ack only once all of that is done."""
    async for event in stream.noack().events():
        try:
            await _apply_batch(event)
        except Exception as exc:
            # Faust would ack an event whose processing raised; stop the worker instead, so
            # its committed offset stays behind this batch and a restart replays it exactly.
            logger.exception("window agent: a batch failed; stopping the worker to replay it")
            await app.crash(exc)
            return
        await stream.ack(event)


async def _apply_batch(event: Any) -> None:
    """Count one product batch, send its new alerts, persist the changed state."""
    partition = event.message.partition
    stall_watchdog.note_applied(partition, event.message.offset)
    if partition not in _checked_partitions:
        # At start and after a rebalance: a previous owner may have sent an alert and died
        # before writing its marker; the alerts topic says so.
        recent = recent_alert_ids(settings.kafka_bootstrap_servers, settings.alerts_topic)
        _recently_sent.update(await asyncio.wait_for(recent, STEP_TIMEOUT_S))
        _checked_partitions.add(partition)
    state = partition_state(partition)
    batch = ProductBatch.decode(event.value)
    skipped_before = state.duplicates_skipped
    alerts = state.apply(batch)
    if alerts:
        now_ms = int(time.time() * 1000)
        await publish_alerts(alerts_topic, [alert_record(alert, now_ms) for alert in alerts])
        for alert in alerts:
            state.mark_alerted(alert)
            console.warning("FLASH SALE ALERT\n%s", console_table(alert))
        metrics.ALERTS.inc(len(alerts))
    state.flush()
    metrics.DUPLICATES.inc(state.duplicates_skipped - skipped_before)
