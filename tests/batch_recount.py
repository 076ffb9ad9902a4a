"""An independent recount of the daily summary: plain Python over JSONL, no DuckDB, no project code.

It encodes docs/design.md's definitions directly, so a report that agrees with it on every
field agrees with the contract, not with itself.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo


def _pct(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100 * part / whole, 2)


def _local_day_bounds(day: date, tz_name: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(tz_name)
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def read_jsonl(path: Path) -> list[dict[str, object]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def recount(
    events_jsonl: Path, alerts_jsonl: Path | None, day: date, tz_name: str
) -> dict[str, object]:
    """The summary's JSON fields (all but generated_at) for `day` in `tz_name`."""
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
        "flash_sale_alerts": _recount_alerts(alerts_jsonl, start, end),
    }


def _recount_alerts(path: Path | None, start: datetime, end: datetime) -> dict[str, object]:
    """Alerts whose window starts within the day; top 5 products by alerts, then product_id."""
    per_product: dict[str, list[int]] = defaultdict(list)
    for alert in read_jsonl(path) if path else []:
        if start <= datetime.fromisoformat(str(alert["window_start"])) < end:
            per_product[str(alert["product_id"])].append(int(alert["views"]))  # type: ignore[call-overload]
    ranked = sorted(per_product.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:5]
    return {
        "count": sum(len(v) for v in per_product.values()),
        "top_products": [
            {"product_id": p, "alerts": len(v), "peak_views": max(v)} for p, v in ranked
        ],
    }
