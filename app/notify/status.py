"""How each notification channel is doing, for /health and /metrics.

A channel is failing from its first failed attempt until its next delivery (the receiver is
away, slow, or answers 5xx, 408 or 429: the notification is retried), and after a rejection
(4xx: the notification was skipped) until its next delivery. While one is failing, /health
answers 503 with a problem naming the channel, its receiver and the last error: the worker
cannot do that part of its job. Counting goes on all the same (other consumer groups), and the
stall watchdog never looks at the notifier, so a dead receiver never restarts the worker.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from app import metrics
from app.time_format import iso_utc_ms

NOTIFICATIONS = metrics.NOTIFICATIONS
FAILED_ATTEMPTS = metrics.NOTIFICATION_FAILED_ATTEMPTS
FAILING = metrics.NOTIFICATION_CHANNEL_FAILING
PENDING = metrics.NOTIFICATIONS_PENDING


@dataclass
class ChannelStatus:
    """One channel's recent history; times are wall-clock seconds."""

    channel: str
    target: str  # the receiver as shown: a URL's origin, or the email recipients
    failed_attempts: int = 0  # in a row, for the notification at hand
    failing_since: float | None = None
    last_error: str | None = None
    rejection: str | None = None  # the last rejection since the last delivery
    pending: int = 0

    @property
    def failing(self) -> bool:
        return self.failed_attempts > 0 or self.rejection is not None

    def attempt_failed(self, error: str, now: float) -> None:
        if self.failing_since is None:
            self.failing_since = now
        self.failed_attempts += 1
        self.last_error = error
        self._publish()

    def delivered(self) -> None:
        self.failed_attempts, self.failing_since, self.last_error = 0, None, None
        self.rejection = None
        self._publish()

    def rejected(self, error: str) -> None:
        self.failed_attempts, self.failing_since = 0, None
        self.rejection = error
        self._publish()

    def set_pending(self, pending: int) -> None:
        self.pending = pending
        PENDING.set(pending, self.channel)

    def problem(self) -> str | None:
        """The /health line while failing, else None."""
        if self.failed_attempts > 0 and self.failing_since is not None:
            since = iso_utc_ms(int(self.failing_since * 1000))
            return (
                f"{self.channel} notifications to {self.target} are failing: {self.last_error} "
                f"({self.failed_attempts} attempts since {since}"
                f"; {self.pending} waiting, retried)"
            )
        if self.rejection is not None:
            return (
                f"{self.channel} notifications to {self.target} were rejected: {self.rejection} "
                "(skipped; check the channel's settings)"
            )
        return None

    def _publish(self) -> None:
        FAILING.set(1 if self.failing else 0, self.channel)


_lock = threading.Lock()
_channels: dict[str, ChannelStatus] = {}


def track(status: ChannelStatus) -> None:
    """Report `status` on /health and /metrics from now on."""
    with _lock:
        _channels[status.channel] = status
    status.set_pending(status.pending)
    FAILING.set(1 if status.failing else 0, status.channel)


def untrack(status: ChannelStatus) -> None:
    """Stop reporting `status` (its notifier stopped)."""
    with _lock:
        if _channels.get(status.channel) is status:
            del _channels[status.channel]
            FAILING.set(0, status.channel)
            PENDING.set(0, status.channel)


def notification_problems() -> list[str]:
    """One /health problem line per failing channel of this worker's notifier."""
    with _lock:
        statuses = list(_channels.values())
    return [line for status in statuses if (line := status.problem()) is not None]
