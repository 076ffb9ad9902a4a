"""An independent recount of the daily summary: plain Python over JSONL, no DuckDB, no product code.

It encodes docs/design.md's definitions directly, so a report that agrees with it on every
field agrees with the contract, not with itself.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.support.window_oracle import WindowOracle


def _pct(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100 * part / whole, 2)


def _local_day_bounds(day: date, tz_name: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(tz_name)
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def read_jsonl(path: Path) -> list[dict[str, object]]:
    stat = path.stat()
    return list(_parsed(path, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _parsed(path: Path, mtime_ns: int, size: int) -> tuple[dict[str, object], ...]:
    """Each file is parsed once per version (the recount reads it for several days)."""
    with path.open(encoding="utf-8") as handle:
        return tuple(json.loads(line) for line in handle if line.strip())


def recount(
    events_jsonl: Path,
    alerts_jsonl: Path | None,
    day: date,
    tz_name: str,
    *,
    oracle: WindowOracle | None = None,
    checks: bool = False,
) -> dict[str, object]:
    """The summary's JSON fields (all but generated_at) for `day` in `tz_name`.

    `oracle`: tests/support/window_oracle.py fed the same events in stored order; its final
    window counts give the alerted products' peak views. With `checks`, also the trends (this recount one
    and seven days earlier) and the reconciliation of alerts_jsonl against the oracle's alerts.
    """
    start, end = _local_day_bounds(day, tz_name)
    by_type = {"view": 0, "add_to_cart": 0, "purchase": 0}
    types_by_user: dict[str, set[str]] = defaultdict(set)
    views_by_product: dict[str, int] = defaultdict(int)
    cat_views: dict[str | None, int] = defaultdict(int)
    cat_purchases: dict[str | None, int] = defaultdict(int)
    categories: set[str | None] = set()
    total = 0
    for event in read_jsonl(events_jsonl):
        moment = datetime.fromisoformat(str(event["timestamp"]))
        if not (start <= moment < end):
            continue
        total += 1
        kind = str(event["event_type"])
        by_type[kind] = by_type.get(kind, 0) + 1
        types_by_user[str(event["user_id"])].add(kind)
        category = event.get("product_category")
        categories.add(category)  # type: ignore[arg-type]
        if kind == "view":
            views_by_product[str(event["product_id"])] += 1
            cat_views[category] += 1  # type: ignore[index]
        elif kind == "purchase":
            cat_purchases[category] += 1  # type: ignore[index]
    users = len(types_by_user)
    buyers = sum(1 for kinds in types_by_user.values() if "purchase" in kinds)
    conversion = _pct(by_type["purchase"], by_type["view"])
    viewed = [u for u, kinds in types_by_user.items() if "view" in kinds]
    added = [u for u in viewed if "add_to_cart" in types_by_user[u]]
    purchased = [u for u in added if "purchase" in types_by_user[u]]
    top = sorted(views_by_product.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    ordered_categories = sorted(categories, key=lambda c: (-cat_views[c], c is None, c or ""))
    return {
        "date": day.isoformat(),
        "timezone": tz_name,
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "total_events": total,
        "events_by_type": by_type,
        "unique_users": users,
        "buyers": buyers,
        "window_shoppers": users - buyers,
        "buyer_rate": _pct(buyers, users),
        "conversion_rate": conversion,
        "top_5_viewed_products": [{"product_id": p, "views": n} for p, n in top],
        "conversion_by_category": [
            {
                "category": c,
                "views": cat_views[c],
                "purchases": cat_purchases[c],
                "conversion_rate": _pct(cat_purchases[c], cat_views[c]),
            }
            for c in ordered_categories
        ],
        "funnel": {
            "viewed": len(viewed),
            "added_to_cart": len(added),
            "purchased": len(purchased),
            "view_to_cart_rate": _pct(len(added), len(viewed)),
            "cart_to_purchase_rate": _pct(len(purchased), len(added)),
            "view_to_purchase_rate": _pct(len(purchased), len(viewed)),
        },
        "flash_sale_alerts": _recount_alerts(alerts_jsonl, start, end, oracle),
        "hourly_traffic": _hourly(events_jsonl, start, end, tz_name),
        "trends": _trends(events_jsonl, day, tz_name, total, users, buyers, conversion)
        if checks
        else [],
        "reconciliation": _reconciliation(alerts_jsonl, start, end, oracle) if checks else None,
    }


def _recount_alerts(
    path: Path | None, start: datetime, end: datetime, oracle: WindowOracle | None
) -> dict[str, object]:
    """Alerts whose window starts within the day; top 5 products by alerts, then product_id;
    the most views an alert carried, and the most views an alerted window ended with."""
    at_alert: dict[str, list[int]] = defaultdict(list)
    final: dict[str, list[int]] = defaultdict(list)
    for alert in read_jsonl(path) if path else []:
        window_start = datetime.fromisoformat(str(alert["window_start"]))
        if start <= window_start < end:
            product = str(alert["product_id"])
            at_alert[product].append(int(alert["views"]))  # type: ignore[call-overload]
            key = (product, int(window_start.timestamp() * 1000))
            if oracle is not None and key in oracle.windows:
                final[product].append(oracle.windows[key][0])
    ranked = sorted(at_alert.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:5]
    return {
        "count": sum(len(v) for v in at_alert.values()),
        "top_products": [
            {"product_id": p, "alerts": len(v), "peak_views": max(final[p]) if final[p] else None,
             "views_at_alert": max(v)}
            for p, v in ranked
        ],
    }  # fmt: skip


def _hourly(path: Path, start: datetime, end: datetime, tz_name: str) -> list[dict[str, object]]:
    """Views, carts and purchases per hour from local midnight; labels in local time."""
    hours = round((end - start).total_seconds() / 3600)
    counts = [{"view": 0, "add_to_cart": 0, "purchase": 0} for _ in range(hours)]
    for event in read_jsonl(path):
        moment = datetime.fromisoformat(str(event["timestamp"]))
        if start <= moment < end:
            counts[int((moment - start).total_seconds() // 3600)][str(event["event_type"])] += 1
    out = []
    for hour, kinds in enumerate(counts):
        at = start + timedelta(hours=hour)
        local = at.astimezone(ZoneInfo(tz_name))
        label = local.strftime("%H:00") if hours == 24 else local.strftime("%H:00 %Z")
        out.append({"label": label, "start": at.isoformat(), "views": kinds["view"],
                    "add_to_cart": kinds["add_to_cart"], "purchases": kinds["purchase"]})  # fmt: skip
    return out


def _trends(
    path: Path, day: date, tz_name: str, events: int, users: int, buyers: int,
    conversion: float | None,
) -> list[dict[str, object]]:  # fmt: skip
    today = [events, users, buyers, _pct(buyers, users), conversion]
    earlier = []
    for back in (1, 7):
        other = recount(path, None, day - timedelta(days=back), tz_name)
        has_data = other["total_events"] != 0
        earlier.append([other[k] for k in ("total_events", "unique_users", "buyers",
                                           "buyer_rate", "conversion_rate")] if has_data
                       else [None] * 5)  # fmt: skip
    names = ("events", "unique users", "buyers", "buyer rate", "conversion")

    def change(now: object, then: object) -> float | None:
        if now is None or not then:
            return None
        return round(100 * (float(now) - float(then)) / float(then), 1)  # type: ignore[arg-type]

    return [
        {"name": name, "value": today[i], "previous_day": earlier[0][i],
         "week_ago": earlier[1][i], "change_vs_previous_day": change(today[i], earlier[0][i]),
         "change_vs_week_ago": change(today[i], earlier[1][i])}
        for i, name in enumerate(names)
    ]  # fmt: skip


def _reconciliation(
    path: Path | None, start: datetime, end: datetime, oracle: WindowOracle | None
) -> dict[str, object]:
    """Stream alerts (the JSONL) against the windows the oracle alerted, within the day."""
    assert oracle is not None, "the reconciliation needs the oracle"
    stream = set()
    for alert in read_jsonl(path) if path else []:
        moment = datetime.fromisoformat(str(alert["window_start"]))
        if start <= moment < end:
            stream.add((str(alert["product_id"]), int(moment.timestamp() * 1000)))
    lo, hi = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    alerted = {key for key in oracle.alerts if lo <= key[1] < hi}

    def listed(keys: set[tuple[str, int]]) -> list[dict[str, str]]:
        return [{"product_id": p, "window_start": datetime.fromtimestamp(w / 1000, UTC).isoformat()}
                for p, w in sorted(keys)]  # fmt: skip

    return {
        "stream_alerts": len(stream), "backtest_alerts": len(alerted),
        "matched": len(stream & alerted), "mismatches": len(stream ^ alerted),
        "missing_in_stream": listed(alerted - stream), "extra_in_stream": listed(stream - alerted),
        "order_dependent": [], "imported_not_compared": 0, "pending_not_compared_yet": [],
    }  # fmt: skip
