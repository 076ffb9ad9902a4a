"""The window agent: counts product batches into exact hopping windows and emits alerts."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

import orjson
from faust import TopicT
from faust.streams import _current_event

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
# Changed slices are written to the table (RocksDB and its changelog) at most this often per
# partition, and the batches they hold are acknowledged then. Under live traffic a batch holds
# a few events, and writing per batch cost about one changelog record per event.
FLUSH_EVERY_S = 1.0

_states: dict[int, PartitionWindows] = {}
_recently_sent: set[str] = set()  # alert_ids found on ALERTS_TOPIC when partitions arrived
_checked_partitions: set[int] = set()  # partitions assigned since _recently_sent was read
_unflushed: dict[int, list[Any]] = {}  # partition -> events applied, not yet written nor acked
_flushed_at: dict[int, float] = {}
_applying: set[int] = set()  # partitions whose batch is between apply and its alerts' acks
_streams: list[Any] = []  # the agent's stream, to acknowledge from the flush timer
_revocations: dict[int, int] = {}  # partition -> times it was revoked from this worker


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
            _unflushed.pop(tp.partition, None)  # not acknowledged: the next owner replays them
            _revocations[tp.partition] = _revocations.get(tp.partition, 0) + 1
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
    """Apply each batch and send its new alerts; write state and ack at most every
    FLUSH_EVERY_S per partition, so a crash replays exactly what was not written."""
    _streams[:] = [stream]
    async for event in stream.noack().events():
        partition = event.message.partition
        revocations = _revocations.get(partition, 0)
        _applying.add(partition)
        try:
            await _apply_batch(event)
        except Exception as exc:
            # Faust would ack an event whose processing raised; stop the worker instead, so
            # its committed offset stays behind this batch and a restart replays it exactly.
            logger.exception("window agent: a batch failed; stopping the worker to replay it")
            await app.crash(exc)
            return
        finally:
            _applying.discard(partition)
        if _revocations.get(partition, 0) != revocations:
            continue  # revoked meanwhile, its state dropped: not acknowledged, so replayed
        _unflushed.setdefault(partition, []).append(event)
        if _flush_due(partition) and not await _flush(stream, partition):
            return


def _flush_due(partition: int) -> bool:
    return time.monotonic() - _flushed_at.get(partition, 0.0) >= FLUSH_EVERY_S


async def _flush(stream: Any, partition: int) -> bool:
    """Write a partition's changed state, wait until its changelog is in Kafka, then
    acknowledge the batches it holds. False when that failed and the worker is stopping.

    Table writes go to the partition of the current event (Faust's rule): the caller runs in
    the context of an event of `partition`."""
    events = _unflushed.pop(partition, [])
    state = _states.get(partition)
    try:
        if state is not None:
            state.flush()
        # Acknowledged (and so committed) only once Kafka has the changelog of every write
        # so far: a restart's recovery must not bring back an older value of any of them.
        acked = asyncio.gather(slices_table.changelog_acked(), alerted_table.changelog_acked())
        await asyncio.wait_for(acked, STEP_TIMEOUT_S)
    except Exception as exc:
        # Nothing of these batches is acknowledged: a restart replays them exactly.
        logger.exception("window agent: writing partition %s failed; stopping", partition)
        await app.crash(exc)
        return False
    _flushed_at[partition] = time.monotonic()
    for event in events:
        await stream.ack(event)
    return True


@app.timer(interval=FLUSH_EVERY_S / 2)  # type: ignore[untyped-decorator]
async def _flush_quiet_partitions() -> None:
    """Flush partitions whose input paused: nothing else would write their last batches."""
    for partition, events in list(_unflushed.items()):
        if not events or partition in _applying or not _streams or not _flush_due(partition):
            continue
        token = _current_event.set(weakref.ref(events[-1]))
        try:
            if not await _flush(_streams[0], partition):
                return
        finally:
            _current_event.reset(token)


async def _apply_batch(event: Any) -> None:
    """Count one product batch, send its new alerts and record them as sent."""
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
    metrics.DUPLICATES.inc(state.duplicates_skipped - skipped_before)
