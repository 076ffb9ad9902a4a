"""The webhook signature: `X-Clickstream-Signature: sha256=<hex HMAC-SHA256 of the body>`.

The HMAC covers the exact bytes of the request body, with ALERT_WEBHOOK_SECRET (UTF-8) as the
key. A receiver recomputes it over the body it read, before parsing, and compares in constant
time (`verify`, or the README's example).
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Clickstream-Signature"
DELIVERY_HEADER = "X-Clickstream-Delivery"
EVENT_HEADER = "X-Clickstream-Event"


def signature(body: bytes, secret: str) -> str:
    """The header value for `body`: `sha256=` and 64 lowercase hex digits."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(body: bytes, secret: str, header: str | None) -> bool:
    """Whether `header` is the signature of `body` under `secret` (constant-time compare)."""
    return header is not None and hmac.compare_digest(signature(body, secret), header)
