"""Who the report is mailed to and how: mail settings checked up front, and the message itself."""

from __future__ import annotations

from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from app.mail_config import MailConfig
from batch.files import RenderedReport
from batch.render import subject

# Python folds some subjects just over 78 characters as "Subject:\n <text>", which its own
# parser reads back with a leading space; RFC 5322's hard limit of 998 avoids the fold.
_POLICY = policy.default.clone(max_line_length=998)
# The body encoders take their line length from the policy too; RFC 2045 caps QP lines at 76.
_BODY_POLICY = policy.default.clone(max_line_length=76)


def build_message(report: RenderedReport, config: MailConfig, now: datetime) -> EmailMessage:
    """One multipart/alternative message: the text part first, then the HTML part.

    Both parts are quoted-printable UTF-8, so what goes on the wire is 7-bit ASCII in lines
    of at most 76 characters whatever the report holds: no raw NUL or other control byte,
    no 8-bit data for a server without 8BITMIME, no HTML line over the 998 limit. (The
    renderers already show control characters in ids as escapes, see `batch.render.shown`.)
    """
    message = EmailMessage(policy=_BODY_POLICY)
    message["Subject"] = subject(report.summary)
    message["From"] = config.sender
    message["To"] = ", ".join(config.recipients)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid("daily-summary", domain=config.sender.rpartition("@")[2])
    message["X-Clickstream-Report-Date"] = report.summary.date.isoformat()
    message.set_content(report.text, cte="quoted-printable")
    message.add_alternative(report.html, subtype="html", cte="quoted-printable")
    message.policy = _POLICY  # serialisation follows the top-level policy: headers unfolded
    return message
