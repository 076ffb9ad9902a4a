"""Incidents from the window state against the independent incident oracle, event by event and
in whole batches, with a restart from the stored state in between."""

from __future__ import annotations

import itertools

import pytest

from agents.incidents import IncidentRecord, PartitionIncidents, incident_table
from app.product_batches import ProductBatch, Row
from app.windowing.partition_windows import PartitionWindows
from app.windowing.spec import NO_WATERMARK, WindowSpec
from tests.support.incident_cases import (
    MIN,
    T0,
    Event,
    burst,
    filler,
    ms,
    scenarios,
    summary_of_records,
)
from tests.support.incident_oracle import TYPES, IncidentOracle

SPEC = WindowSpec.from_seconds(600, 60)


class Stage:
    """One worker partition's windows and incidents, fed the way ingest routes events."""

    def __init__(self, stores: tuple[dict[bytes, bytes], ...] | None = None) -> None:
        self.stores = stores or ({}, {}, {})
        slices, alerted, incidents = self.stores
        self.windows = PartitionWindows(
            SPEC, 100, 5, 3_600_000, slices, alerted,
            stored_slice_keys=list(slices), stored_alert_keys=list(alerted),
        )  # fmt: skip
        self.incidents = PartitionIncidents(SPEC, 100, 5, 600_000, 0, incidents, list(incidents))
        self.records: list[IncidentRecord] = []
        self.sources = 1  # input partitions: with more, the watermark waits for them all
        self.max_seen: int | None = None
        self.seq = 0

    def feed(self, events: list[Event], now_ms: int = 0) -> None:
        rows: list[Row] = []
        for product, kind, t in events:
            self.max_seen = t if self.max_seen is None else max(self.max_seen, t)
            depth = SPEC.open_depth(t, self.max_seen - MIN)
            self.seq += 1
            if depth >= 0:
                rows.append([product, TYPES[kind], t, self.seq, depth])
        assert self.max_seen is not None
        alerts = self.windows.apply(ProductBatch(0, self.sources, self.max_seen - MIN, rows))
        self.records += self.incidents.add_alerts(alerts, self.windows, now_ms)
        self.records += self.incidents.advance(self.windows, now_ms)
        self.windows.flush()

    def summary(self) -> list[tuple[str, str | None, int, int, int]]:
        return summary_of_records([r.value for r in self.records])


def oracle_of(events: list[Event]) -> IncidentOracle:
    oracle = IncidentOracle()
    for event in events:
        oracle.feed(*event)
    return oracle


@pytest.mark.parametrize("name", list(scenarios()))
def test_event_by_event_the_incidents_equal_the_oracle(name: str) -> None:
    events = scenarios()[name]
    stage = Stage()
    for event in events:
        stage.feed([event])
    assert stage.summary() == oracle_of(events).summary()
    assert all(r.value["resolution"] for r in stage.records if r.event == "resolved")


def test_the_hand_made_cases_give_the_expected_incidents() -> None:
    """What a reader of the rules expects, spelled out, so the oracle is checked as well."""
    cases = scenarios()
    nine = 9 * MIN  # a burst inside one minute is in the 10 windows starting up to 9 min earlier
    hour = 60 * MIN
    assert oracle_of(cases["two bursts an hour apart"]).summary() == [
        (f"a:{T0 - nine}", "quiet", 10, T0 - nine, T0),
        (f"a:{T0 + hour - nine}", "quiet", 10, T0 + hour - nine, T0 + hour),
    ]
    assert oracle_of(cases["a burst that ends by purchases"]).summary() == [
        (f"b:{T0 - nine}", "purchases", 10, T0 - nine, T0)
    ]
    assert oracle_of(cases["one window only"]).summary() == [(f"c:{T0}", "quiet", 1, T0, T0)]


@pytest.mark.parametrize("name", list(scenarios()))
def test_in_whole_batches_and_across_a_restart_the_incidents_are_the_same(
    name: str,
) -> None:
    """Incidents depend on windows only, not on how the input was cut into polls."""
    events = scenarios()[name]
    stage = Stage()
    half = len(events) // 2
    for i in range(0, half, 997):
        stage.feed(events[i : min(i + 997, half)])
    restarted = Stage(stage.stores)  # the stored state only, as after kill -9
    restarted.records, restarted.seq, restarted.max_seen = stage.records, stage.seq, stage.max_seen
    for i in range(half, len(events), 1499):
        restarted.feed(events[i : i + 1499])
    assert restarted.summary() == oracle_of(events).summary()
    opened = [r.value["incident_id"] for r in restarted.records if r.event == "opened"]
    resolved = [r.value["incident_id"] for r in restarted.records if r.event == "resolved"]
    assert len(opened) == len(set(opened)) and len(resolved) == len(set(resolved))
    assert set(resolved) == {s[0] for s in restarted.summary() if s[1]} <= set(opened)


def test_records_carry_a_sequence_and_updates_are_rate_limited() -> None:
    stage = Stage()
    stage.incidents.update_every_ms = 60_000
    events = burst("a", T0, 300, spread=5 * MIN) + filler(T0 + 5 * MIN, T0 + 30 * MIN)
    for i, event in enumerate(sorted(events, key=lambda e: e[2])):
        stage.feed([event], now_ms=i * 1000)  # a second of wall time per event
    values = [r.value for r in stage.records]
    assert [v["sequence"] for v in values] == list(range(len(values)))
    assert values[0]["event"] == "opened" and values[-1]["event"] == "resolved"
    updates = [v for v in values if v["event"] == "updated"]
    assert updates, "a growing burst sends updates"
    sent = [ms(v["emitted_at"]) for v in values]
    assert all(b - a >= 60_000 for a, b in itertools.pairwise(sent[:-1]))  # the resolve: any time
    assert values[-1]["peak_views"] == max(
        c[0] for (p, _), c in oracle_of(events).counts.items() if p == "a"
    )


def test_the_console_table_names_the_product_and_the_burst() -> None:
    stage = Stage()
    stage.feed(burst("p\x1b[2J", T0, 150))
    opened = stage.records[0]
    assert opened.headline().startswith("FLASH SALE INCIDENT OPENED: p\\x1b[2J:")
    table = incident_table(opened)
    assert "p\\x1b[2J" in table and "\x1b" not in table
    assert "|101       |" in table  # peak views so far: the count at the alert


def test_an_incident_opens_with_every_window_its_first_batch_took_past_the_threshold() -> None:
    stage = Stage()
    stage.incidents.update_every_ms = 60_000
    stage.feed(burst("a", T0, 150))  # one batch: all ten windows holding the burst alert
    (opened,) = stage.records
    assert (opened.event, opened.value["windows"], opened.value["sequence"]) == ("opened", 10, 0)
    assert opened.value["first_window_start"] == "2026-11-27T07:51:00Z"


def test_updates_go_out_while_the_watermark_is_still_unknown() -> None:
    """Right after a start, before every source partition has reported, nothing can resolve,
    but a burst that grows is still told (the trial of issue 15 saw no update for minutes)."""
    stage = Stage()
    stage.sources = 2  # the second never reports here
    stage.incidents.update_every_ms = 60_000
    stage.feed(burst("a", T0, 101, spread=MIN // 2), now_ms=0)  # the newest windows alert
    stage.feed(burst("a", T0 + MIN, 120, spread=MIN // 2), now_ms=61_000)
    assert stage.windows.watermark_ms == NO_WATERMARK
    assert [(r.event, r.value["sequence"]) for r in stage.records] == [
        ("opened", 0),
        ("updated", 1),
    ]
    assert stage.records[1].value["windows"] > stage.records[0].value["windows"]
