"""The summary reads well as text and as email-safe HTML, and round-trips as JSON."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime

from batch.files import RenderedReport
from batch.html import render_html
from batch.render import render_text, subject
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


def test_derived_fields() -> None:
    summary = make_summary()
    assert summary.window_shoppers == 45_678 - 9_876
    assert summary.buyer_rate == round(100 * 9_876 / 45_678, 2)
    assert summary.funnel.view_to_cart_rate == 30.0
    assert summary.funnel.cart_to_purchase_rate == 75.0
    assert make_summary(unique_users=0, buyers=0).buyer_rate is None


def test_json_has_every_design_field() -> None:
    data = json.loads(RenderedReport.of(make_summary()).json)
    for name in ("date", "total_events", "events_by_type", "unique_users", "buyers",
                 "window_shoppers", "buyer_rate", "top_5_viewed_products",
                 "conversion_by_category", "funnel", "flash_sale_alerts", "generated_at"):  # fmt: skip
        assert name in data
    assert data["conversion_by_category"][1] == {
        "category": None, "views": 0, "purchases": 3, "conversion_rate": None,
    }  # fmt: skip


def test_text_states_numbers_and_the_funnel_definition() -> None:
    text = render_text(make_summary())
    assert "1,234,567" in text and "45,678" in text and "9,876" in text and "35,802" in text
    assert "of those, added to cart" in text and "order of their events" in text
    assert "(no category)" in text and "n/a" in text
    assert "(23 hours)" in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_html_is_self_contained_and_escaped() -> None:
    html = render_html(make_summary())
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "<style" not in html and "<link" not in html  # inline styles only
    assert 'name="viewport"' in html and "max-width:600px" in html
    assert html.count('bgcolor="#4f46e5"') == 2  # one bar per top product
    assert html.count('bgcolor="#059669"') == 3  # viewed, added, purchased
    assert "1,234,567" in html and "35,802" in html
    assert 'width="50%"' in html and 'width="100%"' in html  # longest bar is full width


def test_subject_has_date_and_totals() -> None:
    assert subject(make_summary()) == (
        "Clickstream daily summary 2024-03-10: 1,234,567 events, 45,678 users, 9,876 buyers"
    )
