"""Stops the worker when one of its own stages is stalled, on the signal /health reports.

The stall detector (`app.stall_detector`, fed by the pipeline probe from the broker's side)
names the stalled partitions of every stage in the deployment. This worker acts only on those
its own consumers hold: it logs what it knows and stops, so that its supervisor restarts it
and the partitions are replayed from their last commit. A stopped worker is a fault anyone
sees; a silent stall is not. This is a last resort, not a fix: a stall it reports is a bug.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from app.faust_app import ClickstreamApp
from app.stall_detector import get_stall_detector

logger = logging.getLogger(__name__)
CHECK_EVERY_S = 5.0

_owners: dict[str, Callable[[], set[int]]] = {}


def watch_stage(stage: str, owned: Callable[[], set[int]]) -> None:
    """Let the watchdog act for `stage` (a name the pipeline probe uses) on the partitions
    `owned()` returns: those this worker's consumer of that stage holds now."""
    _owners[stage] = owned


def own_stalls(stalled: dict[str, list[int]]) -> dict[str, list[int]]:
    """The stalled partitions that belong to this worker's stages."""
    mine: dict[str, list[int]] = {}
    for stage, partitions in stalled.items():
        owned = _owners.get(stage)
        if owned is None:
            continue
        holds = owned()  # once per stage: it walks the consumer's assignment
        held = [p for p in partitions if p in holds]
        if held:
            mine[stage] = held
    return mine


async def stop_on_own_stall(app: ClickstreamApp) -> None:
    """Crash the worker if a stage of its own is stalled; its supervisor restarts it."""
    detector = get_stall_detector()
    mine = own_stalls(detector.stalled())
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
