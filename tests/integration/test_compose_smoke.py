"""Each app service of docker-compose.yml, run here with its compose command and environment.

There is no Docker engine on these machines, so the containers' commands run as local
processes: the compose environment with the container addresses mapped to local ones (the
test broker for kafka:19092, a temporary DATA_DIR for the /data volume, an SMTP server for
mailpit, a free port for the worker's web port). Each must start, pass the healthcheck the
compose file gives it, and stop cleanly on SIGTERM as `docker compose stop` sends it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.kafka.broker import free_port
from app.settings import Settings
from tests.support.compose_files import load_compose, service_environment
from tests.support.smtp_server import start_server
from tests.support.worker import free_web_ports, read_topic

COMPOSE = load_compose()
VENV_BIN = Path(sys.executable).parent
SETTINGS_NAMES = {name.upper() for name in Settings.model_fields}
PATIENCE_S = 180.0


@dataclass
class LocalAddresses:
    """Where the containers' peers are when the commands run on this machine."""

    bootstrap: str
    data_dir: Path
    smtp_port: int
    web_port: int
    tag: str

    def environ(self, service: str) -> dict[str, str]:
        composed = service_environment(COMPOSE["services"][service])
        kafka = service_environment(COMPOSE["services"]["kafka"])
        volumes = [v.split(":")[1] for v in COMPOSE["services"][service].get("volumes", [])]
        mapped = dict(composed)
        for key, value in composed.items():
            if key == "KAFKA_BOOTSTRAP_SERVERS":
                assert f"PLAINTEXT://{value}" in kafka["KAFKA_ADVERTISED_LISTENERS"]
                mapped[key] = self.bootstrap
            elif key == "DATA_DIR":
                assert value in volumes or service == "simulator", (
                    f"{service}: {value} is no volume"
                )
                mapped[key] = str(self.data_dir)
            elif key == "SMTP_HOST":
                assert value == "mailpit"
                mapped[key] = "127.0.0.1"
            elif key == "SMTP_PORT":
                mapped[key] = str(self.smtp_port)
            elif key == "WEB_HOST":
                mapped[key] = "127.0.0.1"
            elif key == "WEB_PORT":
                mapped[key] = str(self.web_port)
        # Topics and consumer groups of their own, so other tests on the broker do not interfere.
        mapped |= {
            "APP_ID": f"compose-{self.tag}",
            "KAFKA_TOPIC": f"compose-events-{self.tag}",
            "ALERTS_TOPIC": f"compose-alerts-{self.tag}",
            "DLQ_TOPIC": f"compose-dlq-{self.tag}",
        }
        stray = {k: v for k, v in os.environ.items() if k.upper() not in SETTINGS_NAMES}
        return stray | mapped


class ComposedProcess:
    """One service's compose command as a local process; its console goes to a log file."""

    def __init__(self, service: str, local: LocalAddresses) -> None:
        self.service = service
        self.env = local.environ(service)
        self.command = list(COMPOSE["services"][service]["command"])
        self.log_path = local.data_dir.parent / f"{service}.log"
        self.cwd = local.data_dir.parent
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ComposedProcess:
        argv = [str(VENV_BIN / self.command[0]), *self.command[1:]]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for(self, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + PATIENCE_S
        while not ready():
            assert self.proc is not None and self.proc.poll() is None, (
                f"{self.service} exited ({self.proc and self.proc.returncode}) before {what}:\n"
                f"{self.log()[-3000:]}"
            )
            assert time.monotonic() < deadline, f"{self.service}: no {what}:\n{self.log()[-3000:]}"
            time.sleep(0.5)

    def healthcheck(self, **overrides: str) -> subprocess.CompletedProcess[str]:
        """The compose healthcheck's command, run with this service's environment."""
        kind, *argv = COMPOSE["services"][self.service]["healthcheck"]["test"]
        assert kind == "CMD" and argv[0] == "python"
        return subprocess.run(
            [sys.executable, *argv[1:]], env=self.env | overrides, cwd=self.cwd,
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    def terminate(self) -> int:
        """SIGTERM, as `docker compose stop` sends it; the exit code."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(f"{self.service} ignored SIGTERM:\n{self.log()[-3000:]}") from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def local(kafka_bootstrap: str, tmp_path: Path) -> Iterator[LocalAddresses]:
    controller, _inbox = start_server(free_port())
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    try:
        yield LocalAddresses(
            kafka_bootstrap, data_dir, controller.port, free_web_ports(), uuid.uuid4().hex[:8]
        )
    finally:
        controller.stop()


@pytest.fixture
def processes() -> Iterator[list[ComposedProcess]]:
    started: list[ComposedProcess] = []
    yield started
    for process in started:
        process.kill()


def _answers_health(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def test_worker_and_simulator_start_process_events_and_stop_on_sigterm(
    local: LocalAddresses, processes: list[ComposedProcess]
) -> None:
    worker = ComposedProcess("worker", local).start()
    processes.append(worker)
    worker.wait_for("Faust 'Ready'", lambda: "[^Worker]: Ready" in worker.log())
    # `--processes auto`: one worker process per CPU, at most PARTITIONS, on consecutive ports.
    partitions = int(worker.env.get("PARTITIONS", Settings.model_fields["partitions"].default))
    count = min(len(os.sched_getaffinity(0)), partitions)
    assert f"Starting {count} worker process(es)" in worker.log()
    for port in range(local.web_port, local.web_port + count):
        worker.wait_for(f"200 from GET /health on {port}", lambda p=port: _answers_health(p))
    check = worker.healthcheck()
    assert check.returncode == 0, check.stderr

    # depends_on: the simulator starts once the worker has.
    simulator = ComposedProcess("simulator", local).start()
    processes.append(simulator)
    topic = simulator.env["KAFKA_TOPIC"]
    simulator.wait_for(
        "events on its topic",
        lambda: len(asyncio.run(read_topic(local.bootstrap, topic))) >= 20,
    )
    check = simulator.healthcheck()
    assert check.returncode == 0, check.stderr
    events_dir = local.data_dir / "events"
    worker.wait_for("simulated events in Parquet", lambda: any(events_dir.glob("date=*/*.parquet")))

    assert simulator.terminate() == 0, simulator.log()[-3000:]
    assert "events" in simulator.log()
    assert worker.terminate() == 0, worker.log()[-3000:]
    assert worker.healthcheck().returncode != 0
    assert not any(_answers_health(p) for p in range(local.web_port, local.web_port + count))


def test_worker_healthcheck_sends_the_web_token_from_dotenv(
    local: LocalAddresses, processes: list[ComposedProcess]
) -> None:
    """With WEB_TOKEN in .env the API (and /health) needs it: the healthcheck must send it."""
    worker = ComposedProcess("worker", local)
    worker.env["WEB_TOKEN"] = "token-from-dotenv"
    processes.append(worker.start())
    worker.wait_for("a passing healthcheck", lambda: worker.healthcheck().returncode == 0)
    without = worker.healthcheck(WEB_TOKEN="")
    assert without.returncode != 0
    assert "401" in without.stderr
    assert worker.terminate() == 0, worker.log()[-3000:]


def test_scheduler_starts_waits_for_report_time_and_stops_on_sigterm(
    local: LocalAddresses, processes: list[ComposedProcess]
) -> None:
    scheduler = ComposedProcess("scheduler", local).start()
    processes.append(scheduler)
    scheduler.wait_for("its next run time", lambda: "Next report run at" in scheduler.log())
    check = scheduler.healthcheck()
    assert check.returncode == 0, check.stderr

    assert scheduler.terminate() == 0, scheduler.log()[-3000:]
    assert "Scheduler stopped" in scheduler.log()
    check = scheduler.healthcheck()
    assert check.returncode != 0
    assert "no scheduler is running" in check.stderr


def test_simulator_healthcheck_fails_while_its_topic_does_not_exist(
    local: LocalAddresses,
) -> None:
    simulator = ComposedProcess("simulator", local)
    assert simulator.healthcheck().returncode != 0
