"""Inline styles shared by the parts of the report email (no <style>: many clients drop it)."""

from __future__ import annotations

FONT = "font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;"
TEXT = f"{FONT}color:#1f2937;font-size:14px;line-height:20px;"
MUTED = f"{FONT}color:#6b7280;font-size:12px;line-height:16px;"
H2 = f"{FONT}color:#111827;font-size:16px;font-weight:bold;margin:24px 0 8px 0;"
CELL = f"{TEXT}padding:4px 6px;border-bottom:1px solid #e5e7eb;"
NUM = f"{CELL}text-align:right;white-space:nowrap;"
UP, DOWN = "#047857", "#b91c1c"  # trend arrows: green up, red down
ALARM = "#b91c1c"  # the reconciliation banner when the stream and the backtest disagree


def table(rows: list[str]) -> str:
    """Rows in a full-width, collapsed table."""
    return (
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
        'style="border-collapse:collapse;">' + "".join(rows) + "</table>"
    )
