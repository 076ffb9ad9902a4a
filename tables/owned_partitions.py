"""The worker partitions this worker answers for, and their window state ready to read.

A partition's state is read only while it is assigned to this worker and recovered from its
changelog: a partition being recovered is incomplete. The window stage lives a floor up, in
agents/; the worker's wiring hands it down through `tables.stage_links`, so that tables/ never
imports it (docs/design.md, "Floors").
"""

from __future__ import annotations

from app.windowing.partition_windows import PartitionWindows
from tables.stage_links import stages


def owned_partitions() -> set[int]:
    """Partitions of the windows topic assigned to this worker and recovered."""
    return set(serving_states())


def settled() -> bool:
    """No rebalance and no recovery under way; False where no window stage runs."""
    stage = stages.window()
    return stage is not None and stage.settled()


def serving_states() -> dict[int, PartitionWindows]:
    """Window state of every partition this worker can answer for now ({} without a stage)."""
    stage = stages.window()
    return {} if stage is None else stage.serving()


def serving_state(partition: int) -> PartitionWindows | None:
    """Window state of one partition, or None while this worker cannot answer for it."""
    return serving_states().get(partition)
