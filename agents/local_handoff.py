"""One hop instead of two: ingest hands batches to a window partition of its own process.

Without it every validated event crosses Kafka twice: once as input, once on
PRODUCT_EVENTS_TOPIC from the ingest stage to the window stage. When the window stage of the
same process owns the target worker partition (with input keyed by product and the colocated
assignor, `app.kafka.colocation`, that is every batch), ingest offers the batch to that
partition's `Inbox` instead; the window stage applies it and resolves its future once the
checkpoint that holds it has committed. Ingest commits its input offsets only after that, as
it does after a Kafka send's acknowledgement, so the guarantees stay those of the Kafka path:

- **Never lost.** An inbox closes when its partition is revoked, reset after a failed
  checkpoint, or stopped; every batch it had not committed fails (`HandoffLost`), and ingest
  sends those batches through Kafka, in their order, before anything newer for that target.
- **Never counted twice.** Both paths carry the same rows with the same `seq`, and the window
  state skips a row whose `seq` it has seen from that source
  (`app.windowing.partition_windows`). That rule needs each source's rows to arrive in `seq`
  order, whichever the path.
- **Order across the two paths.** A batch a source sent through Kafka may still be unread
  when the source starts handing over in memory. So the first handoff of a source to an
  inbox is preceded by a barrier: an empty batch carrying the inbox's token, sent through
  Kafka behind everything that source sent before. The inbox holds the source's handoffs
  until the window stage has read that barrier, then applies them in order. A new inbox (a
  new owner, a recovery) has a new token, so a stale barrier releases nothing. So does a
  source partition that ingest gives up and takes back: another process may have sent its
  rows through Kafka meanwhile, so each assignment of a source is a new stream (an epoch)
  that needs its own barrier.

An inbox holds at most MAX_QUEUED_ROWS rows waiting; ingest waits for room, the way a full
producer buffer makes it wait.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from dataclasses import dataclass, field

from app.product_batches import ProductBatch
from app.windowing.spec import NO_WATERMARK

MAX_QUEUED_ROWS = 200_000
Stream = tuple[int, int]  # (source partition, how many times this ingest took it)


class HandoffLost(Exception):
    """The inbox closed before a checkpoint held the batch: send it through Kafka instead."""


@dataclass(slots=True)
class Handoff:
    """A batch offered to an inbox; `done` resolves when a committed checkpoint holds it."""

    batch: ProductBatch
    done: asyncio.Future[None]


@dataclass
class Inbox:
    """Batches handed to one owned worker partition by the ingest stage of its process."""

    partition: int
    wake: asyncio.Event  # the window stage's: set when a handoff is ready to apply
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    closed: bool = False
    # Streams, (source partition, ingest's epoch of it), whose barrier was sent / was read.
    barriers_sent: set[Stream] = field(default_factory=set)
    released: set[Stream] = field(default_factory=set)
    waiting: dict[Stream, deque[Handoff]] = field(default_factory=dict)
    applied: list[Handoff] = field(default_factory=list)  # in state, not yet committed
    queued_rows: int = 0
    behind: bool = False  # the latest handoff came from an ingest poll with more input waiting
    _room: asyncio.Event = field(default_factory=asyncio.Event)

    def needs_barrier(self, stream: Stream) -> bool:
        return stream not in self.barriers_sent

    def barrier_sent(self, stream: Stream) -> None:
        self.barriers_sent.add(stream)

    def barrier(self, stream: Stream, source_partitions: int) -> ProductBatch:
        """The barrier batch ingest sends through Kafka before a stream's first handoff. It
        carries no watermark: the batch behind it may hold rows of windows that the
        watermark after it would close."""
        source, epoch = stream
        token = f"{self.token}/{epoch}"
        return ProductBatch(source, source_partitions, NO_WATERMARK, [], barrier=token)

    def offer(self, batch: ProductBatch, behind: bool = False, epoch: int = 0) -> Handoff:
        """Queue a batch (applied once its source's barrier is read); fails at once if closed.
        `behind`: the poll it came from left input waiting (a backlog: the window stage may
        fold several polls into one checkpoint). `epoch`: ingest's epoch of the source."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        handoff = Handoff(batch, done)
        if self.closed:
            done.set_exception(HandoffLost(f"worker partition {self.partition} is not here"))
            done.exception()  # see close()
            return handoff
        stream = (batch.source_partition, epoch)
        self.waiting.setdefault(stream, deque()).append(handoff)
        self.queued_rows += len(batch.rows)
        self.behind = behind
        if stream in self.released:
            self.wake.set()
        return handoff

    def full(self) -> bool:
        return self.queued_rows >= MAX_QUEUED_ROWS and not self.closed

    async def room(self) -> None:
        """Until the queue has room again or the inbox closed."""
        while self.full():
            self._room.clear()
            await self._room.wait()

    def barrier_read(self, source: int, token: str | None) -> None:
        """The window stage read a barrier of `source`: if it is this inbox's, the handoffs
        of its stream may now be applied."""
        mine, _, epoch = (token or "").rpartition("/")
        if mine == self.token and epoch.isdigit():
            self.released.add((source, int(epoch)))

    def has_ready(self) -> bool:
        return any(self.waiting.get(stream) for stream in self.released)

    def take_ready(self) -> list[ProductBatch]:
        """The queued batches of released sources, each source's in order; they count as
        applied from now on (resolved by `committed`, failed by `close`)."""
        out: list[ProductBatch] = []
        for stream in self.released:
            queue = self.waiting.get(stream)
            while queue:
                handoff = queue.popleft()
                self.applied.append(handoff)
                self.queued_rows -= len(handoff.batch.rows)
                out.append(handoff.batch)
        if out:
            self._room.set()
        return out

    def committed(self) -> None:
        """A checkpoint holding every applied batch committed."""
        for handoff in self.applied:
            if not handoff.done.done():
                handoff.done.set_result(None)
        self.applied.clear()

    def close(self) -> None:
        """The partition leaves (revoked, reset, stopped): fail what no commit holds."""
        if self.closed:
            return
        self.closed = True
        lost = HandoffLost(f"worker partition {self.partition} was given up before a commit")
        for handoff in [*self.applied, *(h for q in self.waiting.values() for h in q)]:
            if not handoff.done.done():
                handoff.done.set_exception(lost)
                # Read by ingest (Handoffs.lost) unless the process is stopping: not an
                # error to log then.
                handoff.done.exception()
        self.applied.clear()
        self.waiting.clear()
        self.queued_rows = 0
        self._room.set()


class Handoffs:
    """The ingest side: what each target partition was handed, oldest first, and the inbox
    each target is being handed to.

    A target keeps its inbox until that inbox closes, even if the window stage stops
    offering it meanwhile (a rebalance under way): a newer batch sent through Kafka while
    older ones wait in an open inbox could be counted first, and the older ones then skipped.
    """

    def __init__(self) -> None:
        self.outstanding: dict[int, deque[Handoff]] = {}
        self.current: dict[int, Inbox] = {}
        self.epochs: dict[int, int] = {}  # source partition -> how many times it was taken

    def source_assigned(self, source: int) -> None:
        """Ingest (re)took `source`: while it was elsewhere its rows may have gone through
        Kafka, so its next handoff to any inbox waits for a new barrier."""
        self.epochs[source] = self.epochs.get(source, 0) + 1

    def inbox(self, target: int, offered: Inbox | None) -> Inbox | None:
        """The inbox to hand `target`'s next batch to: the current one while it is open,
        else `offered` (the window stage's inbox for the target now, or None: use Kafka)."""
        current = self.current.get(target)
        if current is not None and not current.closed:
            return current
        if offered is None:
            self.current.pop(target, None)
        else:
            self.current[target] = offered
        return offered

    def plan(
        self, target: int, batch: ProductBatch, offered: Inbox | None, behind: bool = False
    ) -> list[ProductBatch]:
        """Route one batch for `target`; return what to send through Kafka now, in order.

        First the lost handoffs of `target` (in their order), then either the batch itself
        (no inbox), or nothing more when it was handed over, except the source's barrier
        before its first handoff to an inbox. `offered`: the window stage's inbox for the
        target now, or None. The caller must send the result before routing another batch
        for the target. `behind`: see `Inbox.offer`.
        """
        sends = self.lost(target)
        inbox = self.inbox(target, offered)
        if inbox is None:
            sends.append(batch)
            return sends
        epoch = self.epochs.get(batch.source_partition, 0)
        stream = (batch.source_partition, epoch)
        if inbox.needs_barrier(stream):
            inbox.barrier_sent(stream)
            sends.append(inbox.barrier(stream, batch.source_partitions))
        self.outstanding.setdefault(target, deque()).append(inbox.offer(batch, behind, epoch))
        return sends

    def lost(self, target: int) -> list[ProductBatch]:
        """Drop the committed handoffs of `target`; return (and drop) the lost ones, in order.

        An inbox fails everything it has not committed at once, so after the first lost
        handoff every later one is lost too, and none is still pending.
        """
        queue = self.outstanding.get(target)
        lost: list[ProductBatch] = []
        while queue and queue[0].done.done():
            handoff = queue.popleft()
            if handoff.done.exception() is not None:
                lost.append(handoff.batch)
        return lost

    def pending(self) -> list[asyncio.Future[None]]:
        return [h.done for queue in self.outstanding.values() for h in queue]

    def targets(self) -> list[int]:
        return list(self.outstanding)
