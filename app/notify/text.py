"""What a person reads about an incident: one headline, a Slack `text`, an email subject.

Example headlines (times are event time, UTC; the duration is the burst's span, from its first
qualifying window's start to its latest one's end):

    Flash sale P0036: 140 views, 2 purchases in 10-min window 2026-11-30 08:00-08:10 UTC
    (incident P0036:1764489600000)
    Flash sale P0036 resolved after 25 min (quiet): peak 180 views, 4 purchases over 16
    windows, 2026-11-30 08:00-08:25 UTC (incident P0036:1764489600000)

(the dash between the times is an en dash, U+2013).

Ids are shown with control and invisible format characters as escapes (as on the console);
Slack's text additionally escapes `&`, `<` and `>`, so that a product id such as `<!channel>`
cannot ping anyone.
"""

from __future__ import annotations

from datetime import datetime

from app.console_text import escape_control
from app.notify.records import IncidentRecord, moment

_DASH = "\N{EN DASH}"
_EMOJI = {"opened": ":rotating_light:", "resolved": ":white_check_mark:"}
_RESOLUTION = {"quiet": "quiet", "purchases": "purchases caught up"}


def _clock(at: datetime) -> str:
    return at.strftime("%H:%M" if at.second == 0 and at.microsecond == 0 else "%H:%M:%S")


def time_range(start: datetime, end: datetime) -> str:
    """`2026-11-30 08:00-08:10 UTC` (en dash), with the end's date when it is another day."""
    tail = _clock(end) if end.date() == start.date() else f"{end.date()} {_clock(end)}"
    return f"{start.date()} {_clock(start)}{_DASH}{tail} UTC"


def minutes(seconds: float) -> str:
    """A duration for people: `25 min`, `2 h 5 min`, `40 s`."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    whole = round(seconds / 60)
    return f"{whole} min" if whole < 60 else f"{whole // 60} h {whole % 60} min"


def _counts(record: IncidentRecord) -> str:
    parts = []
    if record.peak_views is not None:
        parts.append(f"{record.peak_views} views")
    if record.purchases is not None:
        parts.append(f"{record.purchases} purchase{'' if record.purchases == 1 else 's'}")
    return ", ".join(parts)


def _span(record: IncidentRecord) -> tuple[datetime, datetime] | None:
    start, end = moment(record.first_window_start), moment(record.latest_window_end)
    return None if start is None or end is None or end < start else (start, end)


def _opened(record: IncidentRecord, product: str) -> str:
    text = f"Flash sale {product}"
    counts = _counts(record)
    text += f": {counts}" if counts else " opened"
    start, end = moment(record.latest_window_start), moment(record.latest_window_end)
    if start is not None and end is not None and end > start:
        length = minutes((end - start).total_seconds())
        text += f" in {length.replace(' min', '-min')} window {time_range(start, end)}"
    return text


def _resolved(record: IncidentRecord, product: str) -> str:
    span = _span(record)
    text = f"Flash sale {product} resolved"
    if span is not None:
        text += f" after {minutes((span[1] - span[0]).total_seconds())}"
    if record.resolution is not None:
        reason = _RESOLUTION.get(record.resolution, escape_control(record.resolution))
        text += f" ({reason})"
    details = _counts(record)
    if details:
        text += f": peak {details}"
    if record.windows is not None:
        text += f" over {record.windows} window{'' if record.windows == 1 else 's'}"
    if span is not None:
        text += f", {time_range(*span)}"
    return text


def headline(record: IncidentRecord) -> str:
    """One line saying what happened, ending with the incident id."""
    product = escape_control(record.product_id)
    if record.event == "resolved":
        text = _resolved(record, product)
    elif record.event == "opened":
        text = _opened(record, product)
    else:
        text = f"Flash sale {product} updated: {_counts(record) or 'no counts'}"
    return f"{text} (incident {escape_control(record.incident_id)})"


def slack_escape(text: str) -> str:
    """`text` safe as Slack mrkdwn: `&`, `<`, `>` as entities (no links, no mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(record: IncidentRecord) -> str:
    """The webhook's `text`: an emoji code, then the escaped headline."""
    emoji = _EMOJI.get(record.event, ":information_source:")
    return f"{emoji} {slack_escape(headline(record))}"


def email_subject(record: IncidentRecord) -> str:
    """`Flash sale P0036 opened: 140 views, 2 purchases` or `... resolved after 25 min`."""
    product = escape_control(record.product_id)
    if record.event == "resolved":
        span = _span(record)
        after = "" if span is None else f" after {minutes((span[1] - span[0]).total_seconds())}"
        return f"Flash sale {product} resolved{after}"
    counts = _counts(record)
    return f"Flash sale {product} {record.event}" + (f": {counts}" if counts else "")


def _window(start: str | None, end: str | None) -> str | None:
    first, last = moment(start), moment(end)
    return None if first is None or last is None else time_range(first, last)


def email_body(record: IncidentRecord) -> str:
    """The plain-text email: the headline, then every field a person may want, one a line."""
    views_rule = purchases_rule = ""
    if record.views_threshold is not None:
        views_rule = f" (alerts above {record.views_threshold})"
    if record.purchases_threshold is not None:
        purchases_rule = f" (alerts below {record.purchases_threshold})"
    rows = [
        ("incident", escape_control(record.incident_id)),
        ("event", f"{record.event} (record {record.sequence} of this incident)"),
        ("product", escape_control(record.product_id)),
        ("first window", _window(record.first_window_start, record.first_window_end)),
        ("latest window", _window(record.latest_window_start, record.latest_window_end)),
        ("windows", record.windows),
        ("peak views", None if record.peak_views is None else f"{record.peak_views}{views_rule}"),
        ("purchases", None if record.purchases is None else f"{record.purchases}{purchases_rule}"),
        ("opened at", record.opened_at),
        ("resolved at", record.resolved_at),
        ("resolution", None if record.resolution is None else escape_control(record.resolution)),
    ]
    lines = [f"{name:<14} {value}" for name, value in rows if value is not None]
    return "\n".join([headline(record), "", *lines, ""])
