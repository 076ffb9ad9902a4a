"""Delivering one notification on one channel: retried with capped backoff until it lands.

A channel raises `NotificationRetryable` (the receiver is away, slow, or failing: 5xx, 408,
429, a timeout, a refused connection) or `NotificationRejected` (it refused the notification
for good). Retryable failures, and unexpected errors, are retried forever, the pause doubling
from `Backoff.first` to `Backoff.cap` with jitter (or the receiver's Retry-After, capped the
same), while the channel's status reports them; a rejection is logged once, counted, skipped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception
from tenacity.wait import wait_exponential_jitter

from app.errors import NotificationRejected, NotificationRetryable
from app.notify.records import IncidentNotice
from app.notify.status import FAILED_ATTEMPTS, NOTIFICATIONS, ChannelStatus

logger = logging.getLogger(__name__)


class Channel(Protocol):
    """Where notifications go: `name` is the metric label, `target` the receiver as shown."""

    name: str
    target: str

    async def deliver(self, notice: IncidentNotice) -> None:
        """One attempt; raises NotificationRetryable or NotificationRejected when it failed."""
        ...

    async def close(self) -> None:
        """Release connections; the channel is not used again."""
        ...


@dataclass(frozen=True, slots=True)
class Backoff:
    """Pauses between attempts in seconds: doubling from `first`, at most `cap`."""

    first: float = 1.0
    cap: float = 60.0

    def pause(self, state: RetryCallState) -> float:
        exponential = wait_exponential_jitter(
            multiplier=self.first, max=self.cap, jitter=self.first
        )
        pause = min(self.cap, exponential(state))
        failure = state.outcome.exception() if state.outcome is not None else None
        asked = getattr(failure, "retry_after", None)
        return max(pause, min(self.cap, asked)) if asked is not None else pause


async def deliver_with_retries(
    channel: Channel, notice: IncidentNotice, backoff: Backoff, status: ChannelStatus
) -> bool:
    """Deliver `notice` on `channel`, retrying until it lands; True when delivered, False when
    the receiver rejected it. Returns only then (or raises CancelledError when cancelled)."""

    def failed(state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome is not None else None
        expected = isinstance(failure, NotificationRetryable)
        error = str(failure) if expected else f"{type(failure).__name__}: {failure}"
        FAILED_ATTEMPTS.inc(1, channel.name)
        if status.failed_attempts == 0 or error != status.last_error:
            pause = state.next_action.sleep if state.next_action is not None else 0.0
            logger.warning(
                "%s: could not deliver %s to %s: %s; retrying in %.1f s and on, while it fails",
                channel.name, notice.delivery_id, channel.target, error, pause,
                exc_info=None if expected else failure,
            )  # fmt: skip
        status.attempt_failed(error, time.time())

    retrying = AsyncRetrying(
        retry=retry_if_exception(_worth_retrying),
        wait=backoff.pause,
        before_sleep=failed,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                await channel.deliver(notice)
    except NotificationRejected as exc:
        NOTIFICATIONS.inc(1, channel.name, "rejected")
        logger.error(
            "%s: %s rejected %s (%s); skipped, not retried",
            channel.name, channel.target, notice.delivery_id, exc,
        )  # fmt: skip
        status.rejected(str(exc))
        return False
    if status.failed_attempts > 0:
        logger.info(
            "%s: delivered %s to %s after %s failed attempts",
            channel.name, notice.delivery_id, channel.target, status.failed_attempts,
        )  # fmt: skip
    NOTIFICATIONS.inc(1, channel.name, "delivered")
    status.delivered()
    return True


def _worth_retrying(failure: BaseException) -> bool:
    """Anything but a rejection: an unexpected error (a bug) is retried too, and shown on
    /health, rather than losing the notification. Cancellation is never retried."""
    return isinstance(failure, Exception) and not isinstance(failure, NotificationRejected)
