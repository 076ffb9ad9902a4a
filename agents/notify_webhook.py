"""The webhook channel: POST each incident open and resolve as JSON to ALERT_WEBHOOK_URL.

The body is the incident record as published plus a Slack-compatible `text`; headers:
`Content-Type: application/json`, `X-Clickstream-Delivery: <incident_id>/<sequence>` (the same
on every retry and after a restart, for the receiver to drop a repeat), `X-Clickstream-Event`
(opened or resolved) and, with ALERT_WEBHOOK_SECRET, `X-Clickstream-Signature`.

A 2xx answer is a delivery. 408, 429 and 5xx, a timeout (`timeout` seconds for the whole
attempt) or a connection error are retried; any other answer (3xx, 4xx) is a rejection: its
status and the start of its body are logged and it is skipped. The URL's path and query (a
Slack URL's secret token is its path) are never logged: only its origin is shown.
"""

from __future__ import annotations

import aiohttp
import orjson
from yarl import URL

from app.console_text import escape_control
from app.errors import NotificationRejected, NotificationRetryable
from app.notify.records import IncidentNotice
from app.notify.signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signature
from app.notify.text import slack_text

TIMEOUT_S = 10.0
EXCERPT = 200  # characters of a rejection's body in the log
_RETRIED = frozenset({408, 429})


def webhook_body(notice: IncidentNotice) -> bytes:
    """The JSON body: the record as published, with `text` (one line for people)."""
    return orjson.dumps({**notice.published, "text": slack_text(notice.record)})


class WebhookChannel:
    """POSTs notices to `url`; `secret` (str) signs each body."""

    name = "webhook"

    def __init__(self, url: str, secret: str | None = None, timeout: float = TIMEOUT_S) -> None:
        self._url = url
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.target = str(URL(url).origin())
        self._session: aiohttp.ClientSession | None = None

    def headers(self, notice: IncidentNotice, body: bytes) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "clickstream-analytics-notifier",
            DELIVERY_HEADER: notice.delivery_id,
            EVENT_HEADER: notice.record.event,
        }
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = signature(body, self._secret)
        return headers

    async def deliver(self, notice: IncidentNotice) -> None:
        """One POST; raises NotificationRetryable or NotificationRejected unless 2xx."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        body = webhook_body(notice)
        try:
            async with self._session.post(
                self._url, data=body, headers=self.headers(notice, body), allow_redirects=False
            ) as response:
                if 200 <= response.status < 300:
                    return
                excerpt = await response.content.read(EXCERPT * 4)
                retry_after = _seconds(response.headers.get("Retry-After"))
        except TimeoutError:
            msg = f"no answer within {self._timeout.total:g} s"
            raise NotificationRetryable(msg) from None
        except aiohttp.ClientError as exc:
            msg = self._redact(f"{type(exc).__name__}: {exc}")
            raise NotificationRetryable(msg) from None
        said = escape_control(excerpt.decode("utf-8", "replace")[:EXCERPT].strip())
        answer = f"HTTP {response.status}" + (f": {said}" if said else "")
        if response.status >= 500 or response.status in _RETRIED:
            raise NotificationRetryable(answer, retry_after)
        raise NotificationRejected(answer)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _redact(self, text: str) -> str:
        text = text.replace(self._url, self.target)
        path = URL(self._url).path_qs
        return text.replace(path, "/…") if len(path) > 1 else text


def _seconds(value: str | None) -> float | None:
    """A Retry-After given in seconds (an HTTP date is ignored: the backoff applies)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
