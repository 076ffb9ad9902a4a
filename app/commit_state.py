"""The ingest stage's state in its offset commits: the newest event time read up to that offset.

Kafka stores a short text with each committed offset. The ingest stage puts the newest event
time of the partition there (JSON `{"max_seen_ms": <epoch ms or null>}`), so a restarted
worker resumes with the watermark it had at that offset, and the pipeline probe can tell how
far in event time each partition is without reading it.
"""

from __future__ import annotations

import orjson


def encode_commit_state(max_seen_ms: int | None) -> str:
    """The metadata text for a commit; `max_seen_ms` None means no event read yet."""
    return orjson.dumps({"max_seen_ms": max_seen_ms}).decode()


def decode_commit_state(metadata: str | None) -> int | None:
    """The newest event time (epoch ms) stored with a commit; None when absent or unreadable
    (an offset committed by another tool, e.g. kafka-consumer-groups --reset-offsets)."""
    if not metadata:
        return None
    try:
        seen = orjson.loads(metadata).get("max_seen_ms")
        return None if seen is None else int(seen)
    except (ValueError, TypeError, AttributeError):
        return None
