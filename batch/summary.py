"""The daily summary's shape, as frozen dataclasses (docs/design.md, "Event, alert and
storage formats").

Definitions, for one report day in REPORT_TIMEZONE:

- `unique_users`: users with at least one event that day.
- `buyers`: users with at least one purchase that day.
- `window_shoppers`: users with events that day and no purchase (unique_users - buyers).
- `buyer_rate`: buyers / unique_users, in percent.
- `top_5_viewed_products`: products by view count, views descending then product_id ascending.
- `conversion_by_category`: per product_category (None when the events carry none), the
  view and purchase events and purchases / views in percent (None when there were no views);
  views descending, then category ascending, None last.
- `funnel`: users who viewed any product that day; of those, users who also added any
  product to a cart that day; of those, users who also purchased that day. Membership is by
  the day's events as a whole, not by their order within the day.
- `flash_sale_alerts`: alerts whose window starts within the day; top products by number of
  alerts, then product_id. Per product, `views_at_alert` is the most views any of its alerts
  carried (the count when the window crossed the threshold, so threshold + 1 under the
  stream's rule) and `peak_views` the most views any of its alerted windows reached by the
  window's end (final counts, from the backtest; None when the store has no events for them).
- `conversion_rate`: purchase events / view events of the day, in percent.
- `hourly_traffic`: views, carts and purchases per hour of the local day (23 or 25 hours on
  DST days), each hour labelled by its local start.
- `trends`: events, unique users, buyers, buyer rate and conversion, with the same figures
  of the previous day and of the same weekday a week earlier (None: no data that day).
- `reconciliation`: the day's stream alerts against the backtest (batch.reconcile).

Rates are rounded to two decimals from the exact integer counts (`percent`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batch.reconciliation import Reconciliation


def percent(part: int, whole: int) -> float | None:
    """`part` of `whole` in percent, two decimals; None when `whole` is zero."""
    if whole == 0:
        return None
    return round(100 * part / whole, 2)


@dataclass(frozen=True, slots=True)
class ProductViews:
    product_id: str
    views: int


@dataclass(frozen=True, slots=True)
class CategoryConversion:
    category: str | None
    views: int
    purchases: int
    conversion_rate: float | None


@dataclass(frozen=True, slots=True)
class Funnel:
    """Users who viewed -> of those, added to cart -> of those, purchased (see module doc)."""

    viewed: int
    added_to_cart: int
    purchased: int

    @property
    def view_to_cart_rate(self) -> float | None:
        return percent(self.added_to_cart, self.viewed)

    @property
    def cart_to_purchase_rate(self) -> float | None:
        return percent(self.purchased, self.added_to_cart)

    @property
    def view_to_purchase_rate(self) -> float | None:
        return percent(self.purchased, self.viewed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "viewed": self.viewed,
            "added_to_cart": self.added_to_cart,
            "purchased": self.purchased,
            "view_to_cart_rate": self.view_to_cart_rate,
            "cart_to_purchase_rate": self.cart_to_purchase_rate,
            "view_to_purchase_rate": self.view_to_purchase_rate,
        }


@dataclass(frozen=True, slots=True)
class AlertedProduct:
    product_id: str
    alerts: int
    peak_views: int | None
    views_at_alert: int | None = None


@dataclass(frozen=True, slots=True)
class HourlyTraffic:
    """One local hour of the day: its label (local start), its UTC start, its events."""

    label: str
    start: datetime
    views: int
    add_to_cart: int
    purchases: int


@dataclass(frozen=True, slots=True)
class Trend:
    """One figure of the day beside the same figure one day and seven days earlier."""

    name: str
    value: float | None
    previous_day: float | None
    week_ago: float | None
    is_rate: bool = False

    @staticmethod
    def change(value: float | None, then: float | None) -> float | None:
        """Relative change from `then` to `value`, in percent, one decimal; None when either
        is missing or `then` is zero (a change from nothing has no percentage)."""
        if value is None or not then:
            return None
        return round(100 * (value - then) / then, 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "previous_day": self.previous_day,
            "week_ago": self.week_ago,
            "change_vs_previous_day": self.change(self.value, self.previous_day),
            "change_vs_week_ago": self.change(self.value, self.week_ago),
        }


@dataclass(frozen=True, slots=True)
class AlertSummary:
    count: int
    top_products: tuple[AlertedProduct, ...]


@dataclass(frozen=True, slots=True)
class DailySummary:
    """Everything the daily email says about one day; `as_dict` is the JSON form."""

    date: date
    timezone: str
    period_start: datetime
    period_end: datetime
    total_events: int
    events_by_type: dict[str, int]
    unique_users: int
    buyers: int
    top_5_viewed_products: tuple[ProductViews, ...]
    conversion_by_category: tuple[CategoryConversion, ...]
    funnel: Funnel
    flash_sale_alerts: AlertSummary
    generated_at: datetime
    hourly_traffic: tuple[HourlyTraffic, ...] = ()
    trends: tuple[Trend, ...] = ()
    reconciliation: Reconciliation | None = None

    @property
    def window_shoppers(self) -> int:
        return self.unique_users - self.buyers

    @property
    def buyer_rate(self) -> float | None:
        return percent(self.buyers, self.unique_users)

    @property
    def conversion_rate(self) -> float | None:
        return percent(self.events_by_type.get("purchase", 0), self.events_by_type.get("view", 0))

    def as_dict(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(),
            "timezone": self.timezone,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "total_events": self.total_events,
            "events_by_type": dict(self.events_by_type),
            "unique_users": self.unique_users,
            "buyers": self.buyers,
            "window_shoppers": self.window_shoppers,
            "buyer_rate": self.buyer_rate,
            "conversion_rate": self.conversion_rate,
            "top_5_viewed_products": [asdict(p) for p in self.top_5_viewed_products],
            "conversion_by_category": [asdict(c) for c in self.conversion_by_category],
            "funnel": self.funnel.as_dict(),
            "flash_sale_alerts": {
                "count": self.flash_sale_alerts.count,
                "top_products": [asdict(p) for p in self.flash_sale_alerts.top_products],
            },
            "hourly_traffic": [
                asdict(h) | {"start": h.start.isoformat()} for h in self.hourly_traffic
            ],
            "trends": [t.as_dict() for t in self.trends],
            "reconciliation": self.reconciliation.as_dict() if self.reconciliation else None,
            "generated_at": self.generated_at.isoformat(),
        }
