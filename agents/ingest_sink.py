"""The ingest stage's Parquet event sink: per source partition, events read since its last
commit, made durable in Parquet before the partition's offset is committed.

A flush writes each due buffer's events (fsynced), and only then commits the partition's dead
letters and next offset in its transaction (agents.ingest_commit), once every batch derived
from those offsets is acknowledged or held by a committed window checkpoint. A write the disk
refuses pauses reading and commits nothing until writes work again (docs/design.md, "Ingest").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka.structs import TopicPartition

from agents.ingest_commit import PartitionCommits
from agents.ingest_dead_letters import DeadLetter
from app import metrics
from app.commit_state import encode_commit_state
from app.errors import StorageError
from app.events import Event
from app.storage.arrow import events_table
from app.storage.partition_files import PartitionedParquetWriter

logger = logging.getLogger(__name__)


@dataclass
class SinkBuffer:
    """What one source partition read since its last commit: events waiting for their Parquet
    file, dead letters waiting for their transaction, and the offset to commit."""

    first_offset: int | None = None
    last_offset: int = -1
    # The consumer's position: past transaction markers and aborted records no poll returns.
    next_offset: int | None = None
    events: list[Event] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    opened_at: float = field(default_factory=time.monotonic)

    def due(self, max_events: int, max_age_s: float) -> bool:
        if self.next_offset is None:
            return False
        return len(self.events) >= max_events or time.monotonic() - self.opened_at >= max_age_s

    def then(self, later: SinkBuffer) -> SinkBuffer:
        """This buffer (a flush that failed) followed by what was read while it ran."""
        return SinkBuffer(
            self.first_offset if self.first_offset is not None else later.first_offset,
            max(self.last_offset, later.last_offset),
            later.next_offset if later.next_offset is not None else self.next_offset,
            self.events + later.events, self.dead_letters + later.dead_letters, self.opened_at,
        )  # fmt: skip


class EventSink:
    """The buffers of the source partitions being read, and their flush to Parquet and commit.

    `resumed`: the partitions whose state is restored and which are being read (the poll
    loop's set, shared); `settle`: waits until every batch sent so far is delivered;
    `max_seen`: a source partition's newest event time (epoch ms), stored with its commit.
    A buffer is due at `flush_events` events or `flush_seconds` after it opened.
    """

    def __init__(
        self, writer: PartitionedParquetWriter, commits: PartitionCommits,
        resumed: set[TopicPartition], settle: Callable[[], Awaitable[None]],
        max_seen: Callable[[int], int | None], flush_events: int, flush_seconds: float,
    ) -> None:  # fmt: skip
        self.writer = writer
        self.commits = commits
        self.resumed = resumed
        self.settle = settle
        self.max_seen = max_seen
        self.flush_events = flush_events
        self.flush_seconds = flush_seconds
        self.buffers: dict[TopicPartition, SinkBuffer] = {}
        self.durable_end: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}  # the group's offset, -1 for none
        self.storage_error: str | None = None
        self._storage_backoff = 1.0
        self._flush_lock = asyncio.Lock()  # the revoke listener flushes from another task
        self.failing = metrics.SINK_FAILING

    def add(
        self, tp: TopicPartition, first_offset: int, last_offset: int, events: list[Event],
        dead_letters: list[DeadLetter],
    ) -> None:  # fmt: skip
        """Buffer what records `first_offset`..`last_offset` of `tp` turned into."""
        buffer = self.buffers.setdefault(tp, SinkBuffer())
        buffer.dead_letters += dead_letters
        if buffer.first_offset is None:
            buffer.first_offset = first_offset
        buffer.last_offset = last_offset
        durable = self.durable_end.get(tp, -1)
        if durable < first_offset:
            buffer.events.extend(events)
        else:  # a replay of offsets already in Parquet
            buffer.events.extend(e for e in events if e.kafka_offset > durable)

    def at_position(self, tp: TopicPartition, position: int) -> None:
        """The consumer's position in `tp`: the offset to commit, unless committed already."""
        if position > self.committed.get(tp, -1):
            self.buffers.setdefault(tp, SinkBuffer()).next_offset = position

    def any_due(self) -> bool:
        return any(
            buf.due(self.flush_events, self.flush_seconds)
            for tp, buf in self.buffers.items() if tp in self.resumed
        )  # fmt: skip

    async def recover(self, tp: TopicPartition) -> int:
        """Finish `tp`'s interrupted Parquet writes; the last offset durable in Parquet."""
        self.durable_end[tp] = await asyncio.to_thread(self.writer.recover, tp.partition)
        return self.durable_end[tp]

    def forget(self, tp: TopicPartition) -> None:
        """`tp` was revoked: what it had not committed, its new owner reads again."""
        self.buffers.pop(tp, None)
        self.committed.pop(tp, None)

    async def retry_storage(self) -> None:
        """After a failed write: wait (1 s, doubling up to 30 s), then flush everything."""
        await asyncio.sleep(self._storage_backoff)
        self._storage_backoff = min(self._storage_backoff * 2, 30.0)
        await self.flush(set(self.buffers), force=True)

    async def flush(self, tps: set[TopicPartition], force: bool) -> None:
        """Make due buffers durable in Parquet, then commit each in its partition's transaction.

        Raises IngestDeliveryError when a batch was not delivered or a transactional producer
        cannot go on.
        """
        async with self._flush_lock:
            due = {
                tp: buf
                for tp, buf in self.buffers.items()
                if tp in tps and tp in self.resumed and buf.next_offset is not None
                and (force or buf.due(self.flush_events, self.flush_seconds))
            }  # fmt: skip
            if not due:
                return
            # Taken out before the first await: what is read meanwhile goes to new buffers,
            # and each offset's watermark state is the one of the moment it was read to.
            states: dict[TopicPartition, str] = {}
            for tp in due:
                del self.buffers[tp]
                states[tp] = encode_commit_state(self.max_seen(tp.partition))
            try:
                await self.settle()  # the batches of every offset about to be committed
                durable = [tp for tp, buf in due.items() if await self._write_parquet(tp, buf)]
                if self.storage_error is not None and len(durable) == len(due):
                    logger.warning("ingest: Parquet writes work again; reading resumes")
                    self.storage_error = None
                    self._storage_backoff = 1.0
                    self.failing.set(0)
                for tp in durable:
                    if await self._commit(tp, due[tp], states[tp]):
                        del due[tp]
            finally:
                for tp, buf in due.items():  # not committed: flushed again with what follows
                    if tp in self.resumed:
                        later = self.buffers.get(tp)
                        self.buffers[tp] = buf if later is None else buf.then(later)

    async def _commit(self, tp: TopicPartition, buf: SinkBuffer, state: str) -> bool:
        """Commit the buffer's dead letters and next offset with the watermark (ingest_commit)."""
        assert buf.next_offset is not None
        if not await self.commits.commit(tp, buf.next_offset, state, buf.dead_letters):
            return False  # aborted: the buffer goes back for the next flush to send again
        self.committed[tp] = buf.next_offset
        return True

    async def _write_parquet(self, tp: TopicPartition, buf: SinkBuffer) -> bool:
        """Store the buffer's events durably; False, and reading paused, when the disk refuses."""
        if not buf.events:
            return True
        first = buf.first_offset
        assert first is not None
        events, writer = buf.events, self.writer
        try:
            # The Arrow table is built in the thread too: the event loop (and with it the
            # window stage) keeps running meanwhile.
            await asyncio.to_thread(
                lambda: writer.write(tp.partition, first, buf.last_offset, events_table(events))
            )
        except StorageError as exc:
            self._storage_failed(exc)
            return False
        self.durable_end[tp] = buf.last_offset
        metrics.PARQUET_LAST_WRITE.set(round(time.time(), 3))
        buf.events = []
        return True

    def _storage_failed(self, exc: StorageError) -> None:
        """Report a failed Parquet write; reading pauses and nothing is committed until it works."""
        if self.storage_error is None:
            logger.error("ingest: %s; reading paused, no offsets committed, retrying", exc)
        else:
            logger.error("ingest: Parquet write still failing: %s", exc)
        self.storage_error = str(exc)
        self.failing.set(1)
