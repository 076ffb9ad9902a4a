"""The hourly traffic chart: views, carts and purchases per local hour, as table cells and text.

Three small charts, one per kind, each scaled to its own busiest hour (its count is printed
beside the title): on one scale purchases would be a flat line under the views. Each hour is
a table cell whose coloured inner cell is as tall as the hour's share of that maximum, in
whole pixels, at least 1 px for any event: no script, no SVG, no image, so every mail client
draws it. Each bar carries a title with the exact figure and `data-` attributes naming its
series and hour, for accessibility tools and for the rendering test.
"""

from __future__ import annotations

from html import escape

from batch.html_style import FONT, MUTED
from batch.summary import HourlyTraffic

CHART_PX = 60
SERIES = (
    ("views", "Views", "#4f46e5"),
    ("add_to_cart", "Add to cart", "#d97706"),
    ("purchases", "Purchases", "#059669"),
)
_LABEL_EVERY = 3


def bar_height(value: int, largest: int) -> int:
    """Pixels of a bar: its share of the largest, rounded, at least 1 for a non-zero value."""
    if value <= 0 or largest <= 0:
        return 0
    return max(1, round(CHART_PX * value / largest))


def hourly_chart_html(hours: tuple[HourlyTraffic, ...], timezone: str) -> str:
    if not hours:
        return f'<p style="{MUTED}">No events.</p>'
    charts = [_one_chart(hours, field, title, colour, timezone) for field, title, colour in SERIES]
    return "\n".join(charts)


def _one_chart(
    hours: tuple[HourlyTraffic, ...], field: str, title: str, colour: str, timezone: str
) -> str:
    values = [int(getattr(h, field)) for h in hours]
    largest = max(values)
    width = f"{100 / len(hours):.3f}%"
    bars, labels = [], []
    for index, (hour, value) in enumerate(zip(hours, values, strict=True)):
        height = bar_height(value, largest)
        tip = escape(f"{hour.label}: {value:,} {title.lower()}")
        inner = (
            f'<table role="presentation" width="100%" cellpadding="0" cellspacing="0">'
            f'<tr><td height="{height}" bgcolor="{colour}" data-series="{field}" '
            f'data-hour="{index}" data-value="{value}" title="{tip}" style="height:{height}px;'
            f'background:{colour};font-size:0;line-height:0;">&nbsp;</td></tr></table>'
            if height
            else ""
        )
        bars.append(
            f'<td width="{width}" height="{CHART_PX}" valign="bottom" title="{tip}" '
            f'style="height:{CHART_PX}px;vertical-align:bottom;padding:0 1px;">{inner}</td>'
        )
        shown = escape(hour.label[:2]) if index % _LABEL_EVERY == 0 else "&nbsp;"
        labels.append(f'<td align="center" style="{MUTED}font-size:10px;">{shown}</td>')
    heading = (
        f'<p style="{FONT}color:#374151;font-size:13px;font-weight:bold;margin:12px 0 4px 0;">'
        f'<span style="color:{colour};">&#9632;</span> {escape(title)} per hour '
        f'<span style="{MUTED}font-weight:normal;">(most in an hour: {largest:,}; '
        f"{escape(timezone)})"
        "</span></p>"
    )
    return (
        f'{heading}<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
        f'style="border-collapse:collapse;table-layout:fixed;border-bottom:1px solid #d1d5db;">'
        f"<tr>{''.join(bars)}</tr></table>"
        f'<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
        f'style="table-layout:fixed;"><tr>{"".join(labels)}</tr></table>'
    )


def hourly_table_text(hours: tuple[HourlyTraffic, ...], timezone: str) -> list[str]:
    """The same figures as text lines, one per hour."""
    lines = [f"Hourly traffic ({timezone})",
             f"  {'hour':<12}{'views':>12}{'add to cart':>13}{'purchases':>11}"]  # fmt: skip
    lines += [f"  {h.label:<12}{h.views:>12,}{h.add_to_cart:>13,}{h.purchases:>11,}" for h in hours]
    return lines
