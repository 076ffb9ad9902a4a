"""Step-long slices of one product's counts, and their keys in the partition's store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from app.windowing.spec import WindowSpec

SEP = "\x1f"


class KeyValueStore(Protocol):
    """A partition's store: bytes keys to bytes values (a dict, or a changelog store)."""

    def get(self, key: bytes, /) -> bytes | None: ...
    def __setitem__(self, key: bytes, value: bytes) -> None: ...
    def __delitem__(self, key: bytes) -> None: ...


def state_key(product_id: str, start_ms: int) -> bytes:
    """The store key of a product's slice (or alert marker) starting at `start_ms`."""
    return f"{product_id}{SEP}{start_ms}".encode()


def parse_state_key(key: bytes) -> tuple[str, int]:
    """(product id, start ms) of a `state_key`. Raises UnicodeDecodeError or ValueError for
    a key that is not one."""
    product, _, start = key.decode().rpartition(SEP)
    return product, int(start)


@dataclass(slots=True)
class Slice:
    """Counts of one product in one step-long slice: depth -> [views, carts, purchases]."""

    by_depth: dict[int, list[int]] = field(default_factory=dict)
    seen: dict[int, int] = field(default_factory=dict)

    def encode(self) -> bytes:
        """`[[[depth, views, carts, purchases], ...], [[source, seq], ...]]` as JSON bytes."""
        return orjson.dumps([[[d, *c] for d, c in self.by_depth.items()], list(self.seen.items())])

    @classmethod
    def decode(cls, raw: bytes) -> Slice:
        """The slice `encode` wrote. Raises orjson.JSONDecodeError, ValueError or TypeError
        for a value that is not one."""
        depths, seen = orjson.loads(raw)
        return cls({row[0]: row[1:] for row in depths}, {sp: seq for sp, seq in seen})

    def counts_for_offset(self, offset: int) -> list[int]:
        """[views, add_to_cart, purchases] this slice adds to the window starting `offset`
        steps before it."""
        total = [0, 0, 0]
        for depth, counts in self.by_depth.items():
            if depth >= offset:
                total[0] += counts[0]
                total[1] += counts[1]
                total[2] += counts[2]
        return total


def sum_window(
    spec: WindowSpec, window_start: int, slice_at: Callable[[int], Slice | None]
) -> list[int]:
    """[views, add_to_cart, purchases] of the window starting at `window_start`: the sum of
    the slices it spans, each counting only the events that still counted toward it.
    `slice_at(start)` is the product's slice starting there, None where it has none."""
    window = [0, 0, 0]
    step = spec.step_ms
    for offset in range(spec.per_event):
        slice_ = slice_at(window_start + offset * step)
        if slice_ is None:
            continue  # no events of this product there (yet)
        part = slice_.counts_for_offset(offset)
        window[0] += part[0]
        window[1] += part[1]
        window[2] += part[2]
    return window
