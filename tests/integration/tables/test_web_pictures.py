"""The dashboard's pictures on a real worker and broker, in headless Chromium: open-window top
products, the product page, incidents with sparklines, the pipeline strip, the shop chart and
the report runs, each held to an independent recount of the input this test produced."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from app.kafka.topics import ensure_topic
from app.report_runs import RecipientOutcome, RunLog
from tests.support.browser import HeadlessChromium, ensure_chromium, keep_artifact
from tests.support.kafka import produce
from tests.support.picture_input import (
    MIN,
    QUIET,
    T0,
    VIRAL,
    counted_per_minute,
    incident,
    iso,
    newest_by_id,
    picture_events,
    shop_per_minute,
)  # fmt: skip
from tests.support.web_api import TOKEN, expected_live_windows, expected_top, get, get_ok
from tests.support.window_oracle import WindowOracle, timestamp_ms
from tests.support.worker import Worker, WorkerEnv, wait_drained

LIVE = "document.getElementById('status-pill').dataset.state === 'live'"


async def produce_incidents(bootstrap: str, topic: str, records: list[bytes]) -> None:
    await ensure_topic(bootstrap, topic, 2)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"tx-{topic}")
    await producer.start()
    try:
        async with producer.transaction():
            for value in records:
                await producer.send(topic, value, key=b"k")
    finally:
        await producer.stop()


def incident_records() -> list[dict[str, object]]:
    start = T0 + 20 * MIN
    return [
        incident(QUIET, start, 0),
        incident(
            QUIET,
            start,
            2,
            event="resolved",
            status="resolved",
            windows=3,
            peak_views=140,
            purchases=2,
            latest_window_start=iso(start + 2 * MIN),
            resolved_at="2026-11-30T08:45:00.000Z",
            resolution="quiet",
        ),
        incident(QUIET, start, 1, event="updated", windows=2, peak_views=120),  # read after 2
        incident("pgone", start - 5 * MIN, 0, peak_views=170),
    ]


def write_report_runs(reports: Path, today: date) -> dict[str, str]:
    """Run records of three recent days and their HTML; the statuses the panel must show."""
    log = RunLog(reports / "runs.sqlite3")
    sent, partial, failed = (today - timedelta(days=n) for n in (1, 2, 3))
    at = datetime.now(UTC)
    log.record(sent, "sent", at=at, recipients=[RecipientOutcome("a@example.org", True)])
    log.record(partial, "partial", at=at, recipients=[RecipientOutcome("a@example.org", True),
               RecipientOutcome("b@example.org", False, "550 no")])  # fmt: skip
    log.record(failed, "failed", "smtp down", at=at)
    for day in (sent, partial):
        (reports / f"summary_{day.isoformat()}.html").write_text(f"<h1>report {day}</h1>")
    return {sent.isoformat(): "sent", partial.isoformat(): "partial", failed.isoformat(): "failed"}


async def check_api(base: str, events: list[dict[str, object]], oracle: WindowOracle,
                    produced: list[dict[str, object]]) -> None:  # fmt: skip
    start, ranked = expected_top(oracle, "views", 10)
    body = await get_ok(base, "/api/top?window=open&limit=10", TOKEN)
    open_start, open_ranked = start + oracle.step, []
    rows = sorted(((p, c) for (p, s), c in oracle.windows.items() if s == open_start and c[0]),
                  key=lambda r: (-r[1][0], r[0]))[:10]  # fmt: skip
    open_ranked = [{"rank": n, "product_id": p, "views": c[0], "add_to_cart": c[1],
                    "purchases": c[2]} for n, (p, c) in enumerate(rows, 1)]  # fmt: skip
    assert (timestamp_ms(body["window_start"]), body["products"]) == (open_start, open_ranked)
    assert body["still_counting"] is True and body["window"] == "open"
    assert (await get_ok(base, "/api/top?window=complete&limit=10", TOKEN))["products"] == ranked
    per_minute = counted_per_minute(events, oracle)
    live = expected_live_windows(oracle)
    for product in (VIRAL, QUIET, "pbuy", "bg1"):
        series = await get_ok(base, f"/api/products/{product}/series", TOKEN)
        got = {timestamp_ms(b["start"]): (b["views"], b["add_to_cart"], b["purchases"])
               for b in series["buckets"] if b["views"] + b["add_to_cart"] + b["purchases"]}  # fmt: skip
        assert got == {s: c for (p, s), c in per_minute.items() if p == product}, product
        windows = {timestamp_ms(w["window_start"]): w for w in series["windows"]}
        assert {
            s: (w["views"], w["add_to_cart"], w["purchases"]) for s, w in windows.items()
        } == live[product]
        for s, w in windows.items():
            alert = oracle.alerts.get((product, s))
            assert w["qualifies_now"] == (w["views"] > 100 and w["purchases"] < 5)
            assert (w["alerted"] is None) == (alert is None), (product, s)
            if alert is not None:
                assert (
                    w["alerted"]["views"],
                    w["alerted"]["add_to_cart"],
                    w["alerted"]["purchases"],
                ) == alert
        assert (series["views_threshold"], series["purchases_threshold"]) == (100, 5)
    assert any(w["alerted"] and not w["qualifies_now"] for w in (await get_ok(
        base, f"/api/products/{VIRAL}/windows", TOKEN))["windows"]), "an alerted window no longer qualifies"  # fmt: skip
    shop = await get_ok(base, "/api/shop/series", TOKEN)
    expected_shop = {s: c for s, c in shop_per_minute(per_minute).items()
                     if s > max(shop_per_minute(per_minute)) - 60 * MIN}  # fmt: skip
    assert {timestamp_ms(b["start"]): [b["views"], b["add_to_cart"], b["purchases"]]
            for b in shop["buckets"] if any((b["views"], b["add_to_cart"], b["purchases"]))} == expected_shop  # fmt: skip
    newest = newest_by_id(produced)
    got_incidents = (await get_ok(base, "/api/incidents?limit=1000", TOKEN))["incidents"]
    mine = [i for i in got_incidents if i["incident_id"] in newest]
    assert {i["incident_id"]: i["sequence"] for i in mine} == {
        k: v["sequence"] for k, v in newest.items()
    }
    for i in mine:
        assert {k: i[k] for k in newest[i["incident_id"]]} == newest[i["incident_id"]]
    order = [(i["opened_at"], i["incident_id"]) for i in got_incidents]
    assert order == sorted(order, reverse=True)
    opened = (await get_ok(base, "/api/incidents?status=open", TOKEN))["incidents"]
    assert {i["incident_id"] for i in opened} >= {f"pgone:{T0 + 15 * MIN}"}
    assert all(i["status"] == "open" for i in opened)
    resolved = next(i for i in got_incidents if i["incident_id"] == f"{QUIET}:{T0 + 20 * MIN}")
    assert resolved["duration_seconds"] == 45 * 60 - 31 * 60
    pipeline = await get_ok(base, "/api/pipeline", TOKEN)
    stages = {s["stage"]: s for s in pipeline["stages"]}
    assert list(stages) == ["ingest", "windows", "alert_sink", "parquet_sink"]
    assert stages["windows"]["late_events"] == oracle.late == 3
    assert stages["parquet_sink"]["last_durable_write"] is not None


async def check_reports_and_bad_input(base: str, expected: dict[str, str]) -> None:
    reports = await get_ok(base, "/api/reports", TOKEN)
    assert len(reports["days"]) == 14
    shown = {d["day"]: d["status"] for d in reports["days"] if d["status"] != "pending"}
    assert shown == expected
    partial = next(d for d in reports["days"] if d["status"] == "partial")
    assert (partial["delivered_to"], partial["refused_by"]) == (
        ["a@example.org"],
        ["b@example.org"],
    )
    status, text, content_type = await get(base, partial["html"], TOKEN)
    assert (status, content_type) == (200, "text/html") and f"report {partial['day']}" in text
    bad = ["/reports/..%2Fruns.sqlite3", "/reports/%2Fetc%2Fpasswd", "/reports/summary_2026-13-01.html",
           "/reports/summary_2026-01-01.html.bak", "/api/top?window=live", "/api/incidents?status=x",
           "/api/incidents?limit=0", "/api/reports?days=0", "/api/pipeline?x=1",
           f"/api/products/{'x' * 300}/series", "/api/products/p1/series?x=1"]  # fmt: skip
    for path in bad:
        status, body, _ = await get(base, path, TOKEN)
        assert 400 <= status < 500 and body["error"], (path, status, body)
    for path in ("/api/products/nosuch/series", "/reports/summary_2020-01-01.html",
                 "/reports/../batch/runs.py", "/static/vendor/../dashboard.py"):  # fmt: skip
        status, body, _ = await get(base, path, TOKEN)
        assert status == 404 and body["error"], (path, status, body)
    for path in ("/api/incidents", "/api/pipeline", "/api/shop/series", "/api/reports",
                 f"/api/products/{VIRAL}/series", partial["html"]):  # fmt: skip
        assert (await get(base, path))[0] == 401, path
    for path in (
        "/products/p1",
        "/static/vendor/uPlot.iife.min.js",
        "/static/vendor/uPlot.LICENSE",
    ):
        assert (await get(base, path))[0] == 200, path


async def check_dashboard(page: HeadlessChromium, env: WorkerEnv, tmp_path: Path) -> None:
    # The worker's own incidents (the viral product's) may be drawn before the planted ones.
    await page.wait_for(
        f"document.querySelector('#incident-feed li[data-product-id=\"{QUIET}\"] svg.sparkline')"
        " !== null",
        "the planted incident with its sparkline",
    )
    quiet = await get_ok(env.web_url, f"/api/products/{QUIET}/series", TOKEN)
    values = await page.evaluate(
        f"document.querySelector('#incident-feed li[data-product-id=\"{QUIET}\"] svg').dataset.values"
    )
    assert values == ",".join(str(b["views"]) for b in quiet["buckets"])
    shop = await get_ok(env.web_url, "/api/shop/series", TOKEN)
    minutes = sum(1 for b in shop["buckets"] if b["views"] + b["add_to_cart"] + b["purchases"])
    await page.wait_for(
        f"document.getElementById('shop-chart').dataset.points === '{minutes}'", "the shop chart"
    )
    drawn = await page.evaluate("charts.shop.data.slice(1).map(s => Array.from(s))")
    assert drawn == [[b[k] for b in shop["buckets"]] for k in ("views", "add_to_cart", "purchases")]
    await page.wait_for(
        "!!document.querySelector('#report-runs tbody tr[data-status=\"sent\"]')", "report runs"
    )
    keep_artifact(await page.screenshot(tmp_path / "dashboard-incidents.png"))
    await page.evaluate("document.getElementById('per-window-toggle').click()")
    await page.wait_for(
        "document.querySelectorAll('#alert-feed li').length > 0", "per-window alerts"
    )
    await page.evaluate(
        f"document.querySelector('#top-products a[href=\"/products/{VIRAL}\"]').click()"
    )
    await page.wait_for(
        "document.querySelectorAll('#windows tr.alerted').length > 0", "alerted windows"
    )
    await page.wait_for("charts.windows && charts.buckets", "the product charts")
    series = await get_ok(env.web_url, f"/api/products/{VIRAL}/series", TOKEN)
    labels = await page.evaluate("charts.windows.series.map(s => s.label)")
    assert "views threshold (100)" in labels and "purchases threshold (5)" in labels
    data = await page.evaluate("charts.windows.data.map(s => Array.from(s))")
    assert data[1] == [w["views"] for w in series["windows"]] and set(data[3]) == {100}
    assert data[5] == [w["alerted"]["views"] if w["alerted"] else None for w in series["windows"]]
    assert await page.evaluate("charts.buckets.data[1].length") == len(series["buckets"])
    keep_artifact(await page.screenshot(tmp_path / "product-page.png"))


@pytest.mark.slow
async def test_the_dashboard_draws_what_the_input_holds(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    chromium = ensure_chromium()
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w", extra={"WEB_TOKEN": TOKEN})
    env.extra["INCIDENTS_TOPIC"] = f"incidents-{env.app_id}"
    produced = incident_records()
    await produce_incidents(kafka_bootstrap, env.extra["INCIDENTS_TOPIC"],
                            [orjson.dumps(r) for r in produced] + [b"not an incident"])  # fmt: skip
    expected_runs = write_report_runs(env.data_dir / "reports", datetime.now(UTC).date())
    events = picture_events()
    oracle = WindowOracle().feed_all((0, e) for e in events)
    worker = Worker(env).start()
    try:
        await wait_drained(worker)  # nothing to drain yet: until it serves
        async with HeadlessChromium(chromium, tmp_path / "chromium") as page:
            await page.goto(f"{env.web_url}/?token={TOKEN}")
            await page.wait_for(LIVE, "the live state")
            await produce(kafka_bootstrap, env.topic, [(0, orjson.dumps(e)) for e in events])
            await page.wait_for("document.querySelectorAll('#top-products tbody tr').length > 0",
                                "open-window top products", timeout=60)  # fmt: skip
            await wait_drained(worker)
            await check_api(env.web_url, events, oracle, produced)
            await check_reports_and_bad_input(env.web_url, expected_runs)
            await produce(kafka_bootstrap, env.topic, [(0, b"{broken json")])
            await page.wait_for("document.querySelector('#pipeline-strip .dead-letters')?.dataset.total === '1'",
                                "a dead letter in the pipeline strip")  # fmt: skip
            text = await page.evaluate("document.querySelector('#pipeline-strip').innerText")
            assert "newest: " in text
            await check_dashboard(page, env, tmp_path)
            await page.send("Network.enable")
            await page.send("Network.setBlockedURLs", urls=["*uPlot.iife.min.js"])
            await page.goto(f"{env.web_url}/products/{VIRAL}")
            await page.wait_for("document.querySelectorAll('#windows tr.alerted').length > 0",
                                "the tables without the chart library")  # fmt: skip
            assert "chart library did not load" in await page.evaluate("document.body.innerText")
            await page.goto(f"{env.web_url}/")
            await page.wait_for("document.querySelectorAll('#top-products tbody tr').length > 0",
                                "the dashboard's tables without the chart library")  # fmt: skip
            assert await page.evaluate("typeof uPlot") == "undefined"
    finally:
        worker.stop()
