"""The report email's HTML for what the batch side checks: reconciliation, trends, alerts."""

from __future__ import annotations

from datetime import timedelta
from html import escape

from batch.html_style import ALARM, CELL, DOWN, FONT, MUTED, NUM, UP, table
from batch.reconciliation import Reconciliation
from batch.render import change_text, figure_text, shown
from batch.summary import DailySummary


def mismatch_banner(recon: Reconciliation | None) -> str:
    """A red box for the top of the email when the stream and the backtest disagree."""
    if recon is None or not recon.mismatches:
        return ""
    items = "".join(f"<li>{escape(shown(line))}</li>" for line in recon.details())
    return (
        f'<div role="alert" data-reconciliation="mismatch" style="{FONT}color:#ffffff;'
        f"background:{ALARM};border-radius:4px;padding:10px 12px;margin:0 0 16px 0;"
        f'font-size:14px;line-height:20px;"><strong>{escape(recon.headline())}</strong>'
        f'<ul style="margin:6px 0 0 18px;padding:0;">{items}</ul></div>'
    )


def reconciliation_line(recon: Reconciliation | None) -> str:
    if recon is None:
        return ""
    colour = ALARM if recon.mismatches else "#374151"
    return (
        f'<p data-reconciliation="{"mismatch" if recon.mismatches else "clean"}" '
        f'style="{MUTED}color:{colour};margin:8px 0 0 0;">{escape(recon.headline())}</p>'
    )


def trends_table(summary: DailySummary) -> str:
    if not summary.trends:
        return ""
    before = escape((summary.date - timedelta(days=1)).isoformat())
    week = escape((summary.date - timedelta(days=7)).isoformat())
    head = (
        f'<tr><th align="left" style="{CELL}">Figure</th><th align="right" style="{NUM}">'
        f'This day</th><th align="right" style="{NUM}">vs {before}</th>'
        f'<th align="right" style="{NUM}">vs {week}</th></tr>'
    )
    rows = [head]
    for trend in summary.trends:
        cells = [
            _change_cell(trend.change(trend.value, then))
            for then in (trend.previous_day, trend.week_ago)
        ]
        rows.append(
            f'<tr data-trend="{escape(trend.name)}"><td style="{CELL}">{escape(trend.name)}</td>'
            f'<td style="{NUM}">{escape(figure_text(trend, trend.value))}</td>{"".join(cells)}</tr>'
        )
    return table(rows)


def _change_cell(change: float | None) -> str:
    colour = "#6b7280" if not change else UP if change > 0 else DOWN
    return f'<td style="{NUM}color:{colour};">{escape(change_text(change))}</td>'


def alerts_table(summary: DailySummary) -> str:
    products = summary.flash_sale_alerts.top_products
    line = reconciliation_line(summary.reconciliation)
    if not products:
        return f'<p style="{MUTED}">No flash-sale alerts on this day.</p>{line}'
    head = (
        f'<tr><th align="left" style="{CELL}">Product</th>'
        f'<th align="right" style="{NUM}">Alerts</th>'
        f'<th align="right" style="{NUM}">Views when alerted</th>'
        f'<th align="right" style="{NUM}">Peak views (final)</th></tr>'
    )
    rows = [
        f'<tr><td style="{CELL}word-break:break-all;">{escape(shown(p.product_id))}</td>'
        f'<td style="{NUM}">{p.alerts:,}</td><td style="{NUM}">{_count(p.views_at_alert)}</td>'
        f'<td style="{NUM}">{_count(p.peak_views)}</td></tr>'
        for p in products
    ]
    note = (
        f'<p style="{MUTED}margin:4px 0 0 0;">Views when alerted: the count at the view that '
        "crossed the threshold. Peak views: the most any alerted window of the product reached "
        "by its end.</p>"
    )
    return table([head, *rows]) + note + line


def _count(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"
