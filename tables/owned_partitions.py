"""The worker partitions this worker answers for, and their window state ready to read.

A partition's state is read only while it is assigned to this worker as active and no
rebalance or table recovery is under way: a table being recovered is incomplete. Right after a
restart the window agent has no state yet (it creates it on its first batch); reading creates
it from the recovered table, exactly as the agent would.
"""

from __future__ import annotations

from agents.window_counts import partition_state
from agents.window_state import PartitionWindows
from app.faust_app import get_app
from app.settings import get_settings

app = get_app()
settings = get_settings()


def owned_partitions() -> set[int]:
    """Partitions of the windows topic assigned to this worker as active."""
    topic = settings.product_events_topic
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}


def settled() -> bool:
    """No rebalance and no table recovery under way."""
    return not app.rebalancing and not app.in_recovery


def serving_states() -> dict[int, PartitionWindows]:
    """Window state of every partition this worker can answer for now."""
    if not settled():
        return {}
    return {partition: partition_state(partition) for partition in sorted(owned_partitions())}


def serving_state(partition: int) -> PartitionWindows | None:
    """Window state of one partition, or None while this worker cannot answer for it."""
    if not settled() or partition not in owned_partitions():
        return None
    return partition_state(partition)
