"""Input compressed by a Java kafka-clients producer, with each Kafka codec, on a real broker.

The producer is java/CompressedProducer.java beside this file, compiled at test time against
the broker's own jar cache. One input partition per codec; the expectations are recounted here.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from agents.stall_watchdog import CHECK_EVERY_S
from app.kafka.jars import ensure_jars
from tables.pipeline_probe import PROBE_EVERY_S
from tests.support.kafka import create_topic
from tests.support.streaming_cases import SEC, T0, stamp
from tests.support.web_api import expected_live_windows, fetch_windows
from tests.support.window_oracle import WindowOracle
from tests.support.worker import Worker, WorkerEnv, health, parquet_rows, wait_drained

pytestmark = pytest.mark.slow

CODECS = ("gzip", "snappy", "lz4", "zstd")
SOURCE = Path(__file__).parent / "java" / "CompressedProducer.java"
CLIENT_JARS = ("kafka-clients-", "lz4-java-", "snappy-java-", "zstd-jni-", "slf4j-api-")
HOT_VIEWS = 150


def ensure_jdk() -> tuple[str, str]:
    """javac and java, installing Debian's headless JDK with apt-get if javac is missing."""
    if shutil.which("javac") is None:
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            pytest.skip("javac is not installed, and installing it needs root and apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        steps = (
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "default-jdk-headless"],
        )
        for step in steps:
            done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=1200)
            if done.returncode != 0:
                pytest.skip(f"could not install a JDK ({' '.join(step)}): {done.stderr[-500:]}")
    javac, java = shutil.which("javac"), shutil.which("java")
    if javac is None or java is None:
        pytest.skip("apt-get installed a JDK but javac or java is not on PATH")
    return javac, java


class JavaProducer:
    """CompressedProducer, compiled once against the kafka-clients jar of the broker cache."""

    def __init__(self, build_dir: Path) -> None:
        javac, self.java = ensure_jdk()
        jars_dir = ensure_jars()
        jars = [
            str(jar)
            for prefix in CLIENT_JARS
            for jar in sorted(jars_dir.glob(f"{prefix}*.jar"))[:1]
        ]
        assert len(jars) == len(CLIENT_JARS), f"missing client jars in {jars_dir}: {jars}"
        build_dir.mkdir(parents=True, exist_ok=True)
        compiled = subprocess.run(
            [javac, "-cp", os.pathsep.join(jars), "-d", str(build_dir), str(SOURCE)],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert compiled.returncode == 0, compiled.stderr
        self.classpath = os.pathsep.join([str(build_dir), *jars])

    def send(
        self,
        bootstrap: str,
        topic: str,
        codec: str,
        partition: int,
        events: list[dict[str, object]],
    ) -> None:
        lines = b"".join(orjson.dumps(e) + b"\n" for e in events)
        done = subprocess.run(
            [self.java, "-cp", self.classpath, "CompressedProducer",
             bootstrap, topic, codec, str(partition)],
            input=lines, capture_output=True, timeout=120, check=False,
        )  # fmt: skip
        output = (done.stdout + done.stderr).decode(errors="replace")
        assert done.returncode == 0 and f"sent {len(events)}" in output, output[-3000:]


@pytest.fixture(scope="module")
def java_producer(tmp_path_factory: pytest.TempPathFactory) -> JavaProducer:
    return JavaProducer(tmp_path_factory.mktemp("java-producer"))


def codec_events(codec: str, t0: int) -> list[dict[str, object]]:
    """HOT_VIEWS views of one product (enough to alert) among other events, in time order."""
    events: list[dict[str, object]] = []
    for i in range(HOT_VIEWS + 60):
        if i < HOT_VIEWS:
            product, kind = f"hot-{codec}", "view"
        else:
            product, kind = f"other-{codec}-{i % 7}", ("add_to_cart", "purchase", "view")[i % 3]
        t = t0 + i * 100
        events.append({"user_id": f"u{i % 37}", "product_id": product, "event_type": kind,
                       "timestamp": stamp(t, i % 5)})  # fmt: skip
    return events


async def test_every_codec_from_a_java_producer_reaches_parquet_and_windows(
    kafka_bootstrap: str, tmp_path: Path, java_producer: JavaProducer
) -> None:
    env = WorkerEnv(kafka_bootstrap, tmp_path / "w")
    await create_topic(kafka_bootstrap, env.topic, len(CODECS))
    placed: list[tuple[int, dict[str, object]]] = []
    for partition, codec in enumerate(CODECS):
        events = codec_events(codec, T0 + partition * 30 * SEC)
        java_producer.send(kafka_bootstrap, env.topic, codec, partition, events)
        placed += [(partition, e) for e in events]
    live = expected_live_windows(WindowOracle().feed_all(placed))
    worker = Worker(env).start()
    try:
        await wait_drained(worker)
        assert parquet_rows(env) == (len(placed), len(placed))
        for codec in CODECS:
            got = await fetch_windows(env.web_url, f"hot-{codec}")
            assert got == live[f"hot-{codec}"], codec
            assert max(views for views, _, _ in got.values()) == HOT_VIEWS, codec
        assert "UnsupportedCodecError" not in worker.log()
    finally:
        worker.stop()


async def committed_offset(env: WorkerEnv, partition: int) -> int | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=env.bootstrap)
    await admin.start()
    try:
        tp = TopicPartition(env.topic, partition)
        offsets = await admin.list_consumer_group_offsets(f"{env.app_id}-ingest", partitions=[tp])
    finally:
        await admin.close()
    meta = offsets.get(tp)
    return meta.offset if meta is not None and meta.offset >= 0 else None


async def wait_for_rows(worker: Worker, rows: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while parquet_rows(worker.env)[0] < rows:
        assert worker.alive(), f"worker died:\n{worker.log()[-3000:]}"
        assert time.monotonic() < deadline, f"no {rows} rows in Parquet:\n{worker.log()[-3000:]}"
        await asyncio.sleep(0.5)


async def test_a_partition_the_worker_cannot_decode_stops_alone_and_loses_nothing(
    kafka_bootstrap: str, tmp_path: Path, java_producer: JavaProducer
) -> None:
    # A deployment without cramjam: aiokafka then cannot decode lz4 (UnsupportedCodecError).
    blocker = tmp_path / "no-cramjam"
    blocker.mkdir()
    (blocker / "cramjam.py").write_text('raise ImportError("cramjam left out by the test")\n')
    # A short STALL_SECONDS: the stall watchdog must not restart the worker for that partition.
    env = WorkerEnv(
        kafka_bootstrap, tmp_path / "w", extra={"PYTHONPATH": str(blocker), "STALL_SECONDS": "10"}
    )
    await create_topic(kafka_bootstrap, env.topic, 2)
    lz4_events = codec_events("lz4", T0)
    gzip_events = codec_events("gzip", T0)
    java_producer.send(kafka_bootstrap, env.topic, "lz4", 0, lz4_events)
    java_producer.send(kafka_bootstrap, env.topic, "gzip", 1, gzip_events[:100])
    worker = Worker(env, "without-cramjam").start()
    try:
        await wait_for_rows(worker, 100)
        # Reading goes on in the decodable partition.
        java_producer.send(kafka_bootstrap, env.topic, "gzip", 1, gzip_events[100:])
        await wait_for_rows(worker, len(gzip_events))
        await asyncio.sleep(10 + 2 * PROBE_EVERY_S + CHECK_EVERY_S)
        status, body = await health(env)
        assert status == 503
        problems = body["problems"]
        assert isinstance(problems, list)
        assert any("input partition 0" in p and "cannot decode" in p for p in problems), problems
        # Seen as stalled, and still the watchdog leaves it: a restart would stop there again.
        assert any("ingest stalled: partitions [0]" in p for p in problems), problems
        log = worker.log()
        assert f"cannot decode the batch at {env.topic}:0 offset 0" in log, log[-3000:]
        assert "install cramjam" in log
        assert await committed_offset(env, 0) in (None, 0)  # nothing committed past the batch
        assert parquet_rows(env)[0] == len(gzip_events)
        assert worker.alive() and "stalled on this worker" not in log
    finally:
        worker.stop()
    env.extra = {}
    fixed = Worker(env, "with-cramjam").start()
    try:
        await wait_drained(fixed)
        total = len(lz4_events) + len(gzip_events)
        assert parquet_rows(env) == (total, total)
        status, body = await health(env)
        assert not any("cannot decode" in p for p in body["problems"]), body  # type: ignore[attr-defined]
    finally:
        fixed.stop()
