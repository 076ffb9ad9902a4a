"""The daily summary as email-safe HTML: inline styles, tables, bar charts drawn with tables.

Bars are table cells with a background colour rather than SVG or images: Gmail strips inline
SVG, Outlook for Windows does not draw it, and remote images are blocked by default. Tables
render the same everywhere, need no external assets, and shrink to a phone's width.
"""

from __future__ import annotations

from html import escape

from batch.hourly_chart import hourly_chart_html
from batch.html_checks import alerts_table, mismatch_banner, trends_table
from batch.html_style import CELL as _CELL
from batch.html_style import FONT as _FONT
from batch.html_style import H2 as _H2
from batch.html_style import MUTED as _MUTED
from batch.html_style import NUM as _NUM
from batch.html_style import table as _table
from batch.render import FUNNEL_DEFINITION, category_name, rate, shown, subject
from batch.summary import DailySummary

_BAR_COLOURS = {"views": "#4f46e5", "funnel": "#059669"}


def render_html(summary: DailySummary) -> str:
    title = escape(subject(summary))
    sections = [
        mismatch_banner(summary.reconciliation),
        _header(summary),
        _tiles(summary),
        _section("Trends", trends_table(summary)) if summary.trends else "",
        _section("Top 5 viewed products", _bars(_top_rows(summary), "views")),
        _section("Funnel (users)", _bars(_funnel_rows(summary), "funnel"))
        + f'<p style="{_MUTED}margin:4px 0 0 0;">{escape(FUNNEL_DEFINITION)}</p>',
        _section("Hourly traffic", hourly_chart_html(summary.hourly_traffic, summary.timezone)),
        _section("Conversion by category (purchases / views)", _categories(summary)),
        _section(f"Flash-sale alerts: {summary.flash_sale_alerts.count:,}", alerts_table(summary)),
        f'<p style="{_MUTED}margin:24px 0 0 0;">Generated at '
        f"{escape(summary.generated_at.isoformat())}</p>",
    ]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n</head>\n"
        '<body style="margin:0;padding:0;background:#f3f4f6;">\n'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        'style="background:#f3f4f6;"><tr><td align="center" style="padding:12px 8px;">\n'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        'style="max-width:600px;background:#ffffff;border-radius:6px;">'
        f'<tr><td style="padding:16px;">\n{body}\n</td></tr></table>\n'
        "</td></tr></table>\n</body>\n</html>\n"
    )


def _header(summary: DailySummary) -> str:
    return (
        f'<h1 style="{_FONT}color:#111827;font-size:20px;line-height:26px;margin:0;">'
        f"Clickstream daily summary</h1>\n"
        f'<p style="{_MUTED}margin:4px 0 16px 0;">{escape(summary.date.isoformat())} '
        f"({escape(summary.timezone)})</p>"
    )


def _tiles(summary: DailySummary) -> str:
    tiles = [
        ("Events", f"{summary.total_events:,}"),
        ("Unique users", f"{summary.unique_users:,}"),
        ("Buyers", f"{summary.buyers:,} ({rate(summary.buyer_rate)})"),
        ("Window shoppers", f"{summary.window_shoppers:,}"),
    ]
    cells = [
        f'<td width="50%" valign="top" style="padding:6px;">'
        f'<div style="{_MUTED}">{escape(label)}</div>'
        f'<div style="{_FONT}color:#111827;font-size:20px;line-height:26px;font-weight:bold;">'
        f"{escape(value)}</div></td>"
        for label, value in tiles
    ]
    rows = "".join(f"<tr>{cells[i]}{cells[i + 1]}</tr>" for i in range(0, len(cells), 2))
    return f'<table role="presentation" width="100%" cellpadding="0" cellspacing="0">{rows}</table>'


def _section(heading: str, content: str) -> str:
    return f'<h2 style="{_H2}">{escape(heading)}</h2>\n{content}'


def _top_rows(summary: DailySummary) -> list[tuple[str, int, str]]:
    return [(shown(p.product_id), p.views, f"{p.views:,}") for p in summary.top_5_viewed_products]


def _funnel_rows(summary: DailySummary) -> list[tuple[str, int, str]]:
    funnel = summary.funnel
    return [
        ("Viewed", funnel.viewed, f"{funnel.viewed:,}"),
        ("Added to cart", funnel.added_to_cart,
         f"{funnel.added_to_cart:,} ({rate(funnel.view_to_cart_rate)})"),
        ("Purchased", funnel.purchased,
         f"{funnel.purchased:,} ({rate(funnel.cart_to_purchase_rate)})"),
    ]  # fmt: skip


def _bars(rows: list[tuple[str, int, str]], kind: str) -> str:
    """One table row per bar: label, a bar as wide as its share of the largest, the figure."""
    if not rows:
        return f'<p style="{_MUTED}">None.</p>'
    largest = max(value for _, value, _ in rows) or 1
    colour = _BAR_COLOURS[kind]
    out = []
    for label, value, figure in rows:
        width = max(1, round(100 * value / largest)) if value else 0
        bar = (
            f'<table role="presentation" width="{width}%" cellpadding="0" cellspacing="0">'
            f'<tr><td height="14" bgcolor="{colour}" style="background:{colour};height:14px;'
            f'font-size:0;line-height:0;border-radius:2px;">&nbsp;</td></tr></table>'
            if width
            else ""
        )
        out.append(
            f'<tr><td style="{_CELL}width:30%;word-break:break-all;">{escape(label)}</td>'
            f'<td style="{_CELL}width:45%;">{bar}</td>'
            f'<td style="{_NUM}">{escape(figure)}</td></tr>'
        )
    return _table(out)


def _categories(summary: DailySummary) -> str:
    head = (
        f'<tr><th align="left" style="{_CELL}">Category</th><th align="right" style="{_NUM}">'
        f'Views</th><th align="right" style="{_NUM}">Purchases</th>'
        f'<th align="right" style="{_NUM}">Conversion</th></tr>'
    )
    rows = [
        f'<tr><td style="{_CELL}">{escape(category_name(c.category))}</td>'
        f'<td style="{_NUM}">{c.views:,}</td><td style="{_NUM}">{c.purchases:,}</td>'
        f'<td style="{_NUM}">{escape(rate(c.conversion_rate))}</td></tr>'
        for c in summary.conversion_by_category
    ]
    return _table([head, *rows])
