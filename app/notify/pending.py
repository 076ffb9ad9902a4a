"""Records read from INCIDENTS_TOPIC and not yet committed: who still owes each, and how far
the consumer may commit.

Per partition, a record is owed by the channels that have not yet delivered (or skipped) it;
the committable offset is the lowest offset still owed, or, with nothing owed, the consumer's
position (which also steps over transaction markers, as a last offset + 1 would not).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable


class InFlight:
    """Bookkeeping only; offsets are Kafka offsets, partitions any hashable key."""

    def __init__(self) -> None:
        self._owed: dict[Hashable, dict[int, set[str]]] = {}
        self._position: dict[Hashable, int] = {}

    def admit(self, partition: Hashable, offset: int, channels: Iterable[str]) -> None:
        """A record read at `offset`, owed by `channels` (none: nothing to deliver)."""
        owing = set(channels)
        if owing:
            self._owed.setdefault(partition, {})[offset] = owing

    def settle(self, partition: Hashable, offset: int, channel: str) -> None:
        """`channel` is done with the record (delivered, already delivered, or rejected)."""
        owed = self._owed.get(partition, {})
        owing = owed.get(offset)
        if owing is not None:
            owing.discard(channel)
            if not owing:
                del owed[offset]

    def moved(self, partition: Hashable, position: int) -> None:
        """The consumer's position on `partition`, after the records it returned."""
        self._position[partition] = position

    def committable(self, partition: Hashable) -> int | None:
        """The offset to commit: every record before it is settled (None: nothing known)."""
        owed = self._owed.get(partition)
        if owed:
            return min(owed)
        return self._position.get(partition)

    def owed(self) -> int:
        """Records some channel still owes, over all partitions."""
        return sum(len(owed) for owed in self._owed.values())

    def forget(self, partitions: Iterable[Hashable]) -> None:
        """The partitions are no longer ours (revoked): their new owner reads them again."""
        for partition in partitions:
            self._owed.pop(partition, None)
            self._position.pop(partition, None)
