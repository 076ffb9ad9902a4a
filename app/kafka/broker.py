"""Start, stop and inspect one local KRaft broker (combined broker + controller) by pid file."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from app.errors import BrokerError
from app.kafka.jars import ensure_jars, java_executable, kafka_version

logger = logging.getLogger(__name__)

HEAP = "-Xmx512m"
_LOG4J = """\
rootLogger.level=INFO
rootLogger.appenderRef.out.ref=OUT
appender.out.type=Console
appender.out.name=OUT
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka
logger.kafka.level=WARN
logger.apache.name=org.apache.kafka
logger.apache.level=WARN
logger.started.name=kafka.server.KafkaRaftServer
logger.started.level=INFO
"""


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "clickstream" / "kafka"


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when a server could listen there (as Kafka does, ignoring TIME_WAIT leftovers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    port: int | None
    data_dir: Path
    version: str

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def describe(self) -> str:
        state = f"running (pid {self.pid})" if self.running else "stopped"
        port = self.port if self.port is not None else "-"
        return (
            f"Kafka {self.version}: {state}\nport: {port}\ndata dir: {self.data_dir}\n"
            f"log: {self.data_dir / 'broker.log'}"
        )


class LocalBroker:
    """One broker whose whole state (config, KRaft logs, pid, log file) lives in `data_dir`."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = (data_dir or default_data_dir()).expanduser().resolve()
        self.pid_file = self.data_dir / "broker.pid"
        self.log_file = self.data_dir / "broker.log"
        self.meta_file = self.data_dir / "broker.json"
        self.properties = self.data_dir / "server.properties"
        self._proc: subprocess.Popen[bytes] | None = None

    def _meta(self) -> dict[str, int]:
        try:
            return dict(json.loads(self.meta_file.read_text()))
        except (OSError, ValueError):
            return {}

    def _running_pid(self) -> int | None:
        """The pid in the pid file, if that process is alive and is this data dir's broker."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            return None
        if "kafka.Kafka" in cmdline and str(self.properties) in cmdline:
            return pid
        return None

    def status(self) -> BrokerStatus:
        pid = self._running_pid()
        return BrokerStatus(pid is not None, pid, self._meta().get("port"), self.data_dir,
                            kafka_version())  # fmt: skip

    def start(self, port: int = 9092, timeout: float = 90.0) -> BrokerStatus:
        """Start the broker and return once a client can list topics; idempotent."""
        current = self.status()
        if current.running:
            return current
        java = java_executable()
        if not port_is_free(port):
            msg = f"port {port} is already in use by another process: choose another with --port"
            raise BrokerError(msg)
        jars = ensure_jars()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        controller_port = self._controller_port(port)
        self._write_config(port, controller_port)
        self._format_once(java, jars)
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                [java, HEAP, "-Xms128m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
                 f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
                 "-cp", f"{jars}/*", "kafka.Kafka", str(self.properties)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        self._proc = proc  # reaped by stop() when the same object stops it
        self.pid_file.write_text(f"{proc.pid}\n")
        self.meta_file.write_text(json.dumps({"port": port, "controller_port": controller_port}))
        started = time.monotonic()
        try:
            self._wait_ready(proc, f"127.0.0.1:{port}", timeout)
        except BrokerError:
            self._terminate(proc.pid, 10.0)
            proc.wait()
            raise
        logger.info("Kafka ready on port %s after %.1f s", port, time.monotonic() - started)
        return self.status()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker this data dir started; False when it was not running."""
        pid = self._running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        self._terminate(pid, timeout)
        if self._proc is not None and self._proc.pid == pid:
            self._proc.wait()
            self._proc = None
        self.pid_file.unlink(missing_ok=True)
        return True

    def _controller_port(self, port: int) -> int:
        previous = self._meta().get("controller_port")
        if previous and previous != port and port_is_free(previous):
            return previous
        return free_port()

    def _write_config(self, port: int, controller_port: int) -> None:
        self.properties.write_text(
            "\n".join([
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={self.data_dir / 'kraft'}",
                "num.partitions=1",
                "auto.create.topics.enable=true",
                # A single broker: every internal topic has one replica, so idempotent and
                # transactional producers and consumer groups work.
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=8",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "transaction.state.log.num.partitions=8",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "",
            ])
        )  # fmt: skip
        (self.data_dir / "log4j2.properties").write_text(_LOG4J)

    def _format_once(self, java: str, jars: Path) -> None:
        if (self.data_dir / "kraft" / "meta.properties").exists():
            return
        # A random id may start with "-"; the "--cluster-id=" form keeps it from reading as a flag.
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            [java, "-cp", f"{jars}/*",
             f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
             "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
             "-c", str(self.properties)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            output = result.stdout + result.stderr
            msg = f"formatting KRaft storage in {self.data_dir} failed:\n{output}"
            raise BrokerError(msg)

    def _wait_ready(self, proc: subprocess.Popen[bytes], bootstrap: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                msg = (
                    f"Kafka exited with code {proc.returncode} while starting:\n{self._log_tail()}"
                )
                raise BrokerError(msg)
            if _can_list_topics(bootstrap):
                return
            time.sleep(0.3)
        msg = f"Kafka did not answer on {bootstrap} within {timeout:.0f} s:\n{self._log_tail()}"
        raise BrokerError(msg)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    @staticmethod
    def _terminate(pid: int, timeout: float) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (we may be its parent and not reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state == "Z":
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def _can_list_topics(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    async def probe() -> bool:
        client = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await client.start()
            await client.list_topics()
            return True
        except Exception:
            return False
        finally:
            with contextlib.suppress(Exception):
                await client.close()

    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        return asyncio.run(probe())
    finally:
        quiet.setLevel(level)
