"""The summary reads well as text and as email-safe HTML, and round-trips as JSON."""

from __future__ import annotations

import json
import re

from batch.files import RenderedReport
from batch.html import render_html
from batch.render import render_text, subject
from tests.support.daily_summary import make_summary


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
