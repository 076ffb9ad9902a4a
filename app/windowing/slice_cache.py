"""One partition's slices and window totals in memory, over the store that keeps the slices.

The caches are only an optimisation and may be dropped at any time (docs/design.md,
"State"): a window's totals are summed again from its slices, a slice read again from the
store.
"""

from __future__ import annotations

from app.windowing.batch_groups import Groups
from app.windowing.slices import KeyValueStore, Slice, state_key, sum_window
from app.windowing.spec import WindowSpec


class SliceCache:
    """Slices (per slice start, per product) and window totals of one worker partition.

    `stored` indexes the slices the store holds: slice start (ms) -> products. It must be
    complete, since a slice it does not list is taken to be new without a store lookup.
    """

    def __init__(self, spec: WindowSpec, store: KeyValueStore) -> None:
        self.spec = spec
        self.store = store
        self.slices: dict[int, dict[str, Slice]] = {}
        self.windows: dict[int, dict[str, list[int]]] = {}  # [views, add_to_cart, purchases]
        self.stored: dict[int, set[str]] = {}  # slice start -> products with a stored slice
        self.dirty: set[tuple[str, int]] = set()  # (product, slice start) changed, unwritten

    def slice(self, product: str, start: int) -> Slice:
        """The product's slice starting at `start` (ms), read from the store on first use,
        empty if it holds none. Raises what the store's get raises, or orjson.JSONDecodeError
        for a stored value that is not a slice."""
        by_product = self.slices.get(start)
        if by_product is None:
            by_product = self.slices[start] = {}
        slice_ = by_product.get(product)
        if slice_ is None:
            # The index of stored keys spares a store lookup for every new slice.
            stored = product in self.stored.get(start, ())
            raw = self.store.get(state_key(product, start)) if stored else None
            slice_ = by_product[product] = Slice.decode(raw) if raw is not None else Slice()
        return slice_

    def window(self, product: str, window_start: int) -> list[int]:
        """The cached [views, add_to_cart, purchases] of the product's window starting at
        `window_start` (ms), summed from its slices on first use; the caller may add to it."""
        by_product = self.windows.get(window_start)
        if by_product is None:
            by_product = self.windows[window_start] = {}
        window = by_product.get(product)
        if window is None:
            cached, stored = self.slices, self.stored

            def cached_or_stored(start: int) -> Slice | None:
                """The slice if cached or stored; an absent one would be empty."""
                if product in cached.get(start, ()) or product in stored.get(start, ()):
                    return self.slice(product, start)
                return None

            window = by_product[product] = sum_window(self.spec, window_start, cached_or_stored)
        return window

    def add(self, groups: Groups, source: int) -> None:
        """Add a batch's groups (from source partition `source`) to their slices."""
        for (product, start), group in groups.items():
            if not group.by_depth:
                continue
            slice_ = self.slice(product, start)
            slice_.seen[source] = group.seen
            for depth, added in group.by_depth.items():
                counts = slice_.by_depth.get(depth)
                if counts is None:
                    slice_.by_depth[depth] = added
                else:
                    counts[0] += added[0]
                    counts[1] += added[1]
                    counts[2] += added[2]
            self.dirty.add((product, start))

    def write_dirty(self) -> int:
        """Write the changed slices to the store; return how many. Raises what the store's
        setitem raises."""
        writes = 0
        for product, start in self.dirty:
            self.store[state_key(product, start)] = self.slices[start][product].encode()
            self.stored.setdefault(start, set()).add(product)
            writes += 1
        self.dirty.clear()
        return writes
