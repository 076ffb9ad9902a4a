"""The run loop: take events from the stream, wait for their time when live, hand them to a
sink, and on Ctrl-C or SIGTERM stop taking, flush and report instead of dying mid-batch."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from app.simulator.delivery import DeliveryStats
from app.simulator.progress import Progress
from app.simulator.stream import Emitted, EventStream

logger = logging.getLogger(__name__)

CHUNK = 5000  # events taken from the stream per turn of the loop
LINGER = 0.05  # seconds a partly filled batch may wait for more events (not live)
MAX_NAP = 0.2  # a paced run checks for a stop request at least this often
# A paced run sends what is due at most this often: at 5,000 events/s, waking for every
# event cost a record batch per event and about half a core.
MIN_NAP = 0.005


class Sink(Protocol):
    """Where events go: Kafka or a JSON Lines file."""

    stats: DeliveryStats

    def describe(self) -> str: ...
    async def write(self, events: list[Emitted]) -> None: ...
    async def flush(self, older_than: float = 0.0) -> None: ...
    async def close(self, timeout: float) -> None: ...


@dataclass(frozen=True)
class RunResult:
    """What a finished run reports."""

    generated: int
    stats: DeliveryStats
    elapsed: float
    stopped_by: str | None  # the signal that ended the run early, if any
    last_event_time: float | None


class StopRequest:
    """The first SIGINT/SIGTERM asks for a clean stop; a second one acts as usual."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self) -> None:
        self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._loop.add_signal_handler(sig, self._requested, sig)

    def uninstall(self) -> None:
        if self._loop is not None:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._loop.remove_signal_handler(sig)
            self._loop = None

    def _requested(self, sig: signal.Signals) -> None:
        self.signal_name = sig.name
        logger.info("%s received: flushing what was generated (again to quit at once)", sig.name)
        self.uninstall()


async def run_events(
    stream: EventStream,
    sink: Sink,
    *,
    live: bool,
    paced: bool,
    progress: Progress,
    close_timeout: float,
    stop: StopRequest,
) -> RunResult:
    """Move events from `stream` to `sink` until the stream ends or a stop is requested."""
    began = time.monotonic()
    try:
        with _rare_collections():
            while stop.signal_name is None and not stream.finished:
                if getattr(sink, "closed_by_reader", False):
                    break
                events = stream.take(CHUNK, time.time() if paced else math.inf)
                if events:
                    await sink.write(events)
                await sink.flush(0.0 if live else LINGER)
                progress.update(stream.emitted, stream.last_time, sink.stats)
                if paced and len(events) < CHUNK:
                    nap = min(stream.next_time - time.time(), MAX_NAP)
                    await asyncio.sleep(max(nap, MIN_NAP))
                else:
                    await asyncio.sleep(0)  # let the producer's sender run
    finally:
        stop.uninstall()
        progress.finish()
        await sink.close(close_timeout)
    return RunResult(
        generated=stream.emitted,
        stats=sink.stats,
        elapsed=time.monotonic() - began,
        stopped_by=stop.signal_name,
        last_event_time=stream.last_time,
    )


@contextlib.contextmanager
def _rare_collections() -> Iterator[None]:
    """Every event allocates a dict and a tuple, none of them in a reference cycle; with the
    default generation-0 threshold (700) the collector rescans each chunk many times (~10% of
    the run time, measured). Collect less often while the run lasts."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, before[1], before[2])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
