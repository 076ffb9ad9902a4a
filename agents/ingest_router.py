"""From raw input records to validated events, dead letters and per-product-partition batches.

Pure logic, no I/O: the ingest service feeds it polled records and sends what it returns.
The late-event rule (app.windowing.lateness) is applied here, in consumption order, with each
source partition's watermark. Replaying the same offsets from
the same starting watermark reproduces the same decisions, except around events that were
stamped ahead of the clock when first processed: on replay the clock may have caught up.

A row carries the event's id only when the producer supplied one: the parser names an event
without an id after its Kafka position (`<topic>-<partition>-<offset>[-<index>]`), which no
other record can repeat, so the window stage need not remember it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.events import TYPE_INDEX, Event, EventParser
from app.product_batches import SEQ_INDEX_BITS, ProductBatch, Row, product_partition
from app.rejections import Rejected
from app.windowing.lateness import counted_depth, source_watermark
from app.windowing.spec import NO_WATERMARK, WindowSpec


class InputRecord(Protocol):
    """What the router needs of a consumed Kafka record (aiokafka's ConsumerRecord has it)."""

    offset: int
    value: bytes | None


WATERMARK_EVERY_MS = 1000  # how often a source tells a worker partition it sent nothing to


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
        self._told: dict[tuple[int, int], int] = {}  # (source, target) -> when, clock ms

    def watermark(self, source_partition: int, now_ms: int) -> int:
        """Event time behind which windows close: never past what the clock supports."""
        return source_watermark(self.max_seen.get(source_partition), now_ms, self.lateness_ms)

    def route(
        self, topic: str, source_partition: int, records: Iterable[InputRecord], now_ms: int
    ) -> RoutedRecords:
        out = RoutedRecords()
        rows: dict[int, list[Row]] = {}
        max_seen = self.max_seen.get(source_partition)
        watermark = self.watermark(source_partition, now_ms)
        spec, lateness = self.spec, self.lateness_ms
        step = spec.step_ms
        full_depth = spec.per_event - 1
        partition_of = self._partition_of
        parse = self.parser.parse_message
        events_out, rejected_out = out.events, out.rejected
        position_prefix = f"{topic}-{source_partition}-"
        for record in records:
            offset = record.offset
            position_id = f"{position_prefix}{offset}"
            events, rejected = parse(record.value, topic, source_partition, offset, now_ms)
            if rejected:
                rejected_out.extend((record, r) for r in rejected)
            index = 0
            for event in events:
                events_out.append(event)
                t = event.event_time_ms
                if max_seen is None or t > max_seen:
                    max_seen = t
                    watermark = source_watermark(t, now_ms, lateness)
                newest = t - t % step
                # Fast path: the oldest window holding t ends at or after the watermark,
                # so every window holding t is open.
                if newest + step >= watermark:
                    depth = full_depth
                else:
                    open_depth = counted_depth(spec, t, watermark)
                    if open_depth is None:
                        out.late += 1
                        index += 1
                        continue
                    depth = open_depth
                product = event.product_id
                target = partition_of.get(product)
                if target is None:
                    target = partition_of[product] = product_partition(product, self.partitions)
                seq = (offset << SEQ_INDEX_BITS) | index
                row = [product, TYPE_INDEX[event.event_type], t, seq, depth]
                eid = event.event_id
                if not eid.startswith(position_id) or not _is_position_id(eid, position_id):
                    row.append(eid)
                index += 1
                target_rows = rows.get(target)
                if target_rows is None:
                    rows[target] = [row]
                else:
                    target_rows.append(row)
        if max_seen is not None:
            self.max_seen[source_partition] = max_seen
        for target, target_rows in rows.items():
            out.batches[target] = ProductBatch(
                source_partition, self.source_partitions, watermark, target_rows
            )
        self._tell_watermark(out, source_partition, watermark, now_ms)
        return out

    def _tell_watermark(self, out: RoutedRecords, source: int, watermark: int, now_ms: int) -> None:
        """Add an empty batch for each worker partition this poll sent no rows to and that has
        not heard this source's watermark for WATERMARK_EVERY_MS: with input keyed by product,
        a worker partition gets rows from one source partition only, and would otherwise wait
        SOURCE_IDLE_S for the others before it knows a watermark (closing windows, resolving
        incidents)."""
        if watermark == NO_WATERMARK:
            return
        for target in range(self.partitions):
            if target in out.batches:
                self._told[(source, target)] = now_ms
            elif now_ms - self._told.get((source, target), -WATERMARK_EVERY_MS) >= (
                WATERMARK_EVERY_MS
            ):
                self._told[(source, target)] = now_ms
                out.batches[target] = ProductBatch(source, self.source_partitions, watermark, [])


def _is_position_id(event_id: str, position_id: str) -> bool:
    """Whether `event_id` is the name the parser gives an id-less event at this position:
    `position_id` itself, or it followed by `-<index in the message>`."""
    rest = event_id[len(position_id) :]
    return not rest or (rest[0] == "-" and rest[1:].isdigit())
