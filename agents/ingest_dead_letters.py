"""Dead letters: a rejected input message (or element of one) as it goes to DLQ_TOPIC.

A dead letter keeps the rejected bytes, key and headers, and adds headers saying why it was
rejected and where it was read (`x-dlq-*`, read back by `tables.dead_letter_feed`). It is
sent with its source partition's offset commit, in one transaction (agents.ingest_commit).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiokafka.structs import TopicPartition

from app.rejections import Rejected

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetter:
    """A rejected input message (or element of one) as it goes to DLQ_TOPIC."""

    reason: str
    value: bytes
    key: bytes | None
    headers: list[tuple[str, bytes]]


class DeadLetters:
    """Builds the dead letters of rejected records; logs the first rejection of each reason."""

    def __init__(self) -> None:
        self._logged_reasons: set[str] = set()

    def letter(self, tp: TopicPartition, record: object, rejected: Rejected) -> DeadLetter:
        """The dead letter of `record` (a consumed Kafka record read from `tp`), or of one
        element of it (`rejected.index`), rejected for `rejected.reason`."""
        headers = list(getattr(record, "headers", ()) or ())
        headers += [
            ("x-dlq-reason", rejected.reason.encode()),
            ("x-dlq-detail", rejected.detail[:500].encode()),
            ("x-dlq-source-topic", tp.topic.encode()),
            ("x-dlq-source-partition", str(tp.partition).encode()),
            ("x-dlq-source-offset", str(record.offset).encode()),  # type: ignore[attr-defined]
        ]
        if rejected.index is not None:
            headers.append(("x-dlq-element-index", str(rejected.index).encode()))
        if rejected.reason not in self._logged_reasons:
            self._logged_reasons.add(rejected.reason)
            logger.warning(
                "dead-lettered %s:%s@%s (%s: %s); further %s rejections are counted, not logged",
                tp.topic, tp.partition, record.offset, rejected.reason,  # type: ignore[attr-defined]
                rejected.detail, rejected.reason,
            )  # fmt: skip
        return DeadLetter(rejected.reason, rejected.raw, getattr(record, "key", None), headers)
