"""Cost of counting a supplied event_id once: window state with ids against the same without.

The same events (Zipf-like products, 4,000-row batches as the ingest stage sends them) go
through `PartitionWindows.apply` and `flush` over dict stores twice, in alternation: once as
rows without an id, once with a 36-character id on every row. Best of `rounds` each, so the
ratio is measured in one run on one machine.
"""

from __future__ import annotations

import random
import time
import uuid

from app.product_batches import ProductBatch, Row
from app.windowing.partition_windows import PartitionWindows
from app.windowing.spec import WindowSpec

SPEC = WindowSpec.from_seconds(600, 60)
T0 = 1_795_766_400_000
BATCH_ROWS = 4000


def batches(events: int, with_ids: bool, seed: int = 3) -> list[ProductBatch]:
    rng = random.Random(seed)
    rows: list[Row] = []
    for i in range(events):
        product = f"p{min(int(rng.paretovariate(1.1)), 2000)}"
        row: Row = [product, rng.choice((0, 0, 0, 0, 1, 2)), T0 + i * 2, i, SPEC.per_event - 1]
        if with_ids:
            row.append(str(uuid.UUID(int=rng.getrandbits(128), version=4)))
        rows.append(row)
    return [
        ProductBatch(0, 1, T0 + i * 2 - 60_000, rows[i : i + BATCH_ROWS])
        for i in range(0, events, BATCH_ROWS)
    ]


def timed(prepared: list[ProductBatch]) -> float:
    state = PartitionWindows(
        SPEC, 100, 5, 3_600_000, {}, {},
        stored_slice_keys=(), stored_alert_keys=(),
    )  # fmt: skip
    began = time.perf_counter()
    for batch in prepared:
        for alert in state.apply(batch):
            state.mark_alerted(alert)
        state.flush()
    return time.perf_counter() - began


def run(events: int = 300_000, rounds: int = 5) -> dict[str, object]:
    plain, with_ids = batches(events, False), batches(events, True)
    plain_s, ids_s = [], []
    for _ in range(rounds):
        plain_s.append(timed(plain))
        ids_s.append(timed(with_ids))
    best_plain, best_ids = min(plain_s), min(ids_s)
    return {
        "events": events,
        "without_ids_events_per_s": round(events / best_plain),
        "with_ids_events_per_s": round(events / best_ids),
        "ratio": round(best_plain / best_ids, 3),
    }
