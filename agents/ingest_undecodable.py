"""Where a batch the Kafka client cannot decode sits, and what an operator does about it.

aiokafka decodes record batches lazily inside `getmany`, and its errors (a codec without its
library, a corrupt batch) name no partition; the ingest stage uses these to stop only the
partition concerned (see `agents.ingest`).
"""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import UnsupportedCodecError
from aiokafka.structs import TopicPartition

logger = logging.getLogger(__name__)


def undecodable_batch(exc: BaseException) -> tuple[TopicPartition, int, int] | None:
    """The partition, first offset and next offset of the batch whose decoding raised `exc`.

    aiokafka's getmany raises decoding errors straight out of the fetcher's
    PartitionRecords._unpack_records, whose locals `tp` and `next_batch` say where; the
    exception itself names neither. None when `exc` was not raised while decoding a batch.
    """
    found = None
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if (
            frame.f_globals.get("__name__") == "aiokafka.consumer.fetcher"
            and frame.f_code.co_name == "_unpack_records"
        ):
            tp, batch = frame.f_locals.get("tp"), frame.f_locals.get("next_batch")
            if isinstance(tp, TopicPartition) and batch is not None:
                found = (tp, int(batch.base_offset), int(batch.next_offset))
        tb = tb.tb_next
    return found


def decode_fix(exc: BaseException, group: str, tp: TopicPartition, next_offset: int) -> str:
    """What an operator does about a batch that cannot be decoded."""
    if isinstance(exc, UnsupportedCodecError) and "not found" in str(exc):
        return "install cramjam>=2.8 (pip install -e .) and restart the worker"
    return (
        "the producer wrote a batch this client cannot read: inspect it with kafka-dump-log.sh "
        "--print-data-log, then stop the workers and skip it with kafka-consumer-groups.sh "
        f"--group {group} --topic {tp.topic}:{tp.partition} --reset-offsets "
        f"--to-offset {next_offset} --execute"
    )


async def set_aside(
    consumer: AIOKafkaConsumer, exc: BaseException, tp: TopicPartition, offset: int,
    next_offset: int, group: str, read_to: dict[TopicPartition, int],
) -> None:  # fmt: skip
    """Pause `tp` at the batch from `offset` to `next_offset` that raised `exc`, log what to
    do about it, and rewind the consumer's other partitions.

    The failed poll may have taken records of other partitions with it (aiokafka moved
    their positions before raising): they are read again from where handling stopped,
    `read_to` (the positions after the last handled poll), else from the `group`'s commit.
    """
    consumer.pause(tp)
    logger.error(
        "ingest: cannot decode the batch at %s:%s offset %s (%s: %s); reading of partition "
        "%s stopped there and nothing past it is committed, the other partitions go on. "
        "To fix: %s",
        tp.topic, tp.partition, offset, type(exc).__name__, exc, tp.partition,
        decode_fix(exc, group, tp, next_offset),
    )  # fmt: skip
    for other in consumer.assignment() - {tp}:
        if other in read_to:
            consumer.seek(other, read_to[other])
            continue
        committed = await consumer.committed(other)  # none of it handled yet
        if committed is not None and committed >= 0:
            consumer.seek(other, committed)
        else:
            await consumer.seek_to_beginning(other)
