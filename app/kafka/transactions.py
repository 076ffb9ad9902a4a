"""Settings and log handling shared by the worker's transactional producers.

Since KIP-890 (Kafka 3.6+), a broker answers a produce request that arrives while the
producer's previous transaction is still settling (its markers being written, or the
partition's membership being verified) with NOT_ENOUGH_REPLICAS, the one retriable error
older clients such as aiokafka know (KAFKA-15459). A stage that commits a transaction per
poll meets it all the time: it is retried, and is not a fault. Two things follow:

- the retry backoff decides how long the next checkpoint (and its alerts) waits: aiokafka's
  default of 100 ms added up to a tenth of a second to alert latency, so it is 10 ms here;
- aiokafka logs each retry as a warning; those for NotEnoughReplicasError are logged at
  DEBUG instead and counted in `clickstream_transaction_produce_retries_total`. A real
  shortage of replicas that outlasts the transaction timeout still fails the checkpoint,
  which the stage reports itself.
"""

from __future__ import annotations

import logging

from app import metrics

RETRY_BACKOFF_MS = 10
_SENDER_LOGGER = "aiokafka.producer.sender"
RETRIES = metrics.TRANSACTION_RETRIES


class _SettlingRetries(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and "NotEnoughReplicasError" in str(record.args):
            RETRIES.inc()
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(_SENDER_LOGGER).isEnabledFor(logging.DEBUG)
        return True


_FILTER = _SettlingRetries()


def quiet_settling_retries() -> None:
    """Log aiokafka's retries of NotEnoughReplicasError at DEBUG (idempotent)."""
    sender = logging.getLogger(_SENDER_LOGGER)
    if _FILTER not in sender.filters:
        sender.addFilter(_FILTER)
