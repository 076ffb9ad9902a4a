"""`clickstream worker [--processes N|auto]`: N worker processes of one deployment here."""

from __future__ import annotations

import asyncio
import errno
import os
import socket

import click

from app.mail_config import incident_mail_config
from app.settings import Settings, get_settings
from app.web_host import WILDCARD_HOSTS
from app.workers.supervisor import Supervisor, WorkerSlot, worker_argv


class UsageProblem(click.ClickException):
    """Bad input on the command line: one line on stderr, exit status 2."""

    exit_code = 2


def cpu_count() -> int:
    """CPUs this process may run on (its affinity, e.g. a container's cpuset), at least 1."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def process_count(given: str, partitions: int) -> int:
    """`--processes` as a number: a whole number >= 1, or `auto` = CPUs capped at PARTITIONS.

    Raises UsageProblem for anything else.
    """
    if given.strip().lower() == "auto":
        return max(1, min(cpu_count(), partitions))
    try:
        count = int(given)
    except ValueError:
        count = 0
    if count < 1:
        msg = f"--processes {given!r} is not allowed: give a whole number >= 1, or auto"
        raise UsageProblem(msg)
    return count


def check_ports_free(host: str, ports: list[int]) -> None:
    """Refuse to start when one of the web ports is out of range or already taken."""
    if ports[-1] > 65535:
        msg = (f"--processes {len(ports)} needs web ports {ports[0]}-{ports[-1]}, past 65535: "
               "lower WEB_PORT or --processes")  # fmt: skip
        raise UsageProblem(msg)
    bind_host = "0.0.0.0" if host in WILDCARD_HOSTS else host
    for number, port in enumerate(ports):
        with socket.socket(socket.AF_INET6 if ":" in bind_host else socket.AF_INET) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((bind_host, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                msg = (f"web port {port} (WEB_PORT+{number}, for worker process {number + 1}) "
                       f"is in use on {host}: stop what holds it, or set WEB_PORT to the first "
                       f"of {len(ports)} free ports")  # fmt: skip
                raise UsageProblem(msg) from None


def dashboard_url(settings: Settings) -> str:
    """Where a browser on this machine reaches the first process's dashboard."""
    host = "127.0.0.1" if settings.web_host in WILDCARD_HOSTS else settings.web_host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.web_port}/"


@click.command("worker")
@click.option("--processes", default="1", show_default=True, metavar="N|auto",
              help="Worker processes to run; auto = one per CPU, at most PARTITIONS.")  # fmt: skip
@click.pass_context
def worker_command(ctx: click.Context, processes: str) -> None:
    """Run the worker (windows, alerts, Parquet, dashboard) as N processes of one deployment.

    Every process joins the same consumer groups, so Kafka splits the input and the window
    partitions between them; process i serves its web API on WEB_PORT+i-1, and any of them
    answers for every product. A process that exits is restarted after 2 s; SIGTERM or
    Ctrl-C stops them all.

    \b
    Examples:
      clickstream worker                   # one process, as `faust -A agents.worker_app worker`
      clickstream worker --processes auto  # one per CPU, at most PARTITIONS
      clickstream worker --processes 2
    """
    settings = get_settings()  # refuses a non-loopback WEB_HOST without WEB_TOKEN
    incident_mail_config(settings)  # here, before any process starts, not in each of them
    count = process_count(processes, settings.partitions)
    ports = [settings.web_port + i for i in range(count)]
    check_ports_free(settings.web_host, ports)
    if count > settings.partitions:
        click.echo(f"warning: {count} processes for PARTITIONS={settings.partitions}: the "
                   "extra ones only wait to take over", err=True)  # fmt: skip
    log_level = str(ctx.find_root().params.get("log_level", "info"))
    slots = [WorkerSlot(number, port) for number, port in enumerate(ports, start=1)]
    supervisor = Supervisor(worker_argv(log_level), slots, os.environ)
    span = f"ports {ports[0]}-{ports[-1]}" if count > 1 else f"port {ports[0]}"
    click.echo(
        f"Starting {count} worker process(es), web {span}; "
        f"dashboard at {dashboard_url(settings)} (any process serves every product)."
    )
    raise SystemExit(asyncio.run(supervisor.run()))
