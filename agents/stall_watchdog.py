"""Stops the worker when the window agent has input waiting but makes no progress.

Seen after kill -9 restarts: Faust's fetch loop stopped delivering one partition's records
while they waited on the broker. A stopped worker is restarted by its supervisor and replays
exactly; a silent stall is worse. The log line carries Faust's flow-control state and where
every asyncio task waits, so that the cause can be found.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from agents.topics import product_events_topic
from app.faust_app import get_app
from app.settings import get_settings

logger = logging.getLogger(__name__)
app = get_app()
STALL_S = 120.0
CHECK_EVERY_S = 15.0

# partition -> (offset applied last, or caught up to, and when)
_applied: dict[int, tuple[int, float]] = {}


def note_applied(partition: int, offset: int) -> None:
    """The window agent applied the record at `offset` of `partition`."""
    _applied[partition] = (offset, time.monotonic())


def forget(partition: int) -> None:
    """The partition moved away."""
    _applied.pop(partition, None)


async def committed_offset(tp: TopicPartition) -> int:
    """The next offset the window agent's group will read from `tp` (0 when none committed)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=get_settings().kafka_bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(app.conf.id, partitions=[tp])
    finally:
        await admin.close()
    meta = offsets.get(tp)
    return max(meta.offset, 0) if meta is not None else 0


@app.timer(interval=CHECK_EVERY_S)  # type: ignore[untyped-decorator]
async def _watch_for_stalls() -> None:
    if app.in_recovery or app.rebalancing:
        _applied.clear()  # restoring state is not a stall; the clocks start again after it
        return
    topic = product_events_topic.get_topic_name()
    now = time.monotonic()
    for tp in app.consumer.assignment():
        if tp.topic != topic:
            continue
        highwater = app.consumer.highwater(tp)
        if highwater is None:
            continue
        if tp.partition not in _applied:
            # First look since assignment: the group's commit says where processing stands.
            committed = await asyncio.wait_for(committed_offset(TopicPartition(*tp)), 30)
            _applied.setdefault(tp.partition, (committed - 1, now))
        offset, at = _applied[tp.partition]
        if highwater <= offset + 1:
            _applied[tp.partition] = (offset, now)  # caught up: nothing to wait for
        elif now - at > STALL_S:
            logger.critical(
                "window agent: partition %s has input up to offset %s but applied nothing past "
                "%s for %.0f s; stopping the worker so that a restart replays it\n%s",
                tp.partition, highwater - 1, offset, now - at, stall_report(),
            )  # fmt: skip
            await app.crash(RuntimeError(f"window agent stalled on partition {tp.partition}"))
            return


def stall_report() -> str:
    """Faust's flow-control state and every asyncio task's stack, to find where it is parked."""
    consumer = app.consumer
    lines = [
        f"flow_control active={app.flow_control.is_active()} "
        f"consumer.flow_active={getattr(consumer, 'flow_active', '?')} "
        f"in_recovery={app.in_recovery} rebalancing={app.rebalancing}",
        f"active={sorted(getattr(consumer, '_active_partitions', None) or ())} "
        f"paused={sorted(getattr(consumer, '_paused_partitions', None) or ())} "
        f"buffered={sorted(getattr(consumer, '_buffered_partitions', None) or ())}",
        f"producer buffer size={app.producer.buffer.size}",
    ]
    for task in asyncio.all_tasks():
        lines.append(f"task {task.get_name()}: {' -> '.join(await_chain(task.get_coro()))}")
    return "\n".join(lines)


def await_chain(awaitable: object) -> list[str]:
    """Where a suspended coroutine waits: each coroutine it awaits, down to the future."""
    chain: list[str] = []
    while awaitable is not None and len(chain) < 16:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "ag_frame", None)
        if frame is None:
            chain.append(type(awaitable).__name__)
            break
        path = "/".join(frame.f_code.co_filename.rsplit("/", 2)[-2:])
        chain.append(f"{frame.f_code.co_name}({path}:{frame.f_lineno})")
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "ag_await", None)
    return chain
