"""What `clickstream backtest` prints: a text summary, JSON or CSV; and the sweep's table."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from batch.backtest import BacktestAlert
from batch.backtest_rule import Thresholds, WindowRule
from batch.render import shown

FORMATS = ("text", "json", "csv")
_ALERT_FIELDS = ("product_id", "window_start", "window_end", "views", "add_to_cart", "purchases")
_TOP = 10


@dataclass(frozen=True, slots=True)
class RunInfo:
    """The range and rule a backtest ran with, and how much it read."""

    first_window: datetime
    end: datetime
    tz: ZoneInfo
    rule: WindowRule
    events: int
    windows: int

    def describe(self) -> list[str]:
        rule = self.rule
        return [
            f"Backtest of windows starting {self.first_window.astimezone(self.tz).isoformat()} "
            f"to {self.end.astimezone(self.tz).isoformat()} ({self.tz.key})",
            f"Windows of {rule.size_ms // 1000} s every {rule.step_ms // 1000} s, "
            f"lateness {rule.lateness_ms // 1000} s; events read {self.events:,}, "
            f"windows with events {self.windows:,}",
        ]

    def as_dict(self) -> dict[str, object]:
        return {
            "first_window": self.first_window.isoformat(),
            "end": self.end.isoformat(),
            "timezone": self.tz.key,
            "window_seconds": self.rule.size_ms // 1000,
            "step_seconds": self.rule.step_ms // 1000,
            "lateness_seconds": self.rule.lateness_ms // 1000,
            "events_read": self.events,
            "windows": self.windows,
        }


def _alert_row(alert: BacktestAlert) -> dict[str, object]:
    return {
        "product_id": alert.product_id,
        "window_start": alert.window_start.isoformat(),
        "window_end": alert.window_end.isoformat(),
        "views": alert.views,
        "add_to_cart": alert.add_to_cart,
        "purchases": alert.purchases,
    }


def render_alerts(
    info: RunInfo, thresholds: Thresholds, alerts: list[BacktestAlert], qualifying: int, fmt: str
) -> str:
    """One threshold pair: every alert (json, csv) or a summary by day and product (text).

    Counts are the windows' final counts, every counted event to the window's end;
    `qualifying` is how many windows qualify on those final counts.
    """
    if fmt == "json":
        body = {**info.as_dict(), "views_threshold": thresholds.views,
                "purchases_threshold": thresholds.purchases, "alert_count": len(alerts),
                "qualifying_windows": qualifying,
                "alerts": [_alert_row(a) for a in alerts]}  # fmt: skip
        return json.dumps(body, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return _csv(_ALERT_FIELDS, [_alert_row(a) for a in alerts])
    lines = [
        *info.describe(),
        f"Rule: views > {thresholds.views} and purchases < {thresholds.purchases} at the first "
        "view past the threshold, in processing order",
        f"Alerts: {len(alerts):,}; windows qualifying on their final counts: {qualifying:,}",
    ]
    if alerts:
        lines += ["", *_by_day(alerts, info.tz), "", *_by_product(alerts)]
    return "\n".join(lines) + "\n"


def _by_day(alerts: list[BacktestAlert], tz: ZoneInfo) -> list[str]:
    days: dict[str, set[str]] = defaultdict(set)
    counts: Counter[str] = Counter()
    for alert in alerts:
        day = alert.window_start.astimezone(tz).date().isoformat()
        counts[day] += 1
        days[day].add(alert.product_id)
    lines = [f"{'day':<12}{'alerts':>10}{'products':>10}"]
    lines += [f"{day:<12}{counts[day]:>10,}{len(days[day]):>10,}" for day in sorted(counts)]
    return lines


def _by_product(alerts: list[BacktestAlert]) -> list[str]:
    per_product: dict[str, list[int]] = defaultdict(list)
    for alert in alerts:
        per_product[alert.product_id].append(alert.views)
    ranked = sorted(per_product.items(), key=lambda item: (-len(item[1]), item[0]))[:_TOP]
    lines = [f"Top {len(ranked)} products by alerts"]
    lines += [
        f"  {shown(product):<20}{len(views):>8,} alerts, peak {max(views):,} views in a window"
        for product, views in ranked
    ]
    return lines


def render_sweep(info: RunInfo, counts: dict[Thresholds, int], fmt: str) -> str:
    """Alerts per threshold pair: a views x purchases matrix (text), JSON or CSV."""
    rows: list[dict[str, object]] = [
        {"views_threshold": t.views, "purchases_threshold": t.purchases, "alerts": n}
        for t, n in sorted(counts.items())
    ]
    if fmt == "json":
        body = {**info.as_dict(), "sweep": rows}
        return json.dumps(body, indent=2) + "\n"
    if fmt == "csv":
        return _csv(("views_threshold", "purchases_threshold", "alerts"), rows)
    views = sorted({t.views for t in counts})
    purchases = sorted({t.purchases for t in counts})
    head = f"{'alerts':<14}" + "".join(f"{f'purchases < {p}':>16}" for p in purchases)
    lines = [*info.describe(), "", head]
    for v in views:
        cells = "".join(
            f"{counts[Thresholds(v, p)]:>16,}" if Thresholds(v, p) in counts else f"{'':>16}"
            for p in purchases
        )
        lines.append(f"{f'views > {v}':<14}{cells}")
    return "\n".join(lines) + "\n"


def _csv(fields: tuple[str, ...], rows: list[dict[str, object]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
