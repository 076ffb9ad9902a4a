"""Kafka's default partitioner, as the Java client applies it to a message key.

The simulator picks the partition of a product's events with it, and the worker the partition
that owns a product's windows, so both agree with any Kafka client that keys by product_id.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def kafka_partition(key: bytes, partitions: int) -> int:
    """The partition (0 .. partitions - 1) the default partitioner picks for `key`."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions
