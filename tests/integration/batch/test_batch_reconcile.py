"""A real worker's alerts against the backtest: equal, reconciled, and a lost file flagged.

One worker run over two input partitions. Partition 0 carries every window edge case of the
streaming tests, partition 1 other products: their windows are fed by one partition each,
so the backtest must find exactly the stream's alerts. Product `pod` is split over both
partitions so that its outcome depends on how the worker interleaved them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import date
from email import message_from_bytes, policy
from pathlib import Path

import aiohttp
import orjson
import pyarrow.parquet as pq
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from click.testing import CliRunner

from app.cli import cli
from app.report_day import ReportDay
from app.settings import get_settings
from batch.backtest import Backtest, epoch_ms
from batch.backtest_rule import Thresholds, WindowRule
from tests.support.kafka import produce
from tests.support.streaming_cases import MIN, SEC, T0, edge_cases, stamp
from tests.support.window_oracle import timestamp_ms
from tests.support.worker import Worker, WorkerEnv, alerts_of, read_topic, wait_drained

DAY = date(2026, 11, 27)
POD_AT = T0 + 160 * MIN


def _pod(partition: int) -> list[dict[str, object]]:
    """60 views on partition 0; 50 views, then 5 purchases, on partition 1, within a minute.
    Read partition 1 first and the 5 purchases precede the 101st view (no alert); read
    partition 0 first and the 101st view comes before them (alert)."""
    kinds = ["view"] * 60 if partition == 0 else ["view"] * 50 + ["purchase"] * 5
    return [{"user_id": f"pod{i}", "product_id": "pod", "event_type": kind,
             "timestamp": stamp(POD_AT + 5 * SEC + i * 900, 0)}
            for i, kind in enumerate(kinds)]  # fmt: skip


def _in_time_order(events: list[dict[str, object]], inserted: list[dict[str, object]]) -> list:
    """`inserted` placed where the partition's traffic reaches their time (so not late)."""
    at = next(i for i, e in enumerate(events) if timestamp_ms(e["timestamp"]) >= POD_AT)
    return events[:at] + inserted + events[at:]


def _partition_one(seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    kinds = ["view"] * 16 + ["add_to_cart"] * 3 + ["purchase"]
    events = []
    for minute in range(200):
        for _ in range(25):
            events.append({"user_id": f"v{rng.randrange(300)}",
                           "product_id": f"q{min(int(rng.paretovariate(1.1)), 12)}",
                           "event_type": rng.choice(kinds),
                           "timestamp": stamp(T0 + minute * MIN + rng.randrange(MIN), 1)})  # fmt: skip
    return sorted(events, key=lambda e: timestamp_ms(e["timestamp"]))


@pytest.fixture
def report_settings(clean_env: Path) -> Iterator[None]:
    """No stray configuration for the in-process report runs; settings read afresh after."""
    yield
    get_settings.cache_clear()


def _report(data_dir: Path, *args: str) -> tuple[int, dict[str, object], str]:
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["report", "--date", str(DAY), "--format", "json", *args],
                                env={"DATA_DIR": str(data_dir)})  # fmt: skip
    return result.exit_code, json.loads(result.stdout), result.stderr


async def _metrics(env: WorkerEnv) -> str:
    async with aiohttp.ClientSession() as session, session.get(f"{env.web_url}/metrics") as r:
        assert r.status == 200
        return await r.text()


@pytest.mark.slow
async def test_stream_alerts_reconcile_and_a_deleted_alert_file_is_flagged(
    kafka_bootstrap: str, tmp_path: Path, report_settings: None
) -> None:
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w", partitions=2)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(env.topic, 2, 1)])
    await admin.close()
    zero = _in_time_order(edge_cases(seed=1), _pod(0))
    one = _in_time_order(_partition_one(seed=5), _pod(1))
    await produce(kafka_bootstrap, env.topic,
                  [(0, orjson.dumps(e)) for e in zero] + [(1, orjson.dumps(e)) for e in one])  # fmt: skip
    worker = Worker(env).start()
    try:
        await wait_drained(worker)
        stream = {(a["product_id"], timestamp_ms(a["window_start"]))
                  for a in alerts_of(await read_topic(kafka_bootstrap, env.alerts_topic))}  # fmt: skip
        day = ReportDay(DAY, get_settings().tz)
        with Backtest.over(
            env.data_dir, day.start, day.end, WindowRule(600_000, 60_000, 60_000)
        ) as bt:
            bt.decide([Thresholds(100, 5)])
            backtest = {(a.product_id, epoch_ms(a.window_start)) for a in bt.alerts()}
        # Every window fed by one partition: the stream's alerts exactly.
        assert {a for a in stream if a[0] != "pod"} == {a for a in backtest if a[0] != "pod"}
        assert len(stream) > 40 and {"p101", "q1"} <= {p for p, _ in stream}

        code, report, _ = _report(env.data_dir, "--no-send")
        recon = report["reconciliation"]
        assert (code, recon["mismatches"]) == (0, 0), recon
        pod_windows = {POD_AT - n * MIN for n in range(10)}  # the windows holding every pod event
        assert {timestamp_ms(w["window_start"]) for w in recon["order_dependent"]} == pod_windows
        assert {w["product_id"] for w in recon["order_dependent"]} == {"pod"}
        assert recon["matched"] == len({a for a in stream if a[0] != "pod"})
        text = (env.data_dir / "reports" / f"summary_{DAY}.txt").read_text()
        assert f"all {recon['matched']:,} matched (10 order-dependent)" in text

        lost = _delete_one_alert_file(env.data_dir, exclude="pod")
        code, report, err = _report(env.data_dir)  # sent: to the outbox
        recon = report["reconciliation"]
        assert code == 5
        assert {(w["product_id"], timestamp_ms(w["window_start"]))
                for w in recon["missing_in_stream"]} == lost  # fmt: skip
        assert recon["extra_in_stream"] == [] and recon["mismatches"] == len(lost)
        (line,) = [line for line in err.splitlines() if line.startswith("error: ")]
        assert f"{len(lost)} MISMATCHED" in line and "missing in the stream" in line
        html = _outbox_html(env.data_dir)
        banner = html.index('data-reconciliation="mismatch"')
        assert banner < html.index("Clickstream daily summary</h1>")  # at the top, in red
        assert "background:#b91c1c" in html[banner - 200 : banner + 300]
        metrics = await _metrics(env)
        assert (f'clickstream_reconciliation_mismatches_total{{kind="missing_in_stream"}} '
                f"{len(lost)}") in metrics  # fmt: skip
        assert f"clickstream_reconciliation_last_mismatches {len(lost)}" in metrics
    finally:
        worker.stop()


def _delete_one_alert_file(data_dir: Path, exclude: str) -> set[tuple[str, int]]:
    """Delete the alert file holding the fewest alerts (none of `exclude`); its windows."""
    files = []
    for path in sorted((data_dir / "alerts").glob("date=*/*.parquet")):
        rows = pq.read_table(path, columns=["product_id", "window_start"]).to_pylist()
        held = {(r["product_id"], epoch_ms(r["window_start"])) for r in rows}
        if held and all(product != exclude for product, _ in held):
            files.append((len(held), path, held))
    count, path, held = min(files)
    path.unlink()
    assert count >= 1
    return held


def _outbox_html(data_dir: Path) -> str:
    (eml,) = (data_dir / "outbox").glob("*.eml")
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert message["Subject"].startswith("[alert mismatch] ")
    return str(message.get_body(("html",)).get_content())  # type: ignore[union-attr]
