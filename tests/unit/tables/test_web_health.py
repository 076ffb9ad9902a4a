"""/health asks the running stages, handed down through `tables.stage_links`, for their troubles."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.settings import load_settings
from app.windowing.partition_windows import PartitionWindows
from tables.pipeline_probe import ProbeResult, probe_state
from tables.stage_links import link_stages, stages
from tables.web.health import health_report

NOW = 1_800_000_000.0
UNDECODABLE = (
    "input partition {} holds a batch this worker cannot decode; its reading is stopped there "
    "(the worker log says where and what to do)"
)
SINK = "Parquet writes are failing; input reading is paused"
RECOVERING = "window state is being recovered from its changelog (start or rebalance)"


@dataclass
class FakeIngest:
    """An ingest stage as /health sees it (`tables.stage_links.IngestHealth`)."""

    failing: bool = False
    stopped: list[int] = field(default_factory=list)

    def sink_failing(self) -> bool:
        return self.failing

    def undecodable_partitions(self) -> list[int]:
        return list(self.stopped)


@dataclass
class FakeWindows:
    """A window stage as the read side sees it (`tables.stage_links.ServingStage`)."""

    ready: bool = True
    states: dict[int, PartitionWindows] = field(default_factory=dict)

    def settled(self) -> bool:
        return self.ready

    def serving(self) -> dict[int, PartitionWindows]:
        return dict(self.states)


@pytest.fixture(autouse=True)
def broker_answered(clean_env: Path) -> Iterator[None]:
    """The broker answered just now, and the links are put back as they were afterwards."""
    saved_links, saved_probe = vars(stages).copy(), probe_state.latest
    probe_state.latest = ProbeResult(at=NOW, lag={"ingest": 0, "windows": 0, "alerts": 0})
    try:
        yield
    finally:
        vars(stages).update(saved_links)
        probe_state.latest = saved_probe


def report(ingest: FakeIngest | None, windows: FakeWindows | None) -> tuple[bool, list[str]]:
    link_stages(lambda: windows, lambda: ingest, "windows@")
    healthy, body = health_report(NOW, load_settings())
    return healthy, body["problems"]


def test_a_settled_worker_with_a_healthy_ingest_stage_is_healthy() -> None:
    assert report(FakeIngest(), FakeWindows()) == (True, [])


def test_failing_parquet_writes_are_a_problem() -> None:
    assert report(FakeIngest(failing=True), FakeWindows()) == (False, [SINK])


def test_each_undecodable_partition_is_a_problem_in_partition_order() -> None:
    healthy, problems = report(FakeIngest(stopped=[3, 1]), FakeWindows())
    assert not healthy
    assert problems == [UNDECODABLE.format(1), UNDECODABLE.format(3)]


def test_no_ingest_stage_here_means_no_ingest_problem() -> None:
    assert report(None, FakeWindows()) == (True, [])


def test_a_window_stage_recovering_or_absent_is_a_problem() -> None:
    assert report(FakeIngest(), FakeWindows(ready=False)) == (False, [RECOVERING])
    assert report(FakeIngest(), None) == (False, [RECOVERING])


def test_the_body_keeps_its_shape() -> None:
    link_stages(FakeWindows, FakeIngest, "windows@")
    healthy, body = health_report(NOW, load_settings())
    assert healthy
    assert list(body) == [
        "status", "problems", "broker", "consumer_lag", "last_event_time",
        "last_event_received_at", "events_per_second", "partitions", "rebalancing", "stalled",
        "checked_at",
    ]  # fmt: skip
    assert body["status"] == "ok" and body["partitions"] == [] and body["rebalancing"] is False
    assert body["broker"]["reachable"] is True and body["broker"]["error"] is None
