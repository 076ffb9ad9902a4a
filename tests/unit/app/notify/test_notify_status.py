"""Channel health on /health and /metrics, and metrics with two labels."""

from __future__ import annotations

from app import metrics
from app.notify.status import FAILING, ChannelStatus, notification_problems, track, untrack


def test_a_failing_channel_is_one_problem_until_it_delivers() -> None:
    status = ChannelStatus("webhook", "https://hooks.example.com")
    track(status)
    try:
        assert notification_problems() == [] and FAILING.get("webhook") == 0
        status.set_pending(3)
        status.attempt_failed("no answer within 10 s", 1_764_489_600.0)
        status.attempt_failed("no answer within 10 s", 1_764_489_610.0)
        assert notification_problems() == [
            "webhook notifications to https://hooks.example.com are failing: no answer within "
            "10 s (2 attempts since 2025-11-30T08:00:00Z; 3 waiting, retried)"
        ]
        assert FAILING.get("webhook") == 1
        status.delivered()
        assert notification_problems() == [] and FAILING.get("webhook") == 0
        status.rejected("HTTP 404: not found")
        (problem,) = notification_problems()
        assert "were rejected: HTTP 404: not found (skipped" in problem
    finally:
        untrack(status)
    assert notification_problems() == [] and FAILING.get("webhook") == 0


def test_metrics_with_two_labels_render_both_and_one_label_is_unchanged() -> None:
    metrics.NOTIFICATIONS.inc(1, "test-webhook", "delivered")
    metrics.NOTIFICATIONS.inc(2, "test-email", "rejected")
    metrics.NOTIFICATIONS_PENDING.set(1, 'a,b"')
    lines = metrics.render().decode().splitlines()
    assert 'clickstream_notifications_total{channel="test-email",outcome="rejected"} 2.0' in lines
    assert (
        'clickstream_notifications_total{channel="test-webhook",outcome="delivered"} 1.0' in lines
    )
    assert 'clickstream_notifications_pending{channel="a,b\\""} 1.0' in lines
