"""aiokafka's retries of a settling transaction (KIP-890) are counted, not logged as warnings;
every other produce warning still is."""

from __future__ import annotations

import logging

import pytest
from aiokafka.errors import NotEnoughReplicasError, RequestTimedOutError
from aiokafka.structs import TopicPartition

from app.kafka.transactions import RETRIES, quiet_settling_retries

SENDER = logging.getLogger("aiokafka.producer.sender")
MESSAGE = "Got error produce response on topic-partition %s, retrying. Error: %s"


def test_settling_retries_are_counted_and_other_errors_still_warn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    quiet_settling_retries()
    quiet_settling_retries()  # idempotent: one filter
    before = RETRIES.get()
    tp = TopicPartition("t-changelog", 1)
    with caplog.at_level(logging.INFO, logger="aiokafka.producer.sender"):
        SENDER.warning(MESSAGE, tp, NotEnoughReplicasError)
        SENDER.warning(MESSAGE, tp, RequestTimedOutError)
    assert RETRIES.get() == before + 1
    assert [r.getMessage() for r in caplog.records] == [MESSAGE % (tp, RequestTimedOutError)]
    assert caplog.records[0].levelno == logging.WARNING
