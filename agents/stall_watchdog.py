"""Stops the worker when one of its own stages is stalled, on the signal /health reports.

The stall detector (`app.stall_detector`, fed by the pipeline probe from the broker's side)
names the stalled partitions of every stage in the deployment. This worker acts only on those
its own consumers hold: it logs what it knows and stops, so that its supervisor restarts it
and the partitions are replayed from their last commit. A stopped worker is a fault anyone
sees; a silent stall is not. This is a last resort, not a fix: a stall it reports is a bug.
A stall a restart cannot fix (a failing disk, an undecodable batch) is left to /health: the
stages watch only the partitions a restart could unstick (`StallWatch`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from app.faust_app import ClickstreamApp
from app.stall_detector import get_stall_detector

logger = logging.getLogger(__name__)
CHECK_EVERY_S = 5.0


class StallWatch:
    """The stages of this worker the watchdog may act for, and since when each partition has
    been watchable.

    A partition is acted on only once it has been watchable for the whole stall period: the
    detector's view comes from the broker's committed offsets, a few seconds old, and a
    partition that just became watchable (newly assigned, or its Parquet writes just work
    again) must first get STALL_SECONDS to commit before it counts as stalled here.
    """

    def __init__(self) -> None:
        self.owners: dict[str, Callable[[], set[int]]] = {}
        self.watched_since: dict[tuple[str, int], float] = {}  # monotonic seconds

    def watch_stage(self, stage: str, owned: Callable[[], set[int]]) -> None:
        self.owners[stage] = owned

    def own_stalls(
        self, stalled: dict[str, list[int]], now: float, stall_seconds: float
    ) -> dict[str, list[int]]:
        """The partitions of `stalled` (stage -> partitions) this worker's stages hold and
        have watched for at least `stall_seconds` at `now` (monotonic seconds). Call it
        regularly: each call also notes the partitions that became or stopped being
        watchable."""
        watched: set[tuple[str, int]] = set()
        for stage, owned in self.owners.items():
            watched.update((stage, partition) for partition in owned())
        for key in self.watched_since.keys() - watched:
            del self.watched_since[key]
        for key in watched - self.watched_since.keys():
            self.watched_since[key] = now
        mine: dict[str, list[int]] = {}
        for stage, partitions in stalled.items():
            held = [
                p for p in partitions
                if now - self.watched_since.get((stage, p), now) >= stall_seconds
            ]  # fmt: skip
            if held:
                mine[stage] = held
        return mine


_watch = StallWatch()


def watch_stage(stage: str, owned: Callable[[], set[int]]) -> None:
    """Let the watchdog act for `stage` (a name the pipeline probe uses) on the partitions
    `owned()` returns: those this worker's consumer of that stage holds now and a restart
    could unstick."""
    _watch.watch_stage(stage, owned)


async def stop_on_own_stall(app: ClickstreamApp) -> None:
    """Crash the worker if a stage of its own is stalled; its supervisor restarts it."""
    detector = get_stall_detector()
    mine = _watch.own_stalls(detector.stalled(), time.monotonic(), detector.stall_seconds)
    if not mine:
        return
    tasks = "\n".join(
        f"task {task.get_name()}: {task.get_coro()!r}" for task in asyncio.all_tasks()
    )
    logger.critical(
        "stalled on this worker: %s (input waiting, no commit for %.0f s); stopping the "
        "worker so that a restart replays from the last commit\n%s",
        mine, detector.stall_seconds, tasks,
    )  # fmt: skip
    await app.crash(RuntimeError(f"stalled: {mine}"))


def register(app: ClickstreamApp) -> None:
    """Check this worker's own stages for a stall every CHECK_EVERY_S seconds."""

    async def check() -> None:
        await stop_on_own_stall(app)

    app.timer(interval=CHECK_EVERY_S)(check)
