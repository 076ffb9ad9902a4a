"""Which consuming stages have input waiting on a partition but make no progress on it.

The rule, per (stage, partition): stalled when the log end is past the stage's position
(`highwater > position`, so there is input to handle) and the position has not moved for
`STALL_SECONDS`. Lag alone is not judged: a busy stage may trail and catch up, and a caught-up
(idle) partition is never stalled however quiet the shop. It generalises what
`agents/stall_watchdog` saw after kill -9 restarts (a fetch loop that stopped delivering one
partition while its records waited on the broker) and follows Burrow's evaluation rules (a
partition whose offset stands still while its lag is not zero is stalled). As Burrow learnt
(linkedin/Burrow#338), input arriving at a partition that was idle for hours must not fire at
once: the clock starts when the input is first seen, not at the last progress long ago.

Stages feed it with their consumer's positions and log ends; /health and /metrics read it.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from app.settings import get_settings


@dataclass(slots=True)
class _PartitionWatch:
    """What is known of one partition of one stage; `since` is on the detector's clock."""

    position: int
    highwater: int | None
    since: float  # when the position last moved, or input started waiting, or it caught up

    @property
    def waiting(self) -> bool:
        return self.highwater is not None and self.highwater > self.position


class StallDetector:
    """Tracks each stage's partitions and names those stalled for `stall_seconds` or more.

    Offsets are Kafka offsets: `position` is the next offset the stage will handle (aiokafka's
    `consumer.position(tp)` after the records were handled; it steps over transaction markers,
    which a last offset + 1 would not), `highwater` the offset the next record written will
    get (`consumer.highwater(tp)`, or `consumer.last_stable_offset(tp)` for a read_committed
    consumer). Times are seconds of `clock`, a monotonic clock by default. Calls are cheap
    (a dict look-up; `stalled()` is one pass over the partitions) and thread-safe.
    """

    def __init__(self, stall_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        if stall_seconds <= 0:
            msg = f"stall_seconds must be > 0, got {stall_seconds!r}"
            raise ValueError(msg)
        self.stall_seconds = stall_seconds
        self._clock = clock
        self._watches: dict[tuple[str, int], _PartitionWatch] = {}
        self._lock = threading.Lock()

    def progressed(self, stage: str, partition: int, position: int) -> None:
        """`stage` handled records of `partition`; its consumer now stands at `position`."""
        self._update(stage, partition, position, None)

    def observed(self, stage: str, partition: int, position: int, highwater: int | None) -> None:
        """A periodic look: `stage` stands at `position` and the log of `partition` ends at
        `highwater` (None while the consumer has not learnt it; the last one known stays)."""
        self._update(stage, partition, position, highwater)

    def forget(self, stage: str, partitions: Iterable[int]) -> None:
        """`stage` no longer owns `partitions` (revoked); a later assignment starts afresh."""
        with self._lock:
            for partition in partitions:
                self._watches.pop((stage, partition), None)

    def stalled(self) -> dict[str, list[int]]:
        """Stage -> its partitions (ascending) with input waiting and no progress for
        `stall_seconds`; stages with none are left out."""
        now = self._clock()
        found: dict[str, list[int]] = {}
        with self._lock:
            for (stage, partition), watch in self._watches.items():
                if watch.waiting and now - watch.since >= self.stall_seconds:
                    found.setdefault(stage, []).append(partition)
        return {stage: sorted(partitions) for stage, partitions in sorted(found.items())}

    def stages(self) -> set[str]:
        """Every stage that currently owns a watched partition."""
        with self._lock:
            return {stage for stage, _ in self._watches}

    def _update(self, stage: str, partition: int, position: int, highwater: int | None) -> None:
        now = self._clock()
        with self._lock:
            watch = self._watches.get((stage, partition))
            if watch is None:
                self._watches[stage, partition] = _PartitionWatch(position, highwater, now)
                return
            was_waiting = watch.waiting
            moved = position != watch.position
            watch.position = position
            if highwater is not None:
                watch.highwater = highwater
            # Progress, catching up, or input arriving at an idle partition restart the clock;
            # only input that keeps waiting at a standing position lets it run.
            if moved or not was_waiting or not watch.waiting:
                watch.since = now


def stall_problems(stalled: dict[str, list[int]], stall_seconds: float) -> list[str]:
    """One /health problem line per stalled stage, naming its partitions and the threshold."""
    return [
        f"{stage} stalled: partitions {partitions} have input and made no progress "
        f"for {stall_seconds:g} s"
        for stage, partitions in stalled.items()
    ]


@functools.cache
def get_stall_detector() -> StallDetector:
    """The process-wide detector, built from settings on first use."""
    return StallDetector(get_settings().stall_seconds)
