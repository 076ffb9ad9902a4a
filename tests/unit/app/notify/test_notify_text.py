"""What people read: the headline, the Slack text, the email, and the webhook signature."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from app.notify.records import IncidentRecord, parse_incident
from app.notify.signing import signature, verify
from app.notify.text import email_subject, headline, minutes, slack_text, time_range
from tests.support.incident_record import OPENED

RESOLVED = {**OPENED, "event": "resolved", "sequence": 5, "status": "resolved",
            "latest_window_start": "2025-11-30T08:15:00Z", "latest_window_end": "2025-11-30T08:25:00Z",
            "windows": 16, "peak_views": 180, "purchases": 4,
            "resolved_at": "2025-11-30T08:36:00Z", "resolution": "purchases"}  # fmt: skip


def record(**fields: object) -> IncidentRecord:
    return parse_incident(orjson.dumps({**OPENED, **fields})).record


def test_an_open_reads_as_one_line_with_its_window_and_id() -> None:
    assert headline(record()) == (
        "Flash sale P0036: 140 views, 2 purchases in 10-min window "
        "2025-11-30 08:00\u201308:10 UTC (incident P0036:1764489600000)"
    )
    assert slack_text(record()).startswith(":rotating_light: Flash sale P0036: 140 views")
    assert email_subject(record()) == "Flash sale P0036 opened: 140 views, 2 purchases"


def test_a_resolve_says_how_long_and_why() -> None:
    resolved = record(**RESOLVED)
    assert headline(resolved) == (
        "Flash sale P0036 resolved after 25 min (purchases caught up): peak 180 views, "
        "4 purchases over 16 windows, 2025-11-30 08:00\u201308:25 UTC "
        "(incident P0036:1764489600000)"
    )
    assert slack_text(resolved).startswith(":white_check_mark: ")
    assert email_subject(resolved) == "Flash sale P0036 resolved after 25 min"


def test_slack_text_cannot_mention_or_link_and_control_characters_are_escaped() -> None:
    text = slack_text(record(product_id="<!channel> & \u202etxt.exe\x1b[2J"))
    assert "<!channel>" not in text and "&lt;!channel&gt; &amp; \\u202etxt.exe\\x1b[2J" in text


def test_times_and_durations_for_people() -> None:
    late = datetime(2025, 11, 30, 23, 55, tzinfo=UTC)
    early = datetime(2025, 12, 1, 0, 5, 30, tzinfo=UTC)
    assert time_range(late, early) == "2025-11-30 23:55\u20132025-12-01 00:05:30 UTC"
    assert [minutes(s) for s in (40, 600, 7500)] == ["40 s", "10 min", "2 h 5 min"]


def test_the_signature_is_the_hmac_of_the_exact_body() -> None:
    body = b'{"text": "x"}'
    header = signature(body, "secret")
    assert header == "sha256=f1544cc4c14e0bcbd123f851913a245df646250f883f64c61a78b7bdf99d8404"
    assert verify(body, "secret", header)
    assert not verify(body + b" ", "secret", header) and not verify(body, "other", header)
    assert not verify(body, "secret", None)
