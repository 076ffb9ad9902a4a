"""From raw input records to validated events, dead letters and per-product-partition batches.

Pure logic, no I/O: the ingest service feeds it polled records and sends what it returns.
The watermark of each source partition (max event time seen - ALLOWED_LATENESS) is applied
here, in consumption order, so replaying the same offsets from the same starting watermark
reproduces the same decisions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.events import Event, EventParser, Rejected
from app.product_batches import ProductBatch, Row, event_seq, product_partition
from app.windows import NO_WATERMARK, WindowSpec


class InputRecord(Protocol):
    """What the router needs of a consumed Kafka record (aiokafka's ConsumerRecord has it)."""

    offset: int
    value: bytes | None


@dataclass
class RoutedRecords:
    """Everything one poll of one source partition turned into."""

    batches: dict[int, ProductBatch] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    rejected: list[tuple[Any, Rejected]] = field(default_factory=list)
    late: int = 0


class IngestRouter:
    """Validates records and assigns each valid event the windows it still counts toward."""

    def __init__(
        self, parser: EventParser, spec: WindowSpec, lateness_ms: int, partitions: int
    ) -> None:
        self.parser = parser
        self.spec = spec
        self.lateness_ms = lateness_ms
        self.partitions = partitions
        self.max_seen: dict[int, int] = {}
        self.source_partitions = 1  # of the input topic; set once the consumer knows it
        self._partition_of: dict[str, int] = {}

    def watermark(self, source_partition: int) -> int:
        seen = self.max_seen.get(source_partition)
        return NO_WATERMARK if seen is None else seen - self.lateness_ms

    def route(
        self, topic: str, source_partition: int, records: Iterable[InputRecord], now_ms: int
    ) -> RoutedRecords:
        out = RoutedRecords()
        rows: dict[int, list[Row]] = {}
        max_seen = self.max_seen.get(source_partition)
        spec, lateness = self.spec, self.lateness_ms
        partition_of = self._partition_of
        for record in records:
            events, rejected = self.parser.parse_message(
                record.value, topic, source_partition, record.offset, now_ms
            )
            out.rejected.extend((record, r) for r in rejected)
            for index, event in enumerate(events):
                out.events.append(event)
                t = event.event_time_ms
                if max_seen is None or t > max_seen:
                    max_seen = t
                depth = spec.open_depth(t, max_seen - lateness)
                if depth < 0:
                    out.late += 1
                    continue
                product = event.product_id
                target = partition_of.get(product)
                if target is None:
                    target = partition_of[product] = product_partition(product, self.partitions)
                row = [product, event.type_index, t, event_seq(record.offset, index), depth]
                rows.setdefault(target, []).append(row)
        if max_seen is not None:
            self.max_seen[source_partition] = max_seen
        watermark = self.watermark(source_partition)
        for target, target_rows in rows.items():
            out.batches[target] = ProductBatch(
                source_partition, self.source_partitions, watermark, target_rows
            )
        return out
