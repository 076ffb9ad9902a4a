"""One channel's lane: the incident records it owes, delivered one after another, in order.

A lane delivers its oldest record until it lands (retried with backoff, `app.notify.retry`),
then records the delivery id in the partition's ledger (fsynced) before it reports the record
settled, so that the consumer commits past it only after that. A record whose id is already
in the ledger (a replay) is settled without sending. Lanes run independently: a dead mail
server never holds back the webhook.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka.structs import TopicPartition

from app.notify.ledger import DeliveryLedger
from app.notify.records import IncidentNotice
from app.notify.retry import Backoff, Channel, deliver_with_retries
from app.notify.status import NOTIFICATIONS, ChannelStatus

logger = logging.getLogger(__name__)
RETRY_BUG_S = 5.0  # pause before handling a record again after an unexpected error


@dataclass(eq=False)
class Owed:
    """One record a lane owes: where it was read, and what to say."""

    tp: TopicPartition
    offset: int
    notice: IncidentNotice
    task: asyncio.Task[None] | None = None


class Lane:
    """Delivers `channel`'s records; calls `settled(tp, offset, channel name)` for each one
    the channel is done with (delivered, delivered before, or rejected)."""

    def __init__(
        self,
        channel: Channel,
        backoff: Backoff,
        settled: Callable[[TopicPartition, int, str], None],
    ) -> None:
        self.channel = channel
        self.status = ChannelStatus(channel.name, channel.target)
        self.backoff = backoff
        self.items: deque[Owed] = deque()
        self.ledgers: dict[TopicPartition, DeliveryLedger] = {}  # of the partitions held
        self._settled = settled
        self._wake = asyncio.Event()

    def push(self, owed: Owed) -> None:
        self.items.append(owed)
        self.status.set_pending(len(self.items))
        self._wake.set()

    async def drop(self, revoked: set[TopicPartition]) -> None:
        """Forget revoked partitions' records and ledgers; cancel a delivery of theirs under
        way (their new owner delivers it) and wait until it has stopped."""
        current = self.items[0].task if self.items and self.items[0].tp in revoked else None
        self.items = deque(owed for owed in self.items if owed.tp not in revoked)
        self.status.set_pending(len(self.items))
        if current is not None:
            current.cancel()
            await asyncio.wait({current})
        for tp in revoked:
            self.ledgers.pop(tp, None)

    async def serve(self) -> None:
        """Deliver the records one after another, for as long as the notifier runs."""
        while True:
            if not self.items:
                self._wake.clear()
                await self._wake.wait()
                continue
            owed = self.items[0]
            if owed.tp not in self.ledgers:  # revoked meanwhile
                self.items.popleft()
                continue
            task = owed.task = asyncio.create_task(self._deliver(owed))
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError:
                task.cancel()
                await asyncio.wait({task})
                raise
            failure = None if task.cancelled() else task.exception()
            if failure is not None:  # a bug, not the receiver: keep the record, try again
                logger.error(
                    "notifier: %s could not handle %s; trying again in %.0f s",
                    self.channel.name, owed.notice.delivery_id, RETRY_BUG_S, exc_info=failure,
                )  # fmt: skip
                await asyncio.sleep(RETRY_BUG_S)
                continue
            if self.items and self.items[0] is owed:  # else a revoke took it away
                self.items.popleft()
            self.status.set_pending(len(self.items))
            if not task.cancelled():
                self._settled(owed.tp, owed.offset, self.channel.name)

    async def _deliver(self, owed: Owed) -> None:
        name, delivery_id = self.channel.name, owed.notice.delivery_id
        ledger = self.ledgers[owed.tp]
        if delivery_id in ledger:
            NOTIFICATIONS.inc(1, name, "already_delivered")
            return
        await deliver_with_retries(self.channel, owed.notice, self.backoff, self.status)
        while True:  # an id not recorded would be sent again after a replay: insist
            write = asyncio.ensure_future(asyncio.to_thread(ledger.add, delivery_id))
            try:
                await asyncio.shield(write)
                return
            except asyncio.CancelledError:
                with contextlib.suppress(OSError):
                    await write
                raise
            except OSError as exc:
                logger.error(
                    "notifier: cannot record %s in %s (%s); trying again in %.0f s",
                    delivery_id, ledger.path, exc, RETRY_BUG_S,
                )  # fmt: skip
                await asyncio.sleep(RETRY_BUG_S)
