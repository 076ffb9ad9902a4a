"""`clickstream worker`: bad input is refused in one line; the supervisor restarts, forwards
signals and stops everything on a bad setting, with real (tiny) child processes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app.workers.supervisor import Supervisor, WorkerSlot
from tests.support.worker import free_web_ports

CLICKSTREAM = str(Path(sys.executable).parent / "clickstream")


def run_worker(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "WEB_"))}
    return subprocess.run(
        [CLICKSTREAM, "worker", *args], env=environ | env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("given", ["0", "abc", ""])
def test_a_bad_process_count_is_one_line_and_status_2(given: str, clean_env: Path) -> None:
    done = run_worker("--processes", given)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert f"--processes {given!r} is not allowed" in done.stderr
    assert "whole number >= 1, or auto" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_setting_stops_before_any_worker_starts(clean_env: Path) -> None:
    done = run_worker("--processes", "2", PARTITIONS="zero")
    assert done.returncode == 2
    assert "PARTITIONS='zero' is not allowed" in done.stderr
    assert "Starting" not in done.stdout


def test_incident_mail_settings_are_checked_before_any_worker_starts(clean_env: Path) -> None:
    done = run_worker("--processes", "2", SMTP_HOST="localhost", ALERT_EMAIL_TO="ops@example.com")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: EMAIL_FROM=None is not allowed: expected an email address (SMTP_HOST is set). "
        "Fix EMAIL_FROM in the environment or in .env."
    ]
    assert "Starting" not in done.stdout


def test_a_web_port_in_use_is_named_with_the_fix(clean_env: Path) -> None:
    # Two consecutive ports below the ephemeral range: a kernel-chosen one's lower neighbour
    # could be held by any outgoing connection, and the error would name that port instead.
    first = free_web_ports(2)
    port = first + 1
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = run_worker("--processes", "2", WEB_PORT=str(first))
    assert done.returncode == 2
    assert f"web port {port} (WEB_PORT+1, for worker process 2) is in use" in done.stderr
    assert "set WEB_PORT to the first of 2 free ports" in done.stderr


def child(tmp_path: Path, script: str) -> list[str]:
    """A stand-in worker that exits 0 on SIGTERM and notes each start in a file per WEB_PORT."""
    code = (
        "import os, pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
        f"log = pathlib.Path({str(tmp_path)!r}) / ('starts-' + os.environ['WEB_PORT'])\n"
        "starts = len(log.read_text().splitlines()) if log.exists() else 0\n"
        "log.open('a').write(f'{os.getpid()}\\n')\n" + script
    )
    return [sys.executable, "-c", code]


def starts(tmp_path: Path, port: int) -> int:
    log = tmp_path / f"starts-{port}"
    return len(log.read_text().splitlines()) if log.exists() else 0


async def until(condition: object) -> None:
    while not condition():  # type: ignore[operator]
        await asyncio.sleep(0.05)


async def test_a_child_that_exits_is_restarted_and_sigterm_stops_all(tmp_path: Path) -> None:
    script = "if os.environ['WEB_PORT'] == '7002' and starts == 0: sys.exit(1)\ntime.sleep(600)\n"
    slots = [WorkerSlot(1, 7001), WorkerSlot(2, 7002)]
    supervisor = Supervisor(child(tmp_path, script), slots, os.environ, restart_delay_s=0.1)
    running = asyncio.create_task(supervisor.run())
    await until(lambda: starts(tmp_path, 7002) == 2 and starts(tmp_path, 7001) == 1)
    await until(lambda: all(c.returncode is None for c in supervisor.children.values()))
    os.kill(os.getpid(), signal.SIGTERM)  # as `docker compose stop` sends it to the supervisor
    assert await running == 0
    assert starts(tmp_path, 7001) == 1 and starts(tmp_path, 7002) == 2
    assert all(c.returncode == 0 for c in supervisor.children.values())


async def test_status_2_of_one_child_stops_the_others_with_status_2(tmp_path: Path) -> None:
    script = (
        "if os.environ['WEB_PORT'] == '7002':\n"
        "    while not (log.parent / 'starts-7001').exists(): time.sleep(0.05)\n"
        "    sys.exit(2)\n"
        "time.sleep(600)\n"
    )
    slots = [WorkerSlot(1, 7001), WorkerSlot(2, 7002)]
    supervisor = Supervisor(child(tmp_path, script), slots, os.environ, restart_delay_s=0.1)
    assert await supervisor.run() == 2
    assert starts(tmp_path, 7002) == 1  # not restarted: a bad setting stays bad
    assert supervisor.children[1].returncode == 0  # stopped by SIGTERM, not left running
