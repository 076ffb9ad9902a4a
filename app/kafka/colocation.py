"""A partition assignor that gives partition `p` of every group to the same worker process.

The ingest group reads the input topic and the window group reads PRODUCT_EVENTS_TOPIC. With
input keyed by product and as many input partitions as PARTITIONS, input partition `p` feeds
worker partition `p` only; when one process holds both, ingest hands its batches to the
window stage in memory instead of through Kafka (`agents.local_handoff`). Kafka's own
assignors decide each group on its own (round robin over member ids, which are random), so
two processes would hold matching partitions only by chance.

Each member publishes a stable identity (its worker's web URL) as user data. Members are
ordered by it and each topic's partitions are laid out in ranges over that order, as Kafka's
range assignor does: two groups with the same processes and equal partition counts get the
same partitions in the same process. Correctness never depends on it: a batch whose worker
partition lives elsewhere goes through Kafka.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)


class _Colocated(AbstractPartitionAssignor):  # type: ignore[misc]
    name = "clickstream-colocated"
    version = 0
    identity = b""

    @classmethod
    def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        return ConsumerProtocolMemberMetadata(cls.version, list(topics), cls.identity)

    @classmethod
    def assign(
        cls,
        cluster: ClusterMetadata,
        members: Mapping[str, ConsumerProtocolMemberMetadata],
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        return {
            member: ConsumerProtocolMemberAssignment(cls.version, sorted(topics.items()), b"")
            for member, topics in ranges(cluster, members).items()
        }

    @classmethod
    def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
        pass


def ranges(
    cluster: ClusterMetadata, members: Mapping[str, ConsumerProtocolMemberMetadata]
) -> dict[str, dict[str, list[int]]]:
    """member id -> topic -> partitions: each topic's partitions in contiguous ranges over
    the members subscribed to it, ordered by (identity, member id); the first members get
    one extra partition when the division is not even."""
    out: dict[str, dict[str, list[int]]] = {member: {} for member in members}
    topics = sorted({topic for meta in members.values() for topic in meta.subscription})
    for topic in topics:
        partitions = sorted(cluster.partitions_for_topic(topic) or ())
        subscribed = sorted(
            (meta.user_data or b"", member)
            for member, meta in members.items()
            if topic in meta.subscription
        )
        share, extra = divmod(len(partitions), len(subscribed))
        start = 0
        for i, (_, member) in enumerate(subscribed):
            length = share + (1 if i < extra else 0)
            out[member][topic] = partitions[start : start + length]
            start += length
    return out


def colocated_assignor(identity: str) -> type[AbstractPartitionAssignor]:
    """The assignor class for a consumer of the process known as `identity` (stable for the
    process's life, the same in every group it joins, unique among the group's processes)."""
    return type("ColocatedAssignor", (_Colocated,), {"identity": identity.encode()})
