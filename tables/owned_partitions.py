"""The worker partitions this worker answers for, and their window state ready to read.

A partition's state is read only while it is assigned to this worker and recovered from its
changelog: a partition being recovered is incomplete. The window stage lives a floor up, in
agents/; it is linked here at start-up (`link_window_stage`, called by
`agents.window_serving`), so that tables/ never imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from app.windowing.partition_windows import PartitionWindows


class ServingStage(Protocol):
    """What the read side asks of the running window stage."""

    def settled(self) -> bool: ...

    def serving(self) -> dict[int, PartitionWindows]: ...


@dataclass
class WindowStageLink:
    """The running stage, if any, and the client-id prefix its group members carry."""

    running: Callable[[], ServingStage | None] = lambda: None
    member_prefix: str | None = None  # None: no stage in this process, so no known members


window_stage = WindowStageLink()


def link_window_stage(running: Callable[[], ServingStage | None], member_prefix: str) -> None:
    window_stage.running = running
    window_stage.member_prefix = member_prefix


def owned_partitions() -> set[int]:
    """Partitions of the windows topic assigned to this worker and recovered."""
    return set(serving_states())


def settled() -> bool:
    """No rebalance and no recovery under way."""
    stage = window_stage.running()
    return stage is not None and stage.settled()


def serving_states() -> dict[int, PartitionWindows]:
    """Window state of every partition this worker can answer for now."""
    stage = window_stage.running()
    return {} if stage is None else stage.serving()


def serving_state(partition: int) -> PartitionWindows | None:
    """Window state of one partition, or None while this worker cannot answer for it."""
    return serving_states().get(partition)
