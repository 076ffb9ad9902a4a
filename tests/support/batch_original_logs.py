"""Raw logs written the way the original system's simulator wrote them.

It appended every event to RAW_LOGS_PATH/clickstream_YYYY-MM-DD.jsonl as `json.dumps` of
exactly five fields, `user_id`, `product_id`, `product_category`, `event_type`, `timestamp`,
the time from `datetime.now(timezone.utc).isoformat()`: microseconds and `+00:00`, and no
fraction at all when the microseconds happen to be zero. No event_id, no session, no price.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

CATEGORIES = ("electronics", "clothing", "books", "home", "sports")


def original_day(day: date, count: int, seed: int, flash_product: str | None = None) -> list[str]:
    """The lines of one day's log, in the order they were appended (time order)."""
    rng = random.Random(seed)
    moment = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)  # noqa: UP017 - as written
    step = 86_400_000_000 // count
    lines = []
    for n in range(count):
        moment += timedelta(microseconds=rng.randrange(1, 2 * step))
        if n == count // 2:
            moment = moment.replace(microsecond=0)  # isoformat() then drops the fraction
        product = rng.randrange(1, 51)
        if flash_product is not None and 1000 <= n % 5000 < 1160:
            product_id, kind = flash_product, "view"  # a burst of views, no purchases
        else:
            product_id = f"product_{product}"
            kind = rng.choices(["view", "add_to_cart", "purchase"], [75, 17, 8])[0]
        event = {"user_id": f"user_{rng.randrange(1, 1001)}", "product_id": product_id,
                 "product_category": CATEGORIES[product % len(CATEGORIES)], "event_type": kind,
                 "timestamp": moment.isoformat()}  # fmt: skip
        lines.append(json.dumps(event))
    return lines


def write_log(directory: Path, day: date, lines: list[str]) -> Path:
    path = directory / f"clickstream_{day.isoformat()}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path
