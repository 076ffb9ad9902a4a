"""A daily summary with every field filled in, for the render and mail tests to change."""

from __future__ import annotations

from datetime import UTC, date, datetime

from batch.summary import (
    AlertedProduct,
    AlertSummary,
    CategoryConversion,
    DailySummary,
    Funnel,
    ProductViews,
)


def make_summary(**changes: object) -> DailySummary:
    fields: dict[str, object] = {
        "date": date(2024, 3, 10),
        "timezone": "America/New_York",
        "period_start": datetime(2024, 3, 10, 5, tzinfo=UTC),
        "period_end": datetime(2024, 3, 11, 4, tzinfo=UTC),
        "total_events": 1_234_567,
        "events_by_type": {"view": 1_000_000, "add_to_cart": 200_000, "purchase": 34_567},
        "unique_users": 45_678,
        "buyers": 9_876,
        "top_5_viewed_products": (
            ProductViews("<script>alert(1)</script>", 5_000), ProductViews("P2", 2_500),
        ),
        "conversion_by_category": (
            CategoryConversion("electronics", 10_000, 250, 2.5),
            CategoryConversion(None, 0, 3, None),
        ),
        "funnel": Funnel(viewed=40_000, added_to_cart=12_000, purchased=9_000),
        "flash_sale_alerts": AlertSummary(3, (AlertedProduct("P2", 2, 340), AlertedProduct("P9", 1, 120))),
        "generated_at": datetime(2024, 3, 11, 5, 15, tzinfo=UTC),
    }  # fmt: skip
    fields.update(changes)
    return DailySummary(**fields)  # type: ignore[arg-type]
