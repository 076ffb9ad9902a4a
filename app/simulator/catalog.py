"""The simulated shop's catalog: products with a category, a price and long-tailed popularity.

The catalog depends only on the number of products, never on `--seed`: product P0007 is the
same camera at the same price in every run, so runs with different seeds feed one consistent
shop into the pipeline and its daily reports.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Price range (low, high) per category; prices are drawn log-uniformly and end in .99.
CATEGORY_PRICES: dict[str, tuple[float, float]] = {
    "smartphones": (149.0, 1399.0),
    "laptops": (399.0, 2999.0),
    "tablets": (129.0, 1199.0),
    "headphones": (19.0, 449.0),
    "smartwatches": (79.0, 899.0),
    "cameras": (199.0, 3499.0),
    "gaming": (29.0, 699.0),
    "accessories": (5.0, 99.0),
}
CATEGORIES = tuple(CATEGORY_PRICES)
ZIPF_EXPONENT = 1.0
_CATALOG_SEED = "clickstream-catalog-v1"


@dataclass(frozen=True, slots=True)
class Product:
    """One product for sale. `weight` is its share of views in steady traffic (sums to 1)."""

    index: int
    product_id: str
    category: str
    price: float
    weight: float


class Catalog:
    """All products and fast weighted draws over them (overall, or within one category)."""

    def __init__(self, products: list[Product]) -> None:
        if not any(product.weight > 0 for product in products):
            msg = "a catalog needs at least one product with a share of views"
            raise ValueError(msg)
        self.products = products
        self.product_ids = [product.product_id for product in products]
        self._overall = _cumulative((p.index, p.weight) for p in products)
        self._by_category = {
            category: _cumulative((p.index, p.weight) for p in products if p.category == category)
            for category in CATEGORIES
        }
        shares = {c: sum(p.weight for p in products if p.category == c) for c in CATEGORIES}
        self._categories = _cumulative(
            (i, shares[c]) for i, c in enumerate(CATEGORIES) if self._by_category[c][0]
        )

    def __len__(self) -> int:
        return len(self.products)

    def draw_product(self, u: float) -> int:
        """A product index, by popularity, for a uniform number u in [0, 1)."""
        return _draw(self._overall, u)

    def draw_category(self, u: float) -> str:
        """A category, weighted by the popularity of its products."""
        return CATEGORIES[_draw(self._categories, u)]

    def draw_in_category(self, category: str, u: float) -> int:
        """A product index within one category, by popularity."""
        return _draw(self._by_category[category], u)

    def without(self, indexes: Iterable[int]) -> Catalog:
        """The same products, with the given ones taking no share of steady traffic."""
        removed = set(indexes)
        kept = sum(p.weight for p in self.products if p.index not in removed)
        return Catalog(
            [
                Product(
                    p.index,
                    p.product_id,
                    p.category,
                    p.price,
                    0.0 if p.index in removed else p.weight / kept,
                )
                for p in self.products
            ]
        )

    def least_popular(self, count: int) -> list[int]:
        """Indexes of the `count` products with the smallest share, least popular first."""
        ranked = sorted(self.products, key=lambda p: (p.weight, p.index))
        return [p.index for p in ranked[:count]]


def build_catalog(num_products: int) -> Catalog:
    """The fixed catalog of `num_products` products: ids P0001.., categories, prices, Zipf."""
    rng = random.Random(_CATALOG_SEED)
    width = max(4, len(str(num_products)))
    ranks = list(range(1, num_products + 1))
    rng.shuffle(ranks)  # popularity is not tied to the id order
    total = sum(1.0 / rank**ZIPF_EXPONENT for rank in ranks)
    products = []
    for index, rank in enumerate(ranks):
        category = CATEGORIES[index % len(CATEGORIES)] if index < len(CATEGORIES) else None
        category = category or rng.choice(CATEGORIES)
        low, high = CATEGORY_PRICES[category]
        price = math.floor(math.exp(rng.uniform(math.log(low), math.log(high)))) + 0.99
        products.append(
            Product(
                index, f"P{index + 1:0{width}d}", category, price, 1.0 / rank**ZIPF_EXPONENT / total
            )
        )
    return Catalog(products)


_Cumulative = tuple[list[int], list[float]]


def _cumulative(weighted: Iterable[tuple[int, float]]) -> _Cumulative:
    pairs = [(item, weight) for item, weight in weighted if weight > 0]
    items = [item for item, _ in pairs]
    sums = list(itertools.accumulate(weight for _, weight in pairs))
    return items, [total / sums[-1] for total in sums] if sums else []


def _draw(table: _Cumulative, u: float, _bisect: Callable[..., int] = bisect.bisect) -> int:
    # The last cumulative share is exactly 1.0 > u, so the index is always in range.
    return table[0][_bisect(table[1], u)]
