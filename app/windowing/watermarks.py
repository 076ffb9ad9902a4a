"""Source partitions' watermarks: where they are stored and when a silent one stops counting."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import orjson

from app.windowing.slices import SEP
from app.windowing.spec import NO_WATERMARK

# Each source partition's watermark, stored beside the slices so that a restarted worker
# serves and expires windows as before without waiting for every source to report again.
# No product key starts with SEP (product ids are never empty).
WATERMARKS_KEY = f"{SEP}source-watermarks".encode()
SOURCE_IDLE_S = 600.0


class SourceMark(NamedTuple):
    """One source partition's watermark as a worker partition last heard it."""

    watermark_ms: int  # event time, ms since the epoch
    heard_at: float  # the partition's clock (s) at that source's last batch here


class SourceWatermarks:
    """The watermarks of the source partitions that feed one worker partition, and their
    durable record (under WATERMARKS_KEY, with the expiry horizon) as docs/design.md
    ("Window semantics") describes."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.created = clock()
        self.sources = 1  # how many source partitions there are, as far as known
        self.marks: dict[int, SourceMark] = {}
        self._stored: dict[int, int] = {}  # source -> watermark in the stored record
        self._expired_stored: int | None = None  # the expiry horizon in the stored record

    def restore(self, raw: bytes | None) -> int | None:
        """Load the stored record (None: there is none); return the expiry horizon (ms) it
        holds, None if nothing had expired. Raises orjson.JSONDecodeError, KeyError or
        TypeError for a value that is not such a record."""
        if raw is None:
            return None
        stored = orjson.loads(raw)
        now = self.clock()
        for source, watermark in stored["marks"]:
            self.marks[source] = SourceMark(watermark, now)
            self._stored[source] = watermark
        self.sources = max(self.sources, stored["sources"])
        self._expired_stored = stored.get("expired")
        return self._expired_stored

    def advance(self, source: int, watermark_ms: int, sources: int) -> None:
        """A batch of `source` (of `sources` source partitions) carried `watermark_ms`."""
        previous = self.marks.get(source)
        # A replayed batch carries an older watermark: expiry never goes back.
        watermark = watermark_ms if previous is None else max(previous.watermark_ms, watermark_ms)
        self.marks[source] = SourceMark(watermark, self.clock())
        self.sources = max(self.sources, sources)

    def lowest(self) -> int:
        """The lowest watermark (ms) of the sources, NO_WATERMARK while one not heard from
        yet may still report or none was heard recently.

        A source partition that lags may still add to windows the others have closed, so
        state expires only behind the slowest one, including sources not heard from yet. A
        source silent for SOURCE_IDLE_S stops holding expiry back (memory stays bounded).
        """
        now = self.clock()
        marks = []
        for source in range(self.sources):
            entry = self.marks.get(source)
            if entry is None:
                if now - self.created < SOURCE_IDLE_S:
                    return NO_WATERMARK
            elif now - entry.heard_at < SOURCE_IDLE_S:
                marks.append(entry.watermark_ms)
        return min(marks) if marks else NO_WATERMARK

    def changed_record(self, expired_before: int | None) -> bytes | None:
        """The record to store if the watermarks or the expiry horizon (ms) changed since the
        last one returned (taken as stored), else None."""
        marks = {source: mark.watermark_ms for source, mark in self.marks.items()}
        if marks == self._stored and expired_before == self._expired_stored:
            return None
        record = {"marks": list(marks.items()), "sources": self.sources, "expired": expired_before}
        self._stored = marks
        self._expired_stored = expired_before
        return orjson.dumps(record)
