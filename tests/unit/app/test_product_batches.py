"""Internal messages fit the broker's message size limit whatever the product ids."""

from __future__ import annotations

import pytest

from app.product_batches import MAX_MESSAGE_BYTES, ProductBatch

BROKER_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588  # Kafka's message.max.bytes default
MAX_ROWS_PER_MESSAGE = 4000  # agents/ingest_delivery.py


def batch_of(product_ids: list[str]) -> ProductBatch:
    rows = [
        [p, i % 3, 1795766400000 + i, (123_456_789 << 20) | i, 9] for i, p in enumerate(product_ids)
    ]
    return ProductBatch(0, 3, 1795766340000, rows)


def test_5000_views_of_a_240_character_id_split_under_the_bound_in_order() -> None:
    url = "https://shop.example.com/products/" + "a" * 206
    batch = batch_of([url] * 5000)
    assert len(batch.encode()) > BROKER_DEFAULT_MAX_MESSAGE_BYTES  # the case of the issue
    chunks = batch.chunks(MAX_ROWS_PER_MESSAGE)
    assert MAX_MESSAGE_BYTES < BROKER_DEFAULT_MAX_MESSAGE_BYTES
    for chunk in chunks:
        assert len(chunk.encode()) <= MAX_MESSAGE_BYTES
        assert (chunk.source_partition, chunk.source_partitions, chunk.watermark_ms) == (
            0,
            3,
            1795766340000,
        )
    assert [row for chunk in chunks for row in chunk.rows] == batch.rows
    decoded = [ProductBatch.decode(chunk.encode()) for chunk in chunks]
    assert [row for chunk in decoded for row in chunk.rows] == batch.rows


@pytest.mark.parametrize(
    "product_id",
    ['"' * 256, "\\" * 256, "\U0001f4a5" * 256, "\u00e9" * 256, "p-1"],
)
def test_every_chunk_fits_whatever_the_characters_of_the_ids(product_id: str) -> None:
    batch = batch_of([product_id, f"{product_id}x"] * 3000)
    chunks = batch.chunks(MAX_ROWS_PER_MESSAGE, max_bytes=200_000)
    assert all(len(chunk.encode()) <= 200_000 for chunk in chunks)
    assert all(len(chunk.rows) <= MAX_ROWS_PER_MESSAGE for chunk in chunks)
    assert [row for chunk in chunks for row in chunk.rows] == batch.rows


def test_short_ids_are_still_cut_by_row_count_and_a_small_batch_stays_whole() -> None:
    batch = batch_of([f"p{i % 50}" for i in range(9000)])
    assert [len(c.rows) for c in batch.chunks(MAX_ROWS_PER_MESSAGE)] == [4000, 4000, 1000]
    small = batch_of(["p1", "p2"])
    assert small.chunks(MAX_ROWS_PER_MESSAGE) == [small]


def test_a_bound_below_one_row_still_sends_each_row_once() -> None:
    batch = batch_of(["x" * 200] * 5)
    chunks = batch.chunks(MAX_ROWS_PER_MESSAGE, max_bytes=100)
    assert [c.rows for c in chunks] == [[row] for row in batch.rows]
