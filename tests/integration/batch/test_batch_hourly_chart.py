"""The emailed report's hourly chart and trends, rendered by headless Chromium.

The report goes through a real SMTP server; its HTML part is opened in Chromium as a mail
client would show it, and the drawn bars are measured against a recount of the events.
The screenshot is kept (CI_ARTIFACTS) for people to look at.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from app.kafka.broker import free_port
from app.settings import load_settings
from batch.hourly_chart import CHART_PX
from batch.job import ReportJob
from tests.support.batch_data import event_at, write_events_parquet
from tests.support.browser import HeadlessChromium, ensure_chromium, keep_artifact
from tests.support.smtp_server import start_server

DAY = date(2024, 5, 15)
KINDS = ("view", "add_to_cart", "purchase")
SERIES = {"view": "views", "add_to_cart": "add_to_cart", "purchase": "purchases"}


def _day_events(day: date, scale: int, seed: int) -> list[dict[str, object]]:
    """A day whose traffic rises to an evening peak; 04:00 to 05:00 has no events at all."""
    rng = random.Random(seed)
    events = []
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    for hour in range(24):
        if hour == 4:
            continue
        weight = 1 + (hour if hour <= 20 else 40 - hour)
        for n in range(scale * weight):
            kind = rng.choices(KINDS, [80, 15, 5 + (hour == 20) * 20])[0]
            moment = start + timedelta(hours=hour, seconds=rng.randrange(3600))
            events.append(event_at(moment, f"u{rng.randrange(500)}", kind,
                                   f"p{rng.randrange(30)}", f"{day}-{hour}-{n}"))  # fmt: skip
    return events


def _recount_hours(events: list[dict[str, object]], day: date) -> dict[str, Counter[int]]:
    counts: dict[str, Counter[int]] = {series: Counter() for series in SERIES.values()}
    for event in events:
        moment = datetime.fromisoformat(str(event["timestamp"]))
        if moment.date() == day:
            counts[SERIES[str(event["event_type"])]][moment.hour] += 1
    return counts


_BARS = """[...document.querySelectorAll('td[data-series]')].map(td => {
    const box = td.getBoundingClientRect();
    return {series: td.dataset.series, hour: +td.dataset.hour, height: box.height, x: box.left};
})"""


@pytest.mark.slow
async def test_the_hourly_chart_draws_each_hour_to_scale_in_chromium(tmp_path: Path) -> None:
    chromium = ensure_chromium()
    today = _day_events(DAY, 6, seed=1)
    yesterday = _day_events(DAY - timedelta(days=1), 4, seed=2)
    write_events_parquet(today + yesterday, tmp_path / "data")
    port = free_port()
    controller, inbox = start_server(port)
    settings = load_settings(data_dir=tmp_path / "data", smtp_host="127.0.0.1", smtp_port=port,
                             email_from="r@shop.example", email_to="ops@shop.example")  # fmt: skip
    try:
        outcome = ReportJob(settings).run(DAY, send=True)
    finally:
        controller.stop()
    assert outcome.status == "sent", outcome.detail
    (message,) = inbox.messages
    html = str(message.get_body(("html",)).get_content())  # type: ignore[union-attr]
    assert "<script" not in html and "<svg" not in html and "<img" not in html
    page_file = tmp_path / "email.html"
    page_file.write_text(html, encoding="utf-8")

    async with HeadlessChromium(chromium, tmp_path / "chromium", width=700, height=2600) as page:
        await page.goto(page_file.as_uri())
        await page.wait_for("document.querySelectorAll('td[data-series]').length > 0", "the chart")
        bars = await page.evaluate(_BARS)
        trend = await page.evaluate("document.querySelector('tr[data-trend=\"events\"]').innerText")
        await page.send("Runtime.evaluate", expression="document.querySelector("
                        "'td[data-series]').scrollIntoView({block: 'center'})")  # fmt: skip
        shot = await page.screenshot(tmp_path / "report-hourly-chart.png")
    keep_artifact(shot)
    assert shot.stat().st_size > 10_000

    expected = _recount_hours(today, DAY)
    for series, counts in expected.items():
        drawn = {bar["hour"]: bar for bar in bars if bar["series"] == series}
        assert set(drawn) == {hour for hour in range(24) if counts[hour]}, series
        largest = max(counts.values())
        for hour, bar in drawn.items():
            assert abs(bar["height"] - CHART_PX * counts[hour] / largest) <= 1, (series, hour)
            assert bar["height"] >= 1
        lefts = [drawn[hour]["x"] for hour in sorted(drawn)]
        assert lefts == sorted(lefts) and len(set(lefts)) == len(lefts)  # hours left to right
    assert 4 not in {bar["hour"] for bar in bars}
    # 6 events per weight unit today against 4 yesterday: events rose by half.
    previous = len(yesterday)
    change = round(100 * (len(today) - previous) / previous, 1)
    assert f"\u25b2 +{change:.1f} %" in trend
    assert "n/a" in trend  # nothing a week earlier
