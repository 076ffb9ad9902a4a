"""Incident notifications: what the notifier in `agents/` needs that is neither Kafka nor I/O.

- `records`: the one parser of INCIDENTS_TOPIC records (`IncidentNotice`, its delivery id).
- `text`: the headline, the Slack `text`, the email subject and body.
- `signing`: the webhook headers' names and the HMAC-SHA256 signature.
- `retry`: the `Channel` protocol and retries with capped backoff (tenacity).
- `ledger`: delivery ids a channel has handled, durable per partition.
- `pending`: read but uncommitted records, and how far to commit.
- `status`: each channel's health, for /health and /metrics.
"""
