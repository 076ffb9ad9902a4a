"""Every error the product raises on purpose, rooted in one class.

    ClickstreamError
    ├── SettingsError        a configuration value is not allowed
    ├── SettingsMismatchError a setting disagrees with what Kafka already holds
    ├── BrokerError          the local Kafka broker cannot be fetched, started or stopped
    ├── InvalidEventError    one input message is not a valid event (goes to the DLQ)
    ├── StorageError         a Parquet file cannot be written or read
    ├── ReportError          the daily summary cannot be built or sent
    │   ├── NoDataError      no event falls within the report day
    │   ├── DeliveryError    the email could not be handed over (after retries)
    │   └── SchedulerLockedError  another scheduler holds the lock
    └── NotificationError    an incident notification did not reach its receiver
        ├── NotificationRetryable  the receiver is away, slow or failing: try again later
        └── NotificationRejected   the receiver refused it for good: skip it

Messages name what was wrong, with the offending value, and what to do about it.
"""

from __future__ import annotations


class ClickstreamError(Exception):
    """Root of the errors this product raises on purpose."""


class SettingsError(ClickstreamError):
    """A configuration variable holds a value that is not allowed."""

    def __init__(self, variable: str, value: object, allowed: str) -> None:
        self.variable = variable
        self.value = value
        self.allowed = allowed
        super().__init__(
            f"{variable}={value!r} is not allowed: expected {allowed}. "
            f"Fix {variable} in the environment or in .env."
        )


class SettingsMismatchError(ClickstreamError):
    """A setting disagrees with what already exists in Kafka (e.g. a topic's partitions)."""


class BrokerError(ClickstreamError):
    """The local Kafka broker cannot be fetched, started, reached or stopped."""


class InvalidEventError(ClickstreamError):
    """One input message is not a valid event; `reason` is a short stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class StorageError(ClickstreamError):
    """A Parquet file cannot be written, renamed or read."""


class ReportError(ClickstreamError):
    """The daily summary cannot be computed, rendered or delivered."""


class NoDataError(ReportError):
    """No event falls within the report day: nothing to summarise, nothing to send."""


class DeliveryError(ReportError):
    """The report email could not be delivered, after the retries that made sense."""


class SchedulerLockedError(ReportError):
    """Another `clickstream scheduler` holds the lock file: only one may run."""


class NotificationError(ClickstreamError):
    """An incident notification did not reach its receiver (webhook or email)."""


class NotificationRetryable(NotificationError):
    """The receiver is away, slow or failing; `retry_after` is the pause it asked for, in s."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class NotificationRejected(NotificationError):
    """The receiver refused the notification for good (e.g. HTTP 400): retrying cannot help."""
