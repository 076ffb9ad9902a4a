"""The colocated assignor: partition p of two groups lands in the same process."""

from __future__ import annotations

from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata

from app.kafka.colocation import colocated_assignor, ranges


class Partitions:
    """The one question an assignor asks of cluster metadata."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(range(self.counts[topic])) if topic in self.counts else None


def group(topic: str, processes: dict[str, str]) -> dict[str, ConsumerProtocolMemberMetadata]:
    """member id -> metadata, as each process's consumer would announce it."""
    return {member: colocated_assignor(url).metadata([topic]) for member, url in processes.items()}


def by_process(
    assigned: dict[str, dict[str, list[int]]], processes: dict[str, str]
) -> dict[str, list[int]]:
    return {
        processes[m]: [p for ps in topics.values() for p in ps] for m, topics in assigned.items()
    }


def test_the_same_processes_get_the_same_partitions_in_every_group() -> None:
    cluster = Partitions({"input": 4, "by-product": 4})
    # Member ids are random and sort differently in each group; the identities do not.
    ingest = {"z-1": "http://w:6067", "a-2": "http://w:6068", "m-3": "http://w:6069"}
    windows = {"b-7": "http://w:6069", "y-8": "http://w:6067", "c-9": "http://w:6068"}
    got_ingest = by_process(ranges(cluster, group("input", ingest)), ingest)
    got_windows = by_process(ranges(cluster, group("by-product", windows)), windows)
    assert got_ingest == got_windows
    assert got_ingest == {"http://w:6067": [0, 1], "http://w:6068": [2], "http://w:6069": [3]}


def test_every_partition_is_assigned_once_whatever_the_counts() -> None:
    cluster = Partitions({"t": 7})
    processes = {f"m{i}": f"http://w:{6067 + i}" for i in range(3)}
    assigned = ranges(cluster, group("t", processes))
    parts = sorted(p for topics in assigned.values() for p in topics["t"])
    assert parts == list(range(7))
    assert sorted(len(topics["t"]) for topics in assigned.values()) == [2, 2, 3]
