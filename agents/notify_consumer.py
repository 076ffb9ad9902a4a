"""The notifier: incident opens and resolves from INCIDENTS_TOPIC to each channel, once.

A plain aiokafka consumer group (`<APP_ID>-notifier`, read_committed, manual commits) with
one lane per channel (webhook, email; `agents.notify_lane`). Each lane delivers its records in
offset order, retried until they land (`app.notify.retry`), independently of the other lane: a
dead mail server does not hold back the webhook. Updates, and records that are not incidents,
are owed by no lane.

Nothing is lost, nothing repeated:
- An offset is committed only once every lane is done with every record before it.
- After the receiver took a notification and before that commit, the lane records its
  delivery id in its ledger (`app.notify.ledger`, fsynced); a replay after a crash or a
  rebalance finds it there and does not send it again.
- The one window left: a crash after the receiver's 2xx and before the ledger write sends
  that notification again after the restart, with the same `X-Clickstream-Delivery`.

At most `max_pending` records are read and not yet delivered; while that many are, reading
pauses and the rest wait in Kafka. A partition this group never committed starts at the
records of the last `lookback_s` seconds, not at the start of the topic's retention.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from agents.notify_email import EmailChannel
from agents.notify_lane import Lane, Owed
from agents.notify_webhook import WebhookChannel
from app.kafka.topics import ensure_topic
from app.mail_config import incident_mail_config
from app.notify.ledger import DeliveryLedger, ledger_path
from app.notify.pending import InFlight
from app.notify.records import NoticeReader
from app.notify.retry import Backoff, Channel
from app.notify.status import track, untrack
from app.settings import Settings

logger = logging.getLogger(__name__)

MAX_PENDING = 100
LOOKBACK_S = 3600.0
POLL_MS = 500
FETCH_BYTES = 256 << 10  # per partition: what the client may hold beyond `max_pending`


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, notifier: IncidentNotifier) -> None:
        self.notifier = notifier

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.notifier.release(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.notifier.adopt(assigned)


class IncidentNotifier:
    """Consumes `topic` as `group_id` and delivers opens and resolves on `channels`.

    `state_dir` holds the lanes' ledgers; `backoff` paces retries (seconds).
    """

    def __init__(
        self, bootstrap: str, topic: str, group_id: str, channels: Sequence[Channel],
        state_dir: Path, *, partitions: int = 1, backoff: Backoff | None = None,
        max_pending: int = MAX_PENDING, lookback_s: float = LOOKBACK_S,
    ) -> None:  # fmt: skip
        self.bootstrap, self.topic, self.group_id = bootstrap, topic, group_id
        self.state_dir, self.partitions = state_dir, partitions
        self.backoff = backoff or Backoff()
        self.max_pending, self.lookback_s = max_pending, lookback_s
        self.lanes = [Lane(channel, self.backoff, self._settle) for channel in channels]
        self._reader = NoticeReader("notifier")
        self._inflight = InFlight()
        self._committed: dict[TopicPartition, int] = {}
        self._ready: set[TopicPartition] = set()  # adopted: ledgers loaded, position set
        self._adopting: set[TopicPartition] = set()
        self._commit_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self.consumer: AIOKafkaConsumer | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> IncidentNotifier | None:
        """The worker's notifier, or None when no channel is configured."""
        channels: list[Channel] = []
        if settings.alert_webhook_url:
            secret = settings.alert_webhook_secret
            channels.append(WebhookChannel(
                settings.alert_webhook_url, None if secret is None else secret.get_secret_value()
            ))  # fmt: skip
        mail = incident_mail_config(settings)
        if mail is not None:
            channels.append(EmailChannel(mail, settings.data_dir / "outbox"))
        if not channels:
            return None
        return cls(
            settings.kafka_bootstrap_servers, settings.incidents_topic,
            settings.notifier_group, channels, settings.data_dir / "notify",
            partitions=settings.partitions,
        )  # fmt: skip

    async def start(self) -> None:
        await ensure_topic(self.bootstrap, self.topic, self.partitions)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
            isolation_level="read_committed", metadata_max_age_ms=30_000,
            max_partition_fetch_bytes=FETCH_BYTES,
        )  # fmt: skip
        await self.consumer.start()
        for lane in self.lanes:
            track(lane.status)
            self._tasks.append(asyncio.create_task(lane.serve()))
        self._tasks.append(asyncio.create_task(self._read_forever(self.consumer)))
        self.consumer.subscribe([self.topic], listener=_Rebalance(self))
        names = ", ".join(f"{lane.channel.name} ({lane.channel.target})" for lane in self.lanes)
        logger.info("notifier: incident opens and resolves from %s go to %s", self.topic, names)

    async def stop(self) -> None:
        """Stop delivering; commit what every lane is done with. Undelivered records wait in
        Kafka for the next start."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.consumer is not None:
            with contextlib.suppress(KafkaError):
                await self._commit(self.consumer.assignment())
            await self.consumer.stop()
        for lane in self.lanes:
            await lane.channel.close()
            untrack(lane.status)

    async def _read_forever(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                await self._read_once(consumer)
            except KafkaError as exc:  # the broker away, a rebalance: read on
                logger.warning("notifier: %s; reading again in 1 s", exc)
                await asyncio.sleep(1.0)
            except Exception:  # a bug: say so loudly, keep notifying what can be
                logger.exception("notifier: reading %s failed; reading again in 5 s", self.topic)
                await asyncio.sleep(5.0)

    async def _read_once(self, consumer: AIOKafkaConsumer) -> None:
        """One poll: admit its records (at most the room left), then commit what is settled."""
        assigned = consumer.assignment()
        room = self.max_pending - self._inflight.owed()
        if room <= 0:
            consumer.pause(*assigned)  # keep polling: the group must see this member alive
        else:
            consumer.resume(*(consumer.paused() - self._adopting))
        polled = await consumer.getmany(timeout_ms=POLL_MS, max_records=max(room, 1))
        for tp, records in polled.items():
            if tp in self._ready:  # else adopting it seeks, and reads these again
                for record in records:
                    self._admit(tp, record)
        ready = consumer.assignment() & self._ready
        for tp in ready:
            self._inflight.moved(tp, await consumer.position(tp))
        await self._commit(ready)

    def _admit(self, tp: TopicPartition, record: Any) -> None:
        notice = self._reader.notice_of(record)
        if notice is None or not notice.notified:
            return  # owed by nobody: committed with the position
        self._inflight.admit(tp, record.offset, (lane.channel.name for lane in self.lanes))
        for lane in self.lanes:
            lane.push(Owed(tp, record.offset, notice))

    def _settle(self, tp: TopicPartition, offset: int, channel: str) -> None:
        self._inflight.settle(tp, offset, channel)

    async def _commit(self, partitions: set[TopicPartition]) -> None:
        async with self._commit_lock:
            offsets = {}
            for tp in partitions:
                offset = self._inflight.committable(tp)
                if offset is not None and offset != self._committed.get(tp):
                    offsets[tp] = offset
            if offsets and self.consumer is not None:
                await self.consumer.commit(offsets)
                self._committed.update(offsets)

    async def adopt(self, assigned: set[TopicPartition]) -> None:
        """Load the lanes' ledgers of newly assigned partitions and set where each starts: at
        its commit, or (never committed) at its records of the last `lookback_s` seconds.
        Their reading is paused meanwhile: no record is admitted before its ledger."""
        consumer = self.consumer
        assert consumer is not None
        consumer.pause(*assigned)
        self._adopting |= assigned
        try:
            for tp in assigned:
                for lane in self.lanes:
                    path = ledger_path(self.state_dir, lane.channel.name, tp.topic, tp.partition)
                    lane.ledgers[tp] = await asyncio.to_thread(DeliveryLedger, path)
            for tp in assigned:
                committed = await consumer.committed(tp)
                consumer.seek(tp, committed if committed is not None else await self._recent(tp))
        except KafkaError as exc:  # the defaults apply: the commit, else the earliest record
            logger.warning("notifier: could not find where to start %s (%s)", assigned, exc)
        finally:
            self._adopting -= assigned
            self._ready |= assigned

    async def _recent(self, tp: TopicPartition) -> int:
        """The first offset of the last `lookback_s` seconds, committed as the group's start
        (so that a later restart never looks back again)."""
        consumer = self.consumer
        assert consumer is not None
        since_ms = int((time.time() - self.lookback_s) * 1000)
        found = (await consumer.offsets_for_times({tp: since_ms})).get(tp)
        offset = found.offset if found is not None else (await consumer.end_offsets([tp]))[tp]
        await consumer.commit({tp: offset})
        self._committed[tp] = offset
        return int(offset)

    async def release(self, revoked: set[TopicPartition]) -> None:
        """Stop working on revoked partitions: drop their records, cancel a delivery under way
        (its new owner delivers it), commit what is settled."""
        self._ready -= revoked
        await asyncio.gather(*(lane.drop(revoked) for lane in self.lanes))
        try:
            await self._commit(revoked)
        except KafkaError as exc:
            logger.warning("notifier: could not commit revoked %s (%s)", revoked, exc)
        self._inflight.forget(revoked)
        for tp in revoked:
            self._committed.pop(tp, None)
