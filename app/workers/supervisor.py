"""Keep N worker processes (`faust -A agents.worker_app worker`) running; stop them all on
SIGTERM or SIGINT.

Each process joins the same consumer groups, so Kafka splits the partitions between them.
A process that exits is started again after `RESTART_DELAY_S`, as `restart:` would in
Compose; one that exits with status 2 was refused a setting, so restarting cannot help:
the others are stopped and the supervisor exits 2 too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)

RESTART_DELAY_S = 2.0
BAD_SETTING_STATUS = 2


@dataclass(frozen=True)
class WorkerSlot:
    """One worker process to keep running: its number (from 1) and the web port it serves."""

    number: int
    web_port: int


def worker_argv(log_level: str) -> list[str]:
    """The command line of one worker process: this interpreter's Faust, the `app` package."""
    return [sys.executable, "-m", "faust", "-A", "agents.worker_app", "worker", "-l", log_level]


def describe_status(status: int) -> str:
    """`status 1`, or `signal SIGKILL` for a process a signal ended (asyncio's negative code)."""
    if status < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-status).name}"
    return f"status {status}"


class Supervisor:
    """Runs one worker process per slot until stopped; `run()` returns the exit status.

    Exit status: 0 once every process stopped cleanly after SIGTERM/SIGINT, 1 if one of them
    did not exit 0 then, 2 if a process exited 2 (a bad setting).
    """

    def __init__(
        self,
        argv: Sequence[str],
        slots: Sequence[WorkerSlot],
        environ: Mapping[str, str],
        restart_delay_s: float = RESTART_DELAY_S,
    ) -> None:
        self.argv = list(argv)
        self.slots = list(slots)
        self.environ = dict(environ)
        self.restart_delay_s = restart_delay_s
        self.children: dict[int, asyncio.subprocess.Process] = {}
        self.stopping = asyncio.Event()
        self.stop_signal = signal.SIGTERM
        self.status = 0

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop, sig)
        try:
            await asyncio.gather(*(self._keep_running(slot) for slot in self.slots))
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        return self.status

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Forward `sig` to every running process and start no new one."""
        if not self.stopping.is_set():
            logger.info("%s: stopping %d worker process(es)", sig.name, len(self.children))
        self.stop_signal = sig
        self.stopping.set()
        for child in self.children.values():
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(sig)

    async def _keep_running(self, slot: WorkerSlot) -> None:
        env = self.environ | {"WEB_PORT": str(slot.web_port)}
        while not self.stopping.is_set():
            child = await asyncio.create_subprocess_exec(*self.argv, env=env)
            self.children[slot.number] = child
            if self.stopping.is_set():  # stopped while this one was starting
                child.send_signal(self.stop_signal)
            logger.info(
                "worker process %d: pid %d, web port %d", slot.number, child.pid, slot.web_port
            )
            status = await child.wait()
            if self.stopping.is_set():
                if status != 0:
                    logger.warning("worker process %d stopped with %s", slot.number,
                                   describe_status(status))  # fmt: skip
                    self.status = self.status or 1
                return
            if status == BAD_SETTING_STATUS:
                logger.error("worker process %d refused a setting (status 2): stopping all",
                             slot.number)  # fmt: skip
                self.status = BAD_SETTING_STATUS
                self.stop(signal.SIGTERM)
                return
            logger.warning(
                "worker process %d (pid %d) exited with %s; restarting it in %.0f s",
                slot.number, child.pid, describe_status(status), self.restart_delay_s,
            )  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.restart_delay_s)
