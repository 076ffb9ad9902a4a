"""JSON Lines event logs read line by line into events, with a stable identity per line.

Accepts what the original system's simulator appended (one event per line, five fields,
ISO times ending in +00:00, no event_id) and our simulator's `--output` (one event per
line, with an event_id). Each line is validated exactly as the worker validates a Kafka
message (app.events.EventParser), so a line the worker would dead-letter is rejected here
with the same reason code.

Identity, so that importing a file again adds nothing:

- the event's own `event_id` when it has one (it is the event's identity everywhere);
- otherwise `<file name>:<line>:<crc32 of the line>` (a JSON array on one line adds
  `-<index>`): stable across runs and machines, and two different files that happen to
  share a name do not collide.

Imported rows have no Kafka position. `kafka_partition` is negative, -1 - (a 31-bit hash
of the file name), and `kafka_offset` is the line number, so each file replays as a source
of its own, in line order, wherever offsets order events (the backtest's watermarks).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app.events import MAX_ID_LENGTH, Event, EventParser

_TOPIC = "import"  # the parser names id-less events after it; those names are replaced


@dataclass(frozen=True, slots=True)
class RejectedLine:
    """A line that is not a valid event: where, why (the worker's DLQ reason code), what."""

    file: str
    line: int
    reason: str
    detail: str
    text: str

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "reason": self.reason,
                "detail": self.detail, "text": self.text}  # fmt: skip


@dataclass(frozen=True, slots=True)
class LineChunk:
    """The events and rejects of consecutive lines of one file, and the bytes they took."""

    events: list[Event]
    rejected: list[RejectedLine]
    lines: int
    blank: int
    bytes_read: int


def source_partition(name: str) -> int:
    """The negative `kafka_partition` of rows imported from a file called `name`."""
    return -1 - (zlib.crc32(name.encode()) & 0x7FFFFFFF)


def _stable_id(name: str, number: int, line: bytes) -> str:
    stable = f"{name}:{number}:{zlib.crc32(line):08x}"
    if len(stable) > MAX_ID_LENGTH:  # an absurd file name: its hash instead
        stable = f"{zlib.crc32(name.encode()) & 0x7FFFFFFF:08x}:{number}:{zlib.crc32(line):08x}"
    return stable


def read_chunks(path: Path, parser: EventParser, chunk_lines: int = 100_000) -> Iterator[LineChunk]:
    """The file's events and rejects, `chunk_lines` lines at a time. Raises OSError."""
    name = path.name
    partition = source_partition(name)
    position_prefix = f"{_TOPIC}-{partition}-"
    now_ms = int(time.time() * 1000)
    events: list[Event] = []
    rejected: list[RejectedLine] = []
    lines = blank = size = 0
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            lines += 1
            size += len(raw)
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                blank += 1
            else:
                valid, bad = parser.parse_message(line, _TOPIC, partition, number, now_ms)
                for event in valid:
                    if event.event_id.startswith(position_prefix):
                        suffix = event.event_id[len(f"{position_prefix}{number}") :]
                        event = event._replace(event_id=_stable_id(name, number, line) + suffix)
                    events.append(event)
                if bad:
                    text = line.decode("utf-8", "replace")[:2000]
                    rejected += [RejectedLine(name, number, r.reason, r.detail, text) for r in bad]
            if lines == chunk_lines:
                yield LineChunk(events, rejected, lines, blank, size)
                events, rejected, lines, blank, size = [], [], 0, 0, 0
    if lines:
        yield LineChunk(events, rejected, lines, blank, size)
