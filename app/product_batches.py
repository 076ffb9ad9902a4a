"""The worker's internal wire format: many validated events of one product partition per message.

The ingest stage reads the input topic, validates, and regroups events by product partition
into one Kafka message per (source partition, product partition, poll). Faust then pays its
per-message cost once per few hundred events instead of once per event.

Each row is `[product_id, type_index, event_time_ms, seq, depth]` where `seq` orders events of
one source partition (offset << 20 | index in a batched message) and `depth` says how many
windows the event still counts toward (see `app.windowing.spec.WindowSpec.open_depth`). A sixth
element, `event_id`, follows only when the producer supplied one (the window stage counts an
id once); an event without one costs no bytes for it.

A batch may instead be a handoff barrier (`barrier` set, no rows): the ingest stage sends it
through this topic before it hands a source partition's batches to a window partition in its
own process (`agents.local_handoff`); everything that source sent here before is ordered
ahead of it.

A message must fit the broker's max.message.bytes (about 1 MB by default) whatever the ids:
`ProductBatch.chunks` bounds both the rows and the encoded bytes of each message.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import orjson

from app.kafka.partitioner import kafka_partition

SEQ_INDEX_BITS = 20
MAX_MESSAGE_BYTES = 512 << 10  # well under the broker's default max.message.bytes (~1 MB)
_ENVELOPE_BYTES = 128  # {"sp":..,"n":..,"w":..,"e":[]} with numbers of up to 20 characters
_ROW_NUMBERS_BYTES = 87  # a row's brackets and commas, four 64-bit numbers, the comma after it

Row = list[Any]  # [product_id, type_index, event_time_ms, seq, depth(, event_id)]


@dataclass(frozen=True, slots=True)
class ProductBatch:
    """Events from one source partition (of `source_partitions`) for one worker partition."""

    source_partition: int
    source_partitions: int
    watermark_ms: int
    rows: list[Row]
    barrier: str | None = None  # a handoff barrier's token (then `rows` is empty)

    def encode(self) -> bytes:
        obj = {"sp": self.source_partition, "n": self.source_partitions, "w": self.watermark_ms,
               "e": self.rows}  # fmt: skip
        if self.barrier is not None:
            obj["b"] = self.barrier
        return orjson.dumps(obj)

    def chunks(self, max_rows: int, max_bytes: int = MAX_MESSAGE_BYTES) -> list[ProductBatch]:
        """This batch split, rows in order, into messages of at most `max_rows` rows that
        each encode to at most `max_bytes` (a single row always makes a message)."""
        rows = self.rows
        budget = max_bytes - _ENVELOPE_BYTES
        row_bytes: dict[str, int] = {}  # product -> an upper bound of its row's encoded size
        cuts: list[int] = []
        start = used = 0
        for i, row in enumerate(rows):
            size = row_bytes.get(row[0])
            if size is None:
                size = row_bytes[row[0]] = len(orjson.dumps(row[0])) + _ROW_NUMBERS_BYTES
            if len(row) > 5:
                size += len(orjson.dumps(row[5])) + 1  # the id and its comma
            if i - start >= max_rows or (used + size > budget and i > start):
                cuts.append(i)
                start, used = i, 0
            used += size
        if not cuts:
            return [self]
        edges = [0, *cuts, len(rows)]
        sp, n, w = self.source_partition, self.source_partitions, self.watermark_ms
        return [ProductBatch(sp, n, w, rows[a:b]) for a, b in itertools.pairwise(edges)]

    @classmethod
    def decode(cls, raw: bytes) -> ProductBatch:
        obj = orjson.loads(raw)
        return cls(int(obj["sp"]), int(obj["n"]), int(obj["w"]), obj["e"], obj.get("b"))


def product_partition(product_id: str, partitions: int) -> int:
    """The worker partition that owns a product: Kafka's default partitioner on its id.

    Faust's table routing hashes the same key bytes the same way, so a web request for a
    product reaches the worker that holds its windows.
    """
    return kafka_partition(product_id.encode(), partitions)
