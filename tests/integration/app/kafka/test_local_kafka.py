"""The local broker: real produce/consume, start/stop/status, two brokers side by side."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from app.errors import BrokerError
from app.kafka.broker import LocalBroker, free_port

CLI = [str(Path(sys.executable).parent / "clickstream")]


async def test_acks_all_idempotent_round_trip(
    new_topic, producer: AIOKafkaProducer, consumer_factory
) -> None:  # type: ignore[no-untyped-def]
    topic = await new_topic(partitions=3)
    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(300)}
    for key, value in sent.items():
        await producer.send(topic, value, key=key)
    await producer.flush()
    consumer = await consumer_factory(topic)
    received: dict[bytes, bytes] = {}
    while len(received) < len(sent):
        batch = await consumer.getmany(timeout_ms=5000)
        assert batch, f"only {len(received)} of {len(sent)} messages arrived"
        for records in batch.values():
            received.update({r.key: r.value for r in records})  # type: ignore[misc]
    assert received == sent


def _java_pids_for(data_dir: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "kafka.Kafka" in cmd and str(data_dir) in cmd:
            pids.append(int(proc.name))
    return pids


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, check=False, timeout=180,
                          env={**os.environ, **env})  # fmt: skip


def test_second_broker_side_by_side_and_clean_stop(tmp_path: Path, kafka_bootstrap: str) -> None:
    data_dir = tmp_path / "kafka-b"
    port = free_port()
    # No --port: the broker listens where KAFKA_BOOTSTRAP_SERVERS says the clients will look.
    servers = f"127.0.0.1:{port}"
    started = _cli("kafka", "start", "--data-dir", str(data_dir), KAFKA_BOOTSTRAP_SERVERS=servers)
    assert started.returncode == 0, started.stderr
    assert f"ready at 127.0.0.1:{port}" in started.stdout
    try:
        again = _cli("kafka", "start", "--port", str(port), "--data-dir", str(data_dir))
        assert again.returncode == 0
        assert "already running" in again.stdout
        other = free_port()
        elsewhere = _cli("kafka", "start", "--port", str(other), "--data-dir", str(data_dir))
        assert elsewhere.returncode == 1
        assert elsewhere.stderr.strip() == (
            f"error: the broker of {data_dir} already runs on port {port}, not on port {other}: "
            "stop it (clickstream kafka stop), or start a second one with --data-dir"
        )
        status = _cli("kafka", "status", "--data-dir", str(data_dir))
        assert status.returncode == 0
        assert "running" in status.stdout
        assert f"port: {port}" in status.stdout
        assert str(data_dir) in status.stdout
        assert len(_java_pids_for(data_dir)) == 1
    finally:
        stopped = _cli("kafka", "stop", "--data-dir", str(data_dir))
    assert stopped.returncode == 0
    assert "stopped" in stopped.stdout
    assert _java_pids_for(data_dir) == []
    status = _cli("kafka", "status", "--data-dir", str(data_dir))
    assert status.returncode == 1
    assert "stopped" in status.stdout
    # the session's broker was not touched
    host, port_text = kafka_bootstrap.split(":")
    with socket.create_connection((host, int(port_text)), timeout=5):
        pass


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(BrokerError, match=f"port {port} is already in use"):
            LocalBroker(tmp_path / "kafka-c").start(port=port)
        result = _cli(
            "kafka", "start", "--port", str(port), "--data-dir", str(tmp_path / "kafka-c")
        )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: port {port} is already in use by another process: choose another with --port"
    )
    assert _java_pids_for(tmp_path / "kafka-c") == []
