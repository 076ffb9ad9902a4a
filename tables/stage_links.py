"""What the read side may ask of the running stages, which live a floor up in agents/.

tables/ never imports agents/. The worker's wiring (`agents.worker_app`) hands each running
stage down here once per process; `/health`, the window views and the cluster view ask the
stages through these protocols, and see nothing (no stage) in a process that runs none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from app.windowing.partition_windows import PartitionWindows


class ServingStage(Protocol):
    """What the read side asks of the running window stage."""

    def settled(self) -> bool:
        """No rebalance and no recovery under way."""
        ...

    def serving(self) -> dict[int, PartitionWindows]:
        """Window state of each worker partition assigned here and recovered."""
        ...


class IngestHealth(Protocol):
    """What `/health` asks of the running ingest stage."""

    def sink_failing(self) -> bool:
        """Parquet writes fail and input reading is paused until they succeed."""
        ...

    def undecodable_partitions(self) -> list[int]:
        """Input partitions whose reading is stopped at a batch this worker cannot decode."""
        ...


def _none() -> None:
    return None


@dataclass
class StageLinks:
    """The running stages, if any, and the client-id prefix the window group's members carry."""

    window: Callable[[], ServingStage | None] = _none
    ingest: Callable[[], IngestHealth | None] = _none
    member_prefix: str | None = None  # None: no window stage here, so no known members


stages = StageLinks()


def link_stages(
    window: Callable[[], ServingStage | None],
    ingest: Callable[[], IngestHealth | None],
    member_prefix: str,
) -> None:
    """Hand the running stages down to the read side; called once, by the worker's wiring."""
    stages.window = window
    stages.ingest = ingest
    stages.member_prefix = member_prefix
