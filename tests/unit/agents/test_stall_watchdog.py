"""The stall watchdog acts only on partitions its worker holds and has watched for a whole
stall period: never on one that has only just become watchable."""

from __future__ import annotations

from agents.stall_watchdog import StallWatch

STALL_S = 60.0


def test_only_held_partitions_watched_for_a_whole_stall_period_are_acted_on() -> None:
    watch = StallWatch()
    held = {0, 1}
    watch.watch_stage("ingest", lambda: set(held))
    stalled = {"ingest": [0, 1, 2], "windows": [0]}  # 2 and the windows stage are not ours
    assert watch.own_stalls(stalled, 1000.0, STALL_S) == {}
    assert watch.own_stalls(stalled, 1000.0 + STALL_S - 1, STALL_S) == {}
    assert watch.own_stalls(stalled, 1000.0 + STALL_S, STALL_S) == {"ingest": [0, 1]}


def test_a_partition_that_becomes_watchable_again_gets_a_new_stall_period() -> None:
    watch = StallWatch()
    held = {0, 1}
    watch.watch_stage("ingest", lambda: set(held))
    watch.own_stalls({}, 0.0, STALL_S)
    held.discard(1)  # e.g. its Parquet writes fail: reported on /health, not restarted
    assert watch.own_stalls({"ingest": [1]}, 100.0, STALL_S) == {}
    held.add(1)  # writes work again: the detector's view still says stalled for a while
    assert watch.own_stalls({"ingest": [0, 1]}, 110.0, STALL_S) == {"ingest": [0]}
    assert watch.own_stalls({"ingest": [1]}, 110.0 + STALL_S, STALL_S) == {"ingest": [1]}
