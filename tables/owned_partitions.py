"""The worker partitions this worker answers for, and their window state ready to read.

A partition's state is read only while it is assigned to this worker and recovered from its
changelog (`agents.window_stage`): a partition being recovered is incomplete.
"""

from __future__ import annotations

from agents.window_stage import WindowStage
from agents.window_state import PartitionWindows


def owned_partitions() -> set[int]:
    """Partitions of the windows topic assigned to this worker and recovered."""
    return set(serving_states())


def settled() -> bool:
    """No rebalance and no recovery under way."""
    stage = WindowStage.running
    return stage is not None and stage.settled()


def serving_states() -> dict[int, PartitionWindows]:
    """Window state of every partition this worker can answer for now."""
    stage = WindowStage.running
    return {} if stage is None else stage.serving()


def serving_state(partition: int) -> PartitionWindows | None:
    """Window state of one partition, or None while this worker cannot answer for it."""
    return serving_states().get(partition)
