"""The daily summary as JSON and as plain text for people (the email's text part)."""

from __future__ import annotations

import json
import textwrap
import unicodedata
from datetime import timedelta

from batch.hourly_chart import hourly_table_text
from batch.summary import DailySummary, Trend

FUNNEL_DEFINITION = (
    "A user counts at a step if they had at least one event of that kind on the day and were "
    "counted at the step before; the order of their events within the day is not considered."
)
_NO_CATEGORY = "(no category)"


def render_json(summary: DailySummary) -> str:
    return json.dumps(summary.as_dict(), indent=2, ensure_ascii=False) + "\n"


def subject(summary: DailySummary) -> str:
    """The email subject: the date and the day's totals; first a warning on a day whose
    stream alerts disagree with the backtest's."""
    recon = summary.reconciliation
    warning = "[alert mismatch] " if recon is not None and recon.mismatches else ""
    return (
        f"{warning}Clickstream daily summary {summary.date.isoformat()}: "
        f"{summary.total_events:,} events, {summary.unique_users:,} users, "
        f"{summary.buyers:,} buyers"
    )


def shown(value: str) -> str:
    """A product id or category as people see it: control characters as `\\xNN` escapes.

    Ids come from producers and may hold anything. Every character of Unicode category Cc
    (C0 controls, DEL, C1 controls; all below U+00A0) is written as a backslash, `x` and two
    lowercase hex digits, so a NUL in `p<NUL>nul` reads `p\\x00nul` in the text and HTML
    reports and in the email; nothing else changes (a literal backslash stays as it is). The
    JSON report keeps the exact value, escaped as JSON requires.
    """
    if value.isprintable():
        return value
    return "".join(
        f"\\x{ord(char):02x}" if unicodedata.category(char) == "Cc" else char for char in value
    )


def rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} %"


def change_text(change: float | None) -> str:
    """A trend's relative change: an arrow and a signed percentage, or n/a."""
    if change is None:
        return "n/a"
    if change > 0:
        return f"\u25b2 +{change:.1f} %"
    if change < 0:
        return f"\u25bc {change:.1f} %"
    return "= 0.0 %"


def figure_text(trend: Trend, value: float | None) -> str:
    if value is None:
        return "n/a"
    return rate(value) if trend.is_rate else f"{int(value):,}"


def category_name(category: str | None) -> str:
    return _NO_CATEGORY if category is None else shown(category)


def render_text(summary: DailySummary) -> str:
    hours = (summary.period_end - summary.period_start).total_seconds() / 3600
    lines = [
        *_mismatch_lines(summary),
        f"Clickstream daily summary for {summary.date.isoformat()} ({summary.timezone})",
        f"Period: {summary.period_start.isoformat()} to {summary.period_end.isoformat()} "
        f"({hours:g} hours)",
        "",
        "Events",
        f"  {'total':<16}{summary.total_events:>12,}",
        *(f"  {name:<16}{count:>12,}" for name, count in summary.events_by_type.items()),
        "",
        "Users",
        f"  {'unique users':<16}{summary.unique_users:>12,}",
        f"  {'buyers':<16}{summary.buyers:>12,}  ({rate(summary.buyer_rate)} of users)",
        f"  {'window shoppers':<16}{summary.window_shoppers:>12,}  (events, no purchase)",
        *_trend_lines(summary),
        "",
        "Top 5 viewed products",
        *(
            f"  {rank}. {shown(p.product_id):<20}{p.views:>10,} views"
            for rank, p in enumerate(summary.top_5_viewed_products, start=1)
        ),
        "",
        "Conversion by category (purchases / views)",
        f"  {'category':<20}{'views':>10}{'purchases':>11}{'conversion':>12}",
        *(
            f"  {category_name(c.category):<20}{c.views:>10,}{c.purchases:>11,}"
            f"{rate(c.conversion_rate):>12}"
            for c in summary.conversion_by_category
        ),
        "",
        *_funnel_lines(summary),
        *_hourly_lines(summary),
        "",
        f"Flash-sale alerts: {summary.flash_sale_alerts.count:,}",
        *(
            f"  {shown(p.product_id):<20}{p.alerts:>6,} alerts; views when alerted "
            f"{_count(p.views_at_alert)}, peak views {_count(p.peak_views)} (final)"
            for p in summary.flash_sale_alerts.top_products
        ),
        *([f"  {summary.reconciliation.headline()}"] if summary.reconciliation else []),
        "",
        f"Generated at {summary.generated_at.isoformat()}",
    ]
    return "\n".join(lines) + "\n"


def _count(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def _mismatch_lines(summary: DailySummary) -> list[str]:
    """First of all, when the stream's alerts disagree with the backtest's."""
    recon = summary.reconciliation
    if recon is None or not recon.mismatches:
        return []
    details = [f"  {shown(line)}" for line in recon.details()]
    return [f"!! {recon.headline()}", *details, ""]


def _trend_lines(summary: DailySummary) -> list[str]:
    if not summary.trends:
        return []
    before = (summary.date - timedelta(days=1)).isoformat()
    week = (summary.date - timedelta(days=7)).isoformat()
    lines = ["", f"Trends{'':<10}{'this day':>12}  {'vs ' + before:<16}vs {week}"]
    for trend in summary.trends:
        lines.append(
            f"  {trend.name:<14}{figure_text(trend, trend.value):>12}  "
            f"{change_text(trend.change(trend.value, trend.previous_day)):<16}"
            f"{change_text(trend.change(trend.value, trend.week_ago)):<16}".rstrip()
        )
    return lines


def _hourly_lines(summary: DailySummary) -> list[str]:
    if not summary.hourly_traffic:
        return []
    return ["", *hourly_table_text(summary.hourly_traffic, summary.timezone)]


def _funnel_lines(summary: DailySummary) -> list[str]:
    funnel = summary.funnel
    return [
        "Funnel (users)",
        f"  {'viewed':<28}{funnel.viewed:>10,}",
        f"  {'of those, added to cart':<28}{funnel.added_to_cart:>10,}"
        f"  ({rate(funnel.view_to_cart_rate)} of viewed)",
        f"  {'of those, purchased':<28}{funnel.purchased:>10,}"
        f"  ({rate(funnel.cart_to_purchase_rate)} of added, "
        f"{rate(funnel.view_to_purchase_rate)} of viewed)",
        *textwrap.wrap(FUNNEL_DEFINITION, 76, initial_indent="  ", subsequent_indent="  "),
    ]
