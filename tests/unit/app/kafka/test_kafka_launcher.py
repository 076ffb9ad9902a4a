"""The launcher's checks that need no broker: Java, ports, the version kept in the pom, the
port `kafka start` picks from the settings."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app.kafka.broker import port_is_free
from app.kafka.command import settings_port
from app.kafka.jars import kafka_version

CLI = [str(Path(sys.executable).parent / "clickstream")]


def test_version_comes_from_the_pom() -> None:
    assert kafka_version().startswith("4.")


def test_port_is_free_sees_a_listener() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert not port_is_free(busy.getsockname()[1])


def test_missing_java_is_named(tmp_path: Path) -> None:
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "no-jdk")}
    result = subprocess.run([*CLI, "kafka", "start", "--data-dir", str(tmp_path / "k")],
                            env=env, capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 1
    assert "Java 17+ is needed" in result.stderr


@pytest.mark.parametrize(
    ("servers", "port"),
    [
        ("127.0.0.1:19555", 19555),
        ("localhost:19556,other.invalid:9092", 19556),
        ("203.0.113.7:19559", 9092),  # TEST-NET-3: never this machine
        ("broker.invalid:19560", 9092),
    ],
)
def test_kafka_start_listens_where_the_settings_point_on_this_machine(
    servers: str, port: int, monkeypatch: pytest.MonkeyPatch, clean_env: Path
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", servers)
    assert settings_port() == port
