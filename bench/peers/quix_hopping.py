"""Quix Streams' hopping count over a topic read from the start; a peer for `make bench`.

    bench/.venv-quix/bin/python bench/peers/quix_hopping.py BOOTSTRAP TOPIC EVENTS CASE

Counts each product's events in 10-minute windows hopping by 1 minute (grace 1 minute), on
event time, with Quix's RocksDB state and changelog topics (its defaults). Input that is not
keyed by product (CASE unkeyed, batch100) is regrouped by product first, as Quix requires.
Prints `BENCH start` at the first event and `BENCH result {json}` after the last.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import uuid
from datetime import datetime
from typing import Any

from quixstreams import Application

bootstrap, topic_name, expected, case = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
seen = {"events": 0, "first": 0.0, "last": 0.0}


def event_ms(value: dict[str, Any], key: object, timestamp: int, headers: object) -> int:
    return int(datetime.fromisoformat(value["timestamp"]).timestamp() * 1000)


def count_progress(value: dict[str, Any]) -> None:
    if seen["events"] == 0:
        seen["first"] = time.perf_counter()
        print("BENCH start", flush=True)
    seen["events"] += 1
    if seen["events"] >= expected:
        seen["last"] = time.perf_counter()
        app.stop()


with tempfile.TemporaryDirectory(prefix="bench-quix-") as state_dir:
    app = Application(broker_address=bootstrap, consumer_group=f"bench-quix-{uuid.uuid4().hex[:8]}",
                      auto_offset_reset="earliest", state_dir=state_dir)  # fmt: skip
    sdf = app.dataframe(app.topic(topic_name, value_deserializer="json"))
    if case == "batch100":
        sdf = sdf.apply(lambda events: events, expand=True)
    if case != "keyed":
        sdf = sdf.group_by("product_id")
    sdf = sdf.set_timestamp(event_ms)
    sdf = sdf.update(count_progress)
    sdf = sdf.hopping_window(duration_ms=600_000, step_ms=60_000, grace_ms=60_000).count().current()
    app.run()
    seconds = seen["last"] - seen["first"]
    print("BENCH result " + json.dumps({
        "events": seen["events"], "seconds": round(seconds, 2),
        "events_per_s": round(seen["events"] / seconds) if seconds > 0 else None,
    }), flush=True)  # fmt: skip
