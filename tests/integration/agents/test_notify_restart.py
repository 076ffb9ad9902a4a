"""kill -9 of the notifier after deliveries and before their commit: no repeat, no loss."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from app.kafka.broker import free_port
from app.notify.ledger import DeliveryLedger, ledger_path
from tests.support.notifier import (
    Receiver,
    burst,
    delivery_id,
    drained,
    produce_incidents,
    until,
)
from tests.support.notify_process import RECIPIENT
from tests.support.smtp_server import start_server
from tests.support.worker import group_lag

NewTopic = Callable[..., Awaitable[str]]
ROOT = Path(__file__).resolve().parents[3]


def start_notifier(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.support.notify_process", *args],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


async def test_kill_9_between_delivery_and_commit_repeats_nothing_and_loses_nothing(
    kafka_bootstrap: str, new_topic: NewTopic, tmp_path: Path
) -> None:
    topic = await new_topic(partitions=1, prefix="incidents")
    records = [r for p in ("P1", "P2") for r in burst(p) if r["event"] != "updated"]
    ids = [delivery_id(r) for r in records]
    await produce_incidents(kafka_bootstrap, topic, records)
    # The webhook takes three and hangs on the fourth; no mail server yet, so the email lane
    # owes every record and nothing can be committed.
    receiver = await Receiver(answer=lambda d: "hang" if d == ids[-1] else 200).start()
    smtp_port, group, state, log = (
        free_port(),
        "notifier-kill",
        tmp_path / "state",
        tmp_path / "n.log",
    )
    args = [kafka_bootstrap, topic, group, str(state), receiver.url, str(smtp_port)]
    webhook_ledger = ledger_path(state, "webhook", topic, 0)
    controller = None
    process = start_notifier(args, log)
    try:
        await until(lambda: any(h.delivery_id == ids[-1] for h in receiver.hits), "4th sent")
        await until(lambda: webhook_ledger.exists() and len(DeliveryLedger(webhook_ledger)) == 3,
                    "three recorded")  # fmt: skip
        process.kill()
        await asyncio.to_thread(process.wait)
        assert receiver.delivered() == ids[:3]
        lag = await group_lag(kafka_bootstrap, group, topic)
        assert lag is not None and lag >= len(records), "the kill came after a commit"

        controller, inbox = start_server(smtp_port)
        receiver.release()
        process = start_notifier(args, log)
        await until(lambda: len(inbox.messages) >= len(records), "all mailed")
        await until(lambda: drained(kafka_bootstrap, group, topic), "all committed")
    finally:
        process.kill()
        await asyncio.to_thread(process.wait)
        if controller is not None:
            controller.stop()
        await receiver.stop()
    assert Counter(receiver.delivered()) == Counter(ids), log.read_text()[-3000:]
    mailed = [m["X-Clickstream-Delivery"] for m in inbox.messages]
    assert Counter(mailed) == Counter(ids)
    assert all(m["To"] == RECIPIENT for m in inbox.messages)
