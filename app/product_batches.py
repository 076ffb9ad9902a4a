"""The worker's internal wire format: many validated events of one product partition per message.

The ingest stage reads the input topic, validates, and regroups events by product partition
into one Kafka message per (source partition, product partition, poll). Faust then pays its
per-message cost once per few hundred events instead of once per event.

Each row is `[product_id, type_index, event_time_ms, seq, depth]` where `seq` orders events of
one source partition (offset << 20 | index in a batched message) and `depth` says how many
windows the event still counts toward (see `app.windows.WindowSpec.open_depth`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka.partitioner import murmur2

SEQ_INDEX_BITS = 20

Row = list[Any]  # [product_id, type_index, event_time_ms, seq, depth]


@dataclass(frozen=True, slots=True)
class ProductBatch:
    """Events from one source partition (of `source_partitions`) for one worker partition."""

    source_partition: int
    source_partitions: int
    watermark_ms: int
    rows: list[Row]

    def encode(self) -> bytes:
        return orjson.dumps(
            {"sp": self.source_partition, "n": self.source_partitions, "w": self.watermark_ms,
             "e": self.rows}
        )  # fmt: skip

    def chunks(self, max_rows: int) -> list[ProductBatch]:
        """This batch split so that no message grows too large."""
        if len(self.rows) <= max_rows:
            return [self]
        return [
            ProductBatch(
                self.source_partition,
                self.source_partitions,
                self.watermark_ms,
                self.rows[i : i + max_rows],
            )
            for i in range(0, len(self.rows), max_rows)
        ]

    @classmethod
    def decode(cls, raw: bytes) -> ProductBatch:
        obj = orjson.loads(raw)
        return cls(int(obj["sp"]), int(obj["n"]), int(obj["w"]), obj["e"])


def product_partition(product_id: str, partitions: int) -> int:
    """The worker partition that owns a product: Kafka's default partitioner on its id.

    Faust's table routing hashes the same key bytes the same way, so a web request for a
    product reaches the worker that holds its windows.
    """
    return int(murmur2(product_id.encode()) & 0x7FFFFFFF) % partitions
