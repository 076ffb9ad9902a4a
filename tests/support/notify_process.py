"""A notifier in a process of its own, for tests that kill it (`python -m` this module).

    python -m tests.support.notify_process BOOTSTRAP TOPIC GROUP STATE_DIR WEBHOOK_URL SMTP_PORT

Delivers to the webhook and, through SMTP on 127.0.0.1:SMTP_PORT, to oncall@example.com, with
fast retries; runs until killed.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from agents.notify_consumer import IncidentNotifier
from agents.notify_email import EmailChannel
from agents.notify_webhook import WebhookChannel
from app.mail_config import MailConfig
from app.notify.retry import Backoff

RECIPIENT = "oncall@example.com"


def mail_config(port: int) -> MailConfig:
    """Plain SMTP to a test server on 127.0.0.1:`port`, for RECIPIENT."""
    return MailConfig("127.0.0.1", port, None, None, False, False, "clickstream@example.com",
                      (RECIPIENT,))  # fmt: skip


async def main(bootstrap: str, topic: str, group: str, state: str, url: str, port: str) -> None:
    channels = [WebhookChannel(url), EmailChannel(mail_config(int(port)), Path(state) / "outbox")]
    notifier = IncidentNotifier(bootstrap, topic, group, channels, Path(state),
                                backoff=Backoff(first=0.05, cap=0.2))  # fmt: skip
    await notifier.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(main(*sys.argv[1:7]))
