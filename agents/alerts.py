"""Flash-sale alerts: their JSON form, the console row, and the ids already on the topic."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson

from app.console_text import escape_control
from app.kafka.topics import topic_tail
from app.time_format import iso_utc_ms
from app.windowing.window_alert import WindowAlert

logger = logging.getLogger(__name__)
console = logging.getLogger("flash_sale")

RECENT_PER_PARTITION = 10_000
_HEADER = ("window_start", "window_end", "product_id", "views", "purchases")


def alert_record(alert: WindowAlert, detected_at_ms: int) -> dict[str, object]:
    """The alert as published on ALERTS_TOPIC (docs/design.md, "Event, alert and storage
    formats")."""
    return {
        "alert_id": alert.alert_id,
        "product_id": alert.product_id,
        "window_start": iso_utc_ms(alert.window_start_ms),
        "window_end": iso_utc_ms(alert.window_end_ms),
        "views": alert.views,
        "add_to_cart": alert.add_to_cart,
        "purchases": alert.purchases,
        "detected_at": iso_utc_ms(detected_at_ms),
    }


def console_table(alert: WindowAlert) -> str:
    """The alert as a row of the original system's console table."""
    fmt = "%Y-%m-%d %H:%M:%S"
    cells = (
        datetime.fromtimestamp(alert.window_start_ms / 1000, tz=UTC).strftime(fmt),
        datetime.fromtimestamp(alert.window_end_ms / 1000, tz=UTC).strftime(fmt),
        escape_control(alert.product_id),
        str(alert.views),
        str(alert.purchases),
    )
    return draw_table(_HEADER, cells)


def draw_table(header: tuple[str, ...], cells: tuple[str, ...]) -> str:
    """A one-row table in the original system's console style (Spark's `show()`)."""
    widths = [max(len(h), len(c)) for h, c in zip(header, cells, strict=True)]
    rule = "+" + "+".join("-" * w for w in widths) + "+"

    def row(values: tuple[str, ...]) -> str:
        return "|" + "|".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + "|"

    return "\n".join([rule, row(header), rule, row(cells), rule])


async def recent_alert_ids(bootstrap: str, topic: str) -> set[str]:
    """alert_ids among the newest messages of every partition of the alerts topic.

    A worker partition that starts with no state at all (a new APP_ID on the same topics)
    replays its whole input; this set keeps the alerts already sent from being sent twice.
    Only the newest RECENT_PER_PARTITION records of each partition are read.
    """
    found: set[str] = set()
    async with topic_tail(bootstrap, topic, RECENT_PER_PARTITION) as tail:
        if tail is None:
            return found
        remaining = tail.unread()
        while remaining:
            polled = await tail.consumer.getmany(*remaining, timeout_ms=2000)
            if not polled:
                break
            for tp, records in polled.items():
                for record in records:
                    try:
                        found.add(str(orjson.loads(record.value)["alert_id"]))
                    except (orjson.JSONDecodeError, KeyError, TypeError):
                        logger.warning("ignoring a non-alert message at %s@%s", tp, record.offset)
                if await tail.at_end(tp):
                    remaining.discard(tp)
    return found
