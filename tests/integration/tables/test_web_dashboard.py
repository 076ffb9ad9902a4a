"""The dashboard in headless Chromium: an alert appears live after the flash-sale scenario runs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.browser import HeadlessChromium, ensure_chromium, keep_artifact
from tests.support.web_api import TOKEN, get_ok, wait_ready
from tests.support.worker import Worker, WorkerEnv, wait_drained

CLICKSTREAM = str(Path(sys.executable).parent / "clickstream")
ALERT_ITEMS = "[...document.querySelectorAll('#alert-feed li')]"


def run_flash_sale(env: WorkerEnv, plan: Path) -> list[str]:
    """Fifteen minutes of quiet shop traffic from two hours ago, sent at full speed; viral
    products. Quiet, so that few steady products alert and the viral alerts stay among the
    newest the page shows."""
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    done = subprocess.run(
        [CLICKSTREAM, "simulate", "--bootstrap", env.bootstrap, "--topic", env.topic,
         "--scenario", "flash-sale", "--start", start.isoformat(), "--duration", "900",
         "--rate", "4", "--seed", "7", "--plan", str(plan)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    bursts = json.loads(plan.read_text())["bursts"]
    return [b["product_id"] for b in bursts if b["role"] == "viral"]


@pytest.mark.slow
async def test_the_dashboard_shows_a_flash_sale_alert_as_it_happens(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    chromium = ensure_chromium()
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w", extra={"WEB_TOKEN": TOKEN})
    worker = Worker(env).start()
    try:
        await wait_ready(worker, TOKEN)
        async with HeadlessChromium(chromium, tmp_path / "chromium") as page:
            await page.goto(f"{env.web_url}/?token={TOKEN}")
            await page.wait_for("document.getElementById('status-pill').dataset.state === 'live'",
                                "the live state")  # fmt: skip
            assert await page.evaluate("document.getElementById('incidents-empty').hidden") is False
            await page.evaluate("document.getElementById('per-window-toggle').click()")
            await page.wait_for("document.getElementById('alerts-empty').hidden === false",
                                "the per-window alerts' empty state")  # fmt: skip
            assert await page.evaluate(f"{ALERT_ITEMS}.length") == 0
            assert await page.evaluate("location.search") == ""  # the token left the address bar

            viral = await asyncio.to_thread(run_flash_sale, env, tmp_path / "plan.json")
            shown = await page.wait_for(
                f"{ALERT_ITEMS}.map(li => li.dataset.productId)"
                f".filter(p => {json.dumps(viral)}.includes(p))[0]",
                "an alert for a viral product",
            )
            await wait_drained(worker)
            await page.wait_for("document.querySelectorAll('#top-products tbody tr').length > 0",
                                "the top products")  # fmt: skip
            newest = (await get_ok(env.web_url, "/api/alerts?limit=1", TOKEN))["alerts"][0]
            await page.wait_for(
                f"{ALERT_ITEMS}[0]?.dataset.alertId === {json.dumps(newest['alert_id'])}",
                "the newest alert first",
            )
            assert shown in viral
            text = await page.evaluate("document.body.innerText")
            assert "Next daily report" in text.title() or "NEXT DAILY REPORT" in text.upper()
            shot = await page.screenshot(tmp_path / "dashboard.png")
            keep_artifact(shot)
            assert shot.stat().st_size > 10_000
    finally:
        worker.stop()
