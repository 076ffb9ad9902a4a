"""`clickstream kafka start|stop|status`: the local broker from the command line."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import click

from app.errors import BrokerError
from app.kafka.broker import LocalBroker, default_data_dir
from app.settings import load_settings

DEFAULT_PORT = 9092

_DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Broker state, pid file and log (default {default_data_dir()}).",
)


@click.group("kafka")
def kafka_command() -> None:
    """Run a real single-node Apache Kafka broker (KRaft) locally, without Docker.

    \b
    Examples:
      clickstream kafka start
      clickstream kafka start --port 19092 --data-dir /tmp/kafka-b
      clickstream kafka status
      clickstream kafka stop
    """


def is_this_machine(host: str) -> bool:
    """Whether `host` (a name or address, IPv6 in brackets or not) reaches this machine: it
    resolves to an address a socket here can bind (loopback, wildcard, or an interface's)."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    for family, kind, _, _, address in infos:
        with contextlib.suppress(OSError), socket.socket(family, kind) as probe:
            probe.bind((address[0], 0))
            return True
    return False


def settings_port() -> int:
    """The port KAFKA_BOOTSTRAP_SERVERS names when its first broker is on this machine (what
    the worker and simulator will connect to), else DEFAULT_PORT. Raises SettingsError for a
    bad setting."""
    first = load_settings().kafka_bootstrap_servers.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    return int(port) if port.isdigit() and is_this_machine(host) else DEFAULT_PORT


@kafka_command.command("start")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Client port on 127.0.0.1 (default: the port of KAFKA_BOOTSTRAP_SERVERS "
                   "when it names this machine, else 9092).")  # fmt: skip
@click.option("--timeout", type=float, default=90.0, show_default=True,
              help="Seconds to wait for the broker to answer.")  # fmt: skip
@_DATA_DIR
def start(port: int | None, timeout: float, data_dir: Path | None) -> None:
    """Fetch the jars once (mvn), format storage once, start, wait until ready."""
    # A broker of this data dir already running on another port raises BrokerError.
    port = settings_port() if port is None else port
    broker = LocalBroker(data_dir)
    before = broker.status()
    if before.running and before.port != port:
        msg = (
            f"the broker of {broker.data_dir} already runs on port {before.port}, not on port "
            f"{port}: stop it (clickstream kafka stop), or start a second one with --data-dir"
        )
        raise BrokerError(msg)
    if before.running:
        click.echo(f"Kafka is already running on port {before.port} (pid {before.pid}).")
        return
    click.echo(f"Starting Kafka {before.version} on port {port} (data dir {broker.data_dir}) ...")
    began = time.monotonic()
    status = broker.start(port=port, timeout=timeout)
    click.echo(
        f"Kafka is ready at {status.bootstrap} after {time.monotonic() - began:.1f} s "
        f"(pid {status.pid}, log {broker.log_file})."
    )


@kafka_command.command("stop")
@_DATA_DIR
def stop(data_dir: Path | None) -> None:
    """Stop the broker started from this data dir (by pid) and wait for it to exit."""
    broker = LocalBroker(data_dir)
    if broker.stop():
        click.echo(f"Kafka stopped (data dir {broker.data_dir}).")
    else:
        click.echo(f"Kafka was not running (data dir {broker.data_dir}).")


@kafka_command.command("status")
@_DATA_DIR
def status(data_dir: Path | None) -> None:
    """Print running/stopped, port, data dir and version; exit 1 when stopped."""
    current = LocalBroker(data_dir).status()
    click.echo(current.describe())
    if not current.running:
        raise SystemExit(1)
