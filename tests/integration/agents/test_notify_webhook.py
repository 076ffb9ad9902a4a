"""Incident notifications to a real local webhook receiver, from a real incidents topic."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
import pytest

from agents.notify_webhook import WebhookChannel
from app.incident_records import SKIPPED
from app.notify.records import parse_incident
from app.notify.signing import verify
from app.notify.status import FAILING, NOTIFICATIONS, PENDING, notification_problems
from app.notify.text import slack_text
from tests.support.notifier import (
    Receiver,
    burst,
    delivery_id,
    drained,
    incident,
    produce_incidents,
    running,
    until,
)

SECRET = "s3cret-for-tests"
NewTopic = Callable[..., Awaitable[str]]


async def test_each_open_and_resolve_is_posted_once_signed_with_a_slack_text(
    kafka_bootstrap: str, new_topic: NewTopic, tmp_path: Path
) -> None:
    topic = await new_topic(partitions=2, prefix="incidents")
    records = [*burst("P0036"), *burst("P0042")]
    aborted = [incident("P0099", "opened", 0)]
    await produce_incidents(kafka_bootstrap, topic, [*records, b"not an incident"], aborted)
    notified = [r for r in records if r["event"] != "updated"]
    skipped_before = SKIPPED.get("notifier")
    receiver = await Receiver().start()
    group = "notifier-once"
    try:
        channel = WebhookChannel(receiver.url, SECRET)
        async with running(kafka_bootstrap, topic, [channel], tmp_path, group):
            await until(lambda: len(receiver.delivered()) >= len(notified), "all delivered")
            await until(lambda: drained(kafka_bootstrap, group, topic), "all committed")
        # Started again on the same group: everything is committed, nothing comes again.
        async with running(kafka_bootstrap, topic, [WebhookChannel(receiver.url, SECRET)],
                           tmp_path, group):  # fmt: skip
            await until(lambda: drained(kafka_bootstrap, group, topic), "still committed")
    finally:
        await receiver.stop()

    assert Counter(receiver.delivered()) == Counter(delivery_id(r) for r in notified)
    assert len(receiver.hits) == len(notified)  # no retry was needed, none was made
    assert SKIPPED.get("notifier") == skipped_before + 1
    by_id = {delivery_id(r): r for r in notified}
    for hit in receiver.hits:
        assert verify(hit.body, SECRET, hit.headers["X-Clickstream-Signature"])
        assert hit.headers["Content-Type"] == "application/json"
        body = orjson.loads(hit.body)
        record = by_id[hit.delivery_id]
        assert {k: v for k, v in body.items() if k != "text"} == record
        assert hit.headers["X-Clickstream-Event"] == record["event"]
        assert body["text"] == slack_text(parse_incident(orjson.dumps(record)).record)
    opened = orjson.loads(
        next(h.body for h in receiver.hits if h.delivery_id == "P0036:1764489600000/0")
    )
    assert opened["text"] == (
        ":rotating_light: Flash sale P0036: 140 views, 2 purchases in 10-min window "
        "2025-11-30 08:00\u201308:10 UTC (incident P0036:1764489600000)"
    )
    resolved = orjson.loads(next(h.body for h in receiver.hits if h.delivery_id.endswith("/2")))
    assert resolved["text"].startswith(":white_check_mark: Flash sale P00")
    assert (
        "resolved after 12 min (quiet): peak 180 views, 4 purchases over 3 windows"
        in resolved["text"]
    )


async def test_a_receiver_down_then_up_gets_each_notification_once_in_order(
    kafka_bootstrap: str, new_topic: NewTopic, tmp_path: Path
) -> None:
    topic = await new_topic(partitions=1, prefix="incidents")
    records = [r for p in ("P1", "P2", "P3") for r in burst(p) if r["event"] != "updated"]
    await produce_incidents(kafka_bootstrap, topic, records)
    receiver = Receiver()  # its port is free: connections are refused until it starts
    channel = WebhookChannel(receiver.url)
    group = "notifier-down"
    try:
        async with running(kafka_bootstrap, topic, [channel], tmp_path, group, max_pending=2) as n:
            status = n.lanes[0].status
            await until(lambda: status.failed_attempts >= 5, "five failed attempts")
            # The queue is bounded: two records read, the rest wait in Kafka.
            assert PENDING.get("webhook") == 2 and len(n.lanes[0].items) == 2
            assert FAILING.get("webhook") == 1
            (problem,) = notification_problems()
            assert problem.startswith(
                f"webhook notifications to http://127.0.0.1:{receiver.port} are failing"
            )
            assert "Cannot connect" in problem and "/hook" not in problem
            await receiver.start()
            await until(lambda: len(receiver.delivered()) >= len(records), "all delivered")
            await until(lambda: drained(kafka_bootstrap, group, topic), "all committed")
            assert notification_problems() == [] and FAILING.get("webhook") == 0
    finally:
        await receiver.stop()
    assert receiver.delivered() == [delivery_id(r) for r in records]  # once each, in order


async def test_a_hanging_receiver_is_retried_with_its_timeout_and_reported(
    kafka_bootstrap: str, new_topic: NewTopic, tmp_path: Path
) -> None:
    topic = await new_topic(partitions=1, prefix="incidents")
    record = incident("P7", "opened", 0)
    await produce_incidents(kafka_bootstrap, topic, [record])
    receiver = await Receiver(answer=lambda _id: "hang").start()
    channel = WebhookChannel(receiver.url, timeout=0.3)
    try:
        async with running(kafka_bootstrap, topic, [channel], tmp_path) as notifier:
            await until(lambda: len(receiver.hits) >= 3, "three attempts")
            await until(lambda: notifier.lanes[0].status.failed_attempts >= 2, "two timeouts")
            (problem,) = notification_problems()
            assert "no answer within 0.3 s" in problem
            receiver.release()
            await until(lambda: receiver.delivered() != [], "delivered")
            await until(lambda: notification_problems() == [], "no longer failing")
    finally:
        await receiver.stop()
    # Every attempt carried the same delivery id: a receiver can drop the repeats.
    assert {h.delivery_id for h in receiver.hits} == {delivery_id(record)}


async def test_a_rejection_is_logged_once_and_skipped_a_5xx_is_retried(
    kafka_bootstrap: str, new_topic: NewTopic, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    topic = await new_topic(partitions=1, prefix="incidents")
    bad, flaky, good = (incident(p, "opened", 0) for p in ("Pbad", "Pflaky", "Pgood"))
    await produce_incidents(kafka_bootstrap, topic, [bad, flaky, good])
    seen: Counter[str] = Counter()

    def answer(delivery: str) -> int:
        seen[delivery] += 1
        if delivery == delivery_id(bad):
            return 400
        return 503 if delivery == delivery_id(flaky) and seen[delivery] < 3 else 200

    receiver = await Receiver(answer=answer).start()
    rejected_before = NOTIFICATIONS.get("webhook,rejected")
    group = "notifier-reject"
    try:
        with caplog.at_level(logging.WARNING):
            channel = WebhookChannel(receiver.url)
            async with running(kafka_bootstrap, topic, [channel], tmp_path, group) as notifier:
                await until(lambda: delivery_id(good) in receiver.delivered(), "delivered")
                await until(lambda: drained(kafka_bootstrap, group, topic), "all committed")
                assert notifier.lanes[0].status.rejection is None  # cleared by later deliveries
    finally:
        await receiver.stop()
    assert seen == {delivery_id(bad): 1, delivery_id(flaky): 3, delivery_id(good): 1}
    assert receiver.delivered() == [delivery_id(flaky), delivery_id(good)]
    assert NOTIFICATIONS.get("webhook,rejected") == rejected_before + 1
    rejections = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert len(rejections) == 1 and "HTTP 400: bad payload" in rejections[0], rejections
