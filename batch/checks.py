"""What the report adds to a day's own counts: the reconciliation, trends, final peak views."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from app.reconciliation_tally import record_run
from app.report_day import ReportDay
from app.settings import Settings
from batch.reconcile import reconcile_day
from batch.summary import DailySummary
from batch.trends import compute_trends

logger = logging.getLogger(__name__)


def with_checks(
    summary: DailySummary, settings: Settings, day: ReportDay, now: datetime
) -> DailySummary:
    """`summary` with its reconciliation, trends and the alerted windows' final peak views,
    as a report run at `now` can judge them (windows too recent for it are pending).

    Records the reconciliation's mismatches for /metrics. Raises ReportError when the store
    cannot be read.
    """
    check = reconcile_day(settings, day, now)
    reconciliation = check.reconciliation
    try:
        record_run(settings.data_dir, day.day, {
            "missing_in_stream": len(reconciliation.missing_in_stream),
            "extra_in_stream": len(reconciliation.extra_in_stream),
        })  # fmt: skip
    except OSError as exc:  # the report itself still goes out; only /metrics misses this run
        logger.warning("cannot record the reconciliation for /metrics: %s", exc)
    if reconciliation.mismatches:
        logger.error("%s: %s", day, reconciliation.headline())
    peaks: dict[str, int] = {}
    for (product, _), views in check.final_views.items():
        peaks[product] = max(views, peaks.get(product, 0))
    alerts = summary.flash_sale_alerts
    top = tuple(replace(p, peak_views=peaks.get(p.product_id)) for p in alerts.top_products)
    return replace(
        summary,
        flash_sale_alerts=replace(alerts, top_products=top),
        trends=compute_trends(settings.data_dir, summary, day),
        reconciliation=reconciliation,
    )
