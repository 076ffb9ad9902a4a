"""Known input for the dashboard's pictures, and its independent recount (no project code)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

from tests.support.window_oracle import TYPES, WindowOracle

T0 = int(datetime(2026, 11, 30, 8, 0, tzinfo=UTC).timestamp() * 1000)
MIN = 60_000
VIRAL = "pviral"
QUIET = "pquiet"


def iso(t_ms: int) -> str:
    return datetime.fromtimestamp(t_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def picture_events(seed: int = 3) -> list[dict[str, object]]:
    """40 minutes of background traffic, a viral product that alerts, a product that buys its
    way out, a quiet product, and three events too late for any window; in arrival order."""
    rng = random.Random(seed)
    kinds = ["view"] * 14 + ["add_to_cart"] * 4 + ["purchase"] * 2
    events: list[tuple[int, str, str]] = []
    for minute in range(40):
        for _ in range(12):
            t = T0 + minute * MIN + rng.randrange(MIN)
            events.append((t, f"bg{rng.randrange(8)}", rng.choice(kinds)))
        events.append((T0 + minute * MIN + rng.randrange(MIN), QUIET, "view"))
    events += [(T0 + 30 * MIN + i * 300, VIRAL, "view") for i in range(130)]
    events += [(T0 + 31 * MIN + i * 1000, VIRAL, "purchase") for i in range(2)]
    events += [(T0 + 33 * MIN + i * 1000, VIRAL, "purchase") for i in range(4)]  # too late
    events += [(T0 + 20 * MIN + i * 300, "pbuy", "view") for i in range(120)]
    events += [(T0 + 19 * MIN + i * 1000, "pbuy", "purchase") for i in range(6)]
    events.sort()
    events += [(T0 + 2 * MIN + i, "plate", "view") for i in range(3)]  # after minute 39: late
    return [
        {"user_id": f"u{n % 50}", "product_id": p, "event_type": k, "timestamp": iso(t)}
        for n, (t, p, k) in enumerate(events)
    ]


def counted_per_minute(
    events: list[dict[str, object]], oracle: WindowOracle
) -> dict[tuple[str, int], tuple[int, int, int]]:
    """(product, minute start) -> counts of events that some window still took (one source
    partition, in order): an event counts unless the watermark passed its newest window's end."""
    newest_seen: int | None = None
    counts: dict[tuple[str, int], list[int]] = {}
    for event in events:
        t = int(
            datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()
            * 1000
        )
        newest_seen = t if newest_seen is None else max(newest_seen, t)
        start = t - t % oracle.step
        if newest_seen - oracle.lateness > start + oracle.size:
            continue
        row = counts.setdefault((str(event["product_id"]), start), [0, 0, 0])
        row[TYPES[str(event["event_type"])]] += 1
    return {key: (c[0], c[1], c[2]) for key, c in counts.items()}


def shop_per_minute(
    per_minute: dict[tuple[str, int], tuple[int, int, int]],
) -> dict[int, list[int]]:
    totals: dict[int, list[int]] = {}
    for (_, start), c in per_minute.items():
        row = totals.setdefault(start, [0, 0, 0])
        for i in range(3):
            row[i] += c[i]
    return totals


def incident(product: str, start_ms: int, sequence: int, **changes: object) -> dict[str, object]:
    """An incident record as the incident stage publishes it (schema of INCIDENTS_TOPIC)."""
    record: dict[str, object] = {
        "incident_id": f"{product}:{start_ms}", "event": "opened", "sequence": sequence,
        "product_id": product, "status": "open", "opened_at": iso(start_ms + 11 * MIN),
        "first_window_start": iso(start_ms), "first_window_end": iso(start_ms + 10 * MIN),
        "latest_window_start": iso(start_ms), "latest_window_end": iso(start_ms + 10 * MIN),
        "windows": 1, "peak_views": 101, "purchases": 0, "views_threshold": 100,
        "purchases_threshold": 5, "emitted_at": iso(start_ms + 11 * MIN), "resolved_at": None,
        "resolution": None,
    }  # fmt: skip
    record.update(changes)
    return record


def newest_by_id(records: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    newest: dict[str, dict[str, object]] = {}
    for r in records:
        known = newest.get(str(r["incident_id"]))
        if known is None or int(str(r["sequence"])) > int(str(known["sequence"])):
            newest[str(r["incident_id"])] = r
    return newest


def type_totals(events: list[dict[str, object]]) -> Counter[str]:
    return Counter(str(e["event_type"]) for e in events)
