"""Simulated shoppers: reproducible, schema-valid, with the configured funnel and a long tail."""

from __future__ import annotations

import collections
import time
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from app.events import EventParser
from app.kafka.partitioner import kafka_partition
from app.simulator import ShopperBehaviour, SimulationOptions, build_simulation
from app.simulator.clock import daily_traffic
from app.simulator.wire import encode_batches, encode_lines
from app.time_format import iso_utc_s as iso_utc

START = datetime(2024, 6, 1, tzinfo=UTC)


def generate(count: int, **changes: object) -> list[dict[str, object]]:
    settings: dict[str, object] = dict(seed=7, users=1000, products=100, pace=10.0, start=START)
    settings.update(changes)
    options = SimulationOptions(count=count, **settings)  # type: ignore[arg-type]
    stream = build_simulation(options, now=time.time()).stream
    records: list[dict[str, object]] = []
    while not stream.finished:
        records.extend(event[0] for event in stream.take(20_000))
    return records


@pytest.fixture(scope="module")
def steady() -> list[dict[str, object]]:
    return generate(100_000)


def test_same_seed_gives_identical_bytes_and_another_seed_does_not() -> None:
    first = encode_lines(generate(5_000, seed=11))
    assert first == encode_lines(generate(5_000, seed=11))
    assert first != encode_lines(generate(5_000, seed=12))
    ids = [record["event_id"] for record in generate(3, seed=11)]
    assert ids == ["sim-11-1", "sim-11-2", "sim-11-3"]


def test_every_event_passes_the_workers_parser(steady: list[dict[str, object]]) -> None:
    parser = EventParser(max_event_bytes=262_144, max_clock_skew_s=3600)
    now_ms = int(time.time() * 1000)
    accepted = 0
    for offset, start in enumerate(range(0, len(steady), 500)):
        raw = orjson.dumps(steady[start : start + 500])
        events, rejected = parser.parse_message(raw, "t", 0, offset, now_ms)
        assert rejected == []
        accepted += len(events)
    assert accepted == len(steady)
    line = encode_lines(steady[:1]).rstrip(b"\n")
    events, rejected = parser.parse_message(line, "t", 0, 0, now_ms)
    assert rejected == [] and events[0].event_id == steady[0]["event_id"]


def test_timestamps_are_utc_with_milliseconds_and_in_order(steady: list[dict[str, object]]) -> None:
    stamps = [str(record["timestamp"]) for record in steady]
    assert all(len(s) == 24 and s.endswith("Z") and s[19] == "." for s in stamps)
    assert stamps == sorted(stamps)
    assert stamps[0] >= "2024-06-01T00:00:00.000Z"
    assert iso_utc(1717200000.5) == "2024-06-01T00:00:00.500Z"


def test_funnel_rates_and_type_mix_match_the_configuration(
    steady: list[dict[str, object]],
) -> None:
    funnel = ShopperBehaviour()
    types = collections.Counter(record["event_type"] for record in steady)
    carts_per_view = types["add_to_cart"] / types["view"]
    purchases_per_cart = types["purchase"] / types["add_to_cart"]
    assert carts_per_view == pytest.approx(funnel.cart_rate, rel=0.08)
    assert purchases_per_cart == pytest.approx(funnel.purchase_rate, rel=0.08)
    view_share = 1 / (1 + funnel.cart_rate * (1 + funnel.purchase_rate))
    assert types["view"] / len(steady) == pytest.approx(view_share, abs=0.01)


def test_configured_funnel_rates_are_followed() -> None:
    records = generate(50_000, behaviour=ShopperBehaviour(cart_rate=0.25, purchase_rate=0.6))
    types = collections.Counter(record["event_type"] for record in records)
    assert types["add_to_cart"] / types["view"] == pytest.approx(0.25, rel=0.06)
    assert types["purchase"] / types["add_to_cart"] == pytest.approx(0.6, rel=0.06)


def test_no_cart_or_purchase_without_an_earlier_view_in_the_session(
    steady: list[dict[str, object]],
) -> None:
    viewed: set[tuple[object, ...]] = set()
    carted: set[tuple[object, ...]] = set()
    sessions: dict[object, object] = {}
    for record in steady:
        key = (record["user_id"], record["session_id"], record["product_id"])
        assert sessions.setdefault(record["session_id"], record["user_id"]) == record["user_id"]
        if record["event_type"] == "view":
            viewed.add(key)
        elif record["event_type"] == "add_to_cart":
            assert key in viewed, record
            carted.add(key)
        else:
            assert key in carted, record


def test_popularity_is_long_tailed_and_products_keep_category_and_price(
    steady: list[dict[str, object]],
) -> None:
    views = collections.Counter(r["product_id"] for r in steady if r["event_type"] == "view")
    ranked = [n for _, n in views.most_common()]
    assert sum(ranked[:10]) > 0.4 * sum(ranked)  # the top 10% take a large share
    assert ranked[0] > 20 * ranked[-1]
    facts: dict[object, tuple[object, object]] = {}
    for record in steady:
        assert facts.setdefault(
            record["product_id"], (record["product_category"], record["price"])
        ) == (record["product_category"], record["price"])
    categories = {category for category, _ in facts.values()}
    assert categories == {
        "smartphones",
        "laptops",
        "tablets",
        "headphones",
        "smartwatches",
        "cameras",
        "gaming",
        "accessories",
    }


def test_history_follows_a_daily_curve() -> None:
    records = generate(10**9, pace=0.5, duration=86_400.0)
    per_hour = collections.Counter(str(record["timestamp"])[11:13] for record in records)
    assert per_hour["20"] > 4 * per_hour["03"]
    assert sum(daily_traffic(h / 4) for h in range(96)) / 96 == pytest.approx(1.0, rel=0.01)
    assert str(records[-1]["timestamp"]) < "2024-06-02T00:00:00.000Z"


def test_batches_split_to_fit_and_keep_every_event_in_order() -> None:
    records = generate(1_000)
    parts = encode_batches(records, max_bytes=20_000)
    assert len(parts) > 1
    assert all(len(payload) <= 20_000 for _, _, payload in parts)
    rebuilt = [event for _, _, payload in parts for event in orjson.loads(payload)]
    assert rebuilt == records
    assert parts[0][0] == 0 and parts[-1][1] == len(records)
    assert all(parts[i][1] == parts[i + 1][0] for i in range(len(parts) - 1))


def test_partition_choice_matches_kafkas_default_partitioner() -> None:
    partitioner = DefaultPartitioner()
    for number in range(1, 200):
        key = f"P{number:04d}".encode()
        assert kafka_partition(key, 6) == partitioner(key, list(range(6)), list(range(6)))
