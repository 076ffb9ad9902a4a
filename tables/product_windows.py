"""The Faust tables behind the windows: per-(product, slice) counts and sent-alert markers.

Both are plain (non-windowed) tables: Faust's own hopping tables read only the newest window,
expire on wall-clock time and misreport closed windows, so windows are derived here from
step-long slices in event time (see `agents.window_state`). Keys are `product \\x1f start_ms`;
values are compact JSON. Their changelogs have as many partitions as the repartition topic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import FutureMessage

from agents.window_state import Slice, state_key
from app.faust_app import get_app
from app.settings import get_settings
from app.windows import WindowSpec

app = get_app()
settings = get_settings()


class AckedChangelogTable(faust.Table[bytes, bytes]):
    """A table whose changelog writes can be awaited until Kafka has them.

    Faust's commit waits for its producer buffer with a timeout and goes on when it runs out,
    so offsets could be committed before the changelog records of the state they depend on.
    After a crash, recovery then replays older changelog records over the newer local state,
    and the events in between are lost (seen under repeated kill -9). The window agent awaits
    `changelog_acked()` before it acknowledges the events a write depends on.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unacked: list[FutureMessage] = []

    def send_changelog(self, *args: Any, **kwargs: Any) -> FutureMessage:
        future: FutureMessage = super().send_changelog(*args, **kwargs)
        self._unacked.append(future)
        return future

    async def changelog_acked(self) -> None:
        """Return once every changelog record sent so far is acknowledged (acks=all)."""
        pending, self._unacked = self._unacked, []
        if pending:
            await asyncio.gather(*pending)


def _table(name: str, help_text: str) -> AckedChangelogTable:
    table = AckedChangelogTable(
        app, name=name, beacon=app.tables.beacon, partitions=settings.partitions,
        key_type=bytes, value_type=bytes, help=help_text,
    )  # fmt: skip
    app.tables.add(table)
    return table


slices_table = _table(
    "product-window-slices", "Counts per product and step-long slice of event time."
)
alerted_table = _table(
    "flash-sale-alerted",
    "Windows whose flash-sale alert was sent (at most one per product and window).",
)


def stored_keys(table: Any, partition: int) -> Iterator[bytes]:
    """Every key one partition of a table holds locally (RocksDB: one database a partition).

    Iterating a Faust table visits only the databases of partitions it counts as active
    right now; this asks the partition's own database, opening it if needed.
    """
    store = table.data
    return store._visible_keys(store._db_for_partition(partition))  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class WindowCounts:
    start_ms: int
    end_ms: int
    views: int
    add_to_cart: int
    purchases: int


def read_windows(product_id: str, newest_start_ms: int, count: int) -> list[WindowCounts]:
    """The `count` windows of a product ending with the one starting at `newest_start_ms`.

    Reads every slice each window spans from the table, never Faust's newest-window view.
    Call it on the worker that owns the product (table routing).
    """
    spec = WindowSpec.from_seconds(settings.window_size, settings.window_step)
    step = spec.step_ms
    first = newest_start_ms - (count - 1) * step
    slices: dict[int, Slice] = {}
    for start in range(first, newest_start_ms + spec.size_ms, step):
        raw = slices_table.get(state_key(product_id, start))
        if raw is not None:
            slices[start] = Slice.decode(raw)
    windows = []
    for window_start in range(first, newest_start_ms + 1, step):
        totals = [0, 0, 0]
        for offset in range(spec.per_event):
            slice_ = slices.get(window_start + offset * step)
            if slice_ is not None:
                part = slice_.counts_for_offset(offset)
                totals = [a + b for a, b in zip(totals, part, strict=True)]
        windows.append(WindowCounts(window_start, window_start + spec.size_ms, *totals))
    return windows
