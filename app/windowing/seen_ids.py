"""The supplied event ids a partition has counted, kept durably so a copy is counted once."""

from __future__ import annotations

import orjson

from app.windowing.slices import SEP, KeyValueStore

# Keys of the supplied event ids seen, in the same store: `<SEP>ids<SEP><slice start><SEP><n>`.
ID_KEY_PREFIX = f"{SEP}ids{SEP}".encode()
MAX_ID_VALUE_BYTES = 256 << 10  # one changelog value, well under the broker's ~1 MB limit


def id_key(start_ms: int, chunk: int) -> bytes:
    """The store key of chunk number `chunk` of the ids first counted in slice `start_ms`."""
    return ID_KEY_PREFIX + f"{start_ms}{SEP}{chunk}".encode()


def encode_ids(ids: list[str], max_bytes: int = MAX_ID_VALUE_BYTES) -> list[bytes]:
    """`ids` as JSON arrays of at most `max_bytes` each (a single id always makes one)."""
    raw = orjson.dumps(ids)
    if len(raw) <= max_bytes or len(ids) == 1:
        # A copy: orjson's result keeps its whole output buffer (several times larger here)
        # for as long as the store holds the value.
        return [bytes(memoryview(raw))]
    half = len(ids) // 2
    return encode_ids(ids[:half], max_bytes) + encode_ids(ids[half:], max_bytes)


class SeenEventIds:
    """The supplied event ids a partition has counted, each with the slice start it was
    first counted in, which is when it expires.

    Durable as append-only chunks in the slices store: each flush writes the ids new since
    the last one, one value per slice start (`id_key`), so a checkpoint costs one changelog
    record per slice start touched, not one per event nor a rewrite of what is stored.
    """

    def __init__(self, store: KeyValueStore) -> None:
        self.store = store
        self.first_start: dict[str, int] = {}  # event id -> slice start it was counted in
        self._new: dict[int, list[str]] = {}  # slice start -> ids not flushed yet
        self._chunks: dict[int, int] = {}  # slice start -> chunks stored

    def restore(self, key: bytes) -> None:
        """Load one stored chunk (a key under ID_KEY_PREFIX) into the index."""
        start_text, _, chunk = key[len(ID_KEY_PREFIX) :].decode().partition(SEP)
        start = int(start_text)
        self._chunks[start] = max(self._chunks.get(start, 0), int(chunk) + 1)
        raw = self.store.get(key)
        if raw is not None:
            first = self.first_start
            for event_id in orjson.loads(raw):
                first.setdefault(event_id, start)

    def unflushed(self, start: int) -> list[str]:
        """The list of ids first counted in slice `start` since the last flush: the caller
        appends each id it also enters in `first_start`."""
        new = self._new.get(start)
        if new is None:
            new = self._new[start] = []
        return new

    def flush(self) -> int:
        """Write the ids added since the last flush; return how many keys were written."""
        writes = 0
        for start, ids in self._new.items():
            if not ids:
                continue
            chunk = self._chunks.get(start, 0)
            for value in encode_ids(ids):
                self.store[id_key(start, chunk)] = value
                chunk += 1
                writes += 1
            self._chunks[start] = chunk
        self._new.clear()
        return writes

    def expire(self, expired_before: int) -> int:
        """Forget the ids first counted in slices before `expired_before`; return deletes."""
        deletes = 0
        first = self.first_start
        for start in [s for s in self._chunks if s < expired_before]:
            for chunk in range(self._chunks.pop(start)):
                key = id_key(start, chunk)
                raw = self.store.get(key)
                if raw is None:
                    continue
                for event_id in orjson.loads(raw):
                    if first.get(event_id) == start:
                        del first[event_id]
                del self.store[key]
                deletes += 1
        return deletes
