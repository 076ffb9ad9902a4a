"""The window stage's durable state: in-memory key-value stores backed by a compacted changelog.

Each worker partition's state (slices and sent-alert markers, see `app.windowing`; open
incidents, see `agents.incidents`) lives in three dicts. Every change is also a record on the
changelog topic's partition of the same number (key = store prefix + key, value = bytes, or a
tombstone for a delete), written in the same Kafka transaction as the alerts it decided and
the input offsets it consumed (`agents.window_checkpoint`). Recovery reads that partition to
its end with `read_committed`, so a restarted or new owner sees exactly the state of the last
committed checkpoint: never an older value over a newer one, never a change whose input
offsets were not committed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

logger = logging.getLogger(__name__)

SLICES = b"s"
ALERTED = b"a"
INCIDENTS = b"i"
STORE_PREFIXES = (SLICES, ALERTED, INCIDENTS)
RECOVERY_POLL_MS = 1000


class ChangelogStore:
    """A dict of bytes -> bytes that remembers which keys changed since `take_changes()`.

    Shapes: keys and values are bytes; a deleted key is reported with value None (a tombstone).
    """

    def __init__(self, prefix: bytes, data: dict[bytes, bytes] | None = None) -> None:
        self.prefix = prefix
        self.data: dict[bytes, bytes] = data if data is not None else {}
        self._changed: dict[bytes, bytes | None] = {}

    def get(self, key: bytes, /) -> bytes | None:
        return self.data.get(key)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        # A copy of exact size: orjson's bytes keep their whole output buffer (about 4 KB),
        # which for a few hundred thousand slices would be gigabytes.
        value = bytes(memoryview(value))
        self.data[key] = value
        self._changed[key] = value

    def __delitem__(self, key: bytes) -> None:
        self.data.pop(key, None)
        self._changed[key] = None

    def keys(self) -> Iterator[bytes]:
        return iter(list(self.data))

    def take_changes(self) -> list[tuple[bytes, bytes | None]]:
        """Changelog records (prefixed key, value or None) of every change since the last call."""
        changed, self._changed = self._changed, {}
        return [(self.prefix + key, value) for key, value in changed.items()]


async def read_changelog(
    consumer: AIOKafkaConsumer, tp: TopicPartition
) -> dict[bytes, dict[bytes, bytes]]:
    """Rebuild the stores of one partition from its changelog: store prefix -> its dict.

    `consumer` must read `read_committed` and belong to no group; it is assigned `tp` alone.
    Reads up to the last stable offset, so the caller must first have fenced any producer
    that may hold an open transaction on `tp` (its `init_transactions` does).
    """
    consumer.assign([tp])
    # Offsets asked for, then a plain seek: seek_to_beginning waited on the fetch in flight
    # (half a second per partition, for every partition a worker takes over).
    consumer.seek(tp, (await consumer.beginning_offsets([tp]))[tp])
    end = (await consumer.end_offsets([tp]))[tp]
    stores: dict[bytes, dict[bytes, bytes]] = {prefix: {} for prefix in STORE_PREFIXES}
    began, records = time.monotonic(), 0
    while await consumer.position(tp) < end:
        polled = await consumer.getmany(tp, timeout_ms=RECOVERY_POLL_MS, max_records=10_000)
        for record in polled.get(tp, ()):
            key = record.key
            if not key:
                continue
            store = stores.get(key[:1])
            if store is None:
                logger.warning("changelog %s@%s: unknown key %r skipped", tp, record.offset, key)
                continue
            if record.value is None:
                store.pop(key[1:], None)
            else:
                store[key[1:]] = record.value
            records += 1
    consumer.pause(tp)  # read: no more fetches for it until the next assign
    logger.info(
        "windows: partition %s recovered from %s changelog records (%s slices, %s alert "
        "markers, %s open incidents) in %.2f s",
        tp.partition, records, len(stores[SLICES]), len(stores[ALERTED]),
        len(stores[INCIDENTS]), time.monotonic() - began,
    )  # fmt: skip
    return stores
