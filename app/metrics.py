"""Every metric of a worker process, declared here once, and /metrics' text (prometheus_client).

Each worker process has its own REGISTRY and serves it on its own web port. Code sets and reads
a metric through `Metric`, label values given in the order of its label names; prometheus_client
escapes them. Gauges computed on demand are refreshed by the callbacks given to `on_collect`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric as MetricFamily

logger = logging.getLogger(__name__)

# One series per counter, as before: no `_created` timestamps beside each `_total`.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry()
CONTENT_TYPE = prometheus_client.exposition.CONTENT_TYPE_PLAIN_0_0_4  # as before the library
_refreshers: list[Callable[[], None]] = []


class Metric:
    """A counter or gauge of REGISTRY; `labels` are its label names, in order."""

    def __init__(
        self, kind: type[Counter | Gauge], name: str, help_text: str, labels: tuple[str, ...] = ()
    ) -> None:
        self.name = name
        self.labels = labels
        self._metric: Counter | Gauge = kind(name, help_text, labels, registry=REGISTRY)

    def _child(self, label_values: tuple[str, ...]) -> Counter | Gauge:
        return self._metric.labels(*label_values) if self.labels else self._metric

    def inc(self, amount: float = 1, *label_values: str) -> None:
        self._child(label_values).inc(amount)

    def set(self, value: float, *label_values: str) -> None:
        child = self._child(label_values)
        if not isinstance(child, Gauge):
            msg = f"{self.name} is a counter: it only goes up"
            raise TypeError(msg)
        child.set(value)

    def remove(self, *label_values: str) -> None:
        """Drop one series (a partition this process no longer owns); absent is fine."""
        with contextlib.suppress(KeyError):
            self._metric.remove(*label_values)

    def values(self) -> dict[tuple[str, ...], float]:
        """The current value of every series, by its label values."""
        found: dict[tuple[str, ...], float] = {}
        for family in self._metric.collect():
            for sample in family.samples:
                if sample.name == self.name:
                    found[tuple(sample.labels[n] for n in self.labels)] = sample.value
        return found

    def get(self, *label_values: str) -> float:
        """The value of one series; a metric with several labels also takes their values as
        one comma-separated string ("webhook,rejected"), as tests and logs name a series."""
        if len(label_values) == 1 and len(self.labels) > 1:
            label_values = tuple(label_values[0].split(",", len(self.labels) - 1))
        return self.values().get(label_values, 0.0)

    def total(self) -> float:
        return sum(self.values().values())

    def render(self) -> str:
        """This metric alone in the Prometheus text format."""
        return prometheus_client.generate_latest(self._metric).decode()


def counter(name: str, help_text: str, *labels: str) -> Metric:
    return Metric(Counter, name, help_text, labels)


def gauge(name: str, help_text: str, *labels: str) -> Metric:
    return Metric(Gauge, name, help_text, labels)


# Ingest
EVENTS_IN = counter("clickstream_events_total", "Valid input events by type.", "type")
DLQ = counter("clickstream_dlq_total", "Input sent to the dead-letter topic.", "reason")
LATE_EVENTS = counter(
    "clickstream_late_events_total", "Valid events whose windows were all closed."
)
INGEST_LAG = gauge("clickstream_ingest_lag", "Input records not yet consumed.", "partition")
INGEST_UNDECODABLE = gauge(
    "clickstream_ingest_undecodable",
    "1 while the partition's reading is stopped at a batch this worker cannot decode.",
    "partition",
)
SINK_FAILING = gauge(
    "clickstream_sink_failing", "1 while Parquet writes fail and reading is paused."
)
PARQUET_LAST_WRITE = gauge(
    "clickstream_parquet_last_write_timestamp_seconds",
    "Wall-clock time this worker's Parquet sink last made a write durable (0 = none since start).",
)
TRANSACTION_RETRIES = counter(
    "clickstream_transaction_produce_retries_total",
    "Produce requests of transactions retried because the previous transaction was settling "
    "(NotEnoughReplicasError, KIP-890).",
)

# Windows, alerts, incidents
ALERTS = counter("clickstream_alerts_total", "Flash-sale alerts emitted.")
INCIDENTS = counter(
    "clickstream_incidents_total", "Flash-sale incident records emitted, by event.", "event"
)
HANDED_ROWS = counter(
    "clickstream_handoff_rows_total",
    "Rows of validated events delivered to the window stage: path=memory (handed to this "
    "process's window stage, one hop) or path=kafka (the internal topic: another process owns "
    "the worker partition; a handoff resent after its inbox closed counts on both).",
    "path",
)
DUPLICATES = counter(
    "clickstream_replayed_events_skipped_total", "Replayed events recognised and not recounted."
)
DETECTION_LATENCY = Histogram(
    "clickstream_alert_detection_latency_seconds",
    "Event time to alert sent: from the newest event time the window stage had applied on the "
    "partition (the deciding view is at most that new) to the commit that sent the alert.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
    registry=REGISTRY,
)
ALERT_RECORDS_SKIPPED = counter(
    "clickstream_alert_records_skipped_total",
    "Records on the alerts topic that are not alerts, skipped by each reader.",
    "reader",
)
INCIDENT_RECORDS_SKIPPED = counter(
    "clickstream_incident_records_skipped_total",
    "Records on the incidents topic that are not incidents, skipped by each reader.",
    "reader",
)

# The pipeline as the web sees it
CONSUMER_LAG = gauge(
    "clickstream_consumer_lag", "Records not yet committed, whole deployment, by stage.", "stage"
)
STAGE_STALLED = gauge(
    "clickstream_stage_stalled",
    "1 while the stage has input waiting and made no progress for STALL_SECONDS.",
    "stage",
)
EVENTS_PER_SECOND = gauge(
    "clickstream_events_per_second",
    "Valid input events this worker ingested per second, over the last 10 s.",
)
LAST_EVENT_RECEIVED = gauge(
    "clickstream_last_event_received_timestamp_seconds",
    "Wall-clock time this worker last ingested a valid event (0 = none since start).",
)
NEWEST_EVENT_TIME = gauge(
    "clickstream_newest_event_timestamp_seconds",
    "Newest event time the window agent applied on this worker's partitions (0 = none).",
)
WINDOW_SLICES = gauge(
    "clickstream_window_table_slices",
    "Stored (product, step-long slice) entries of this worker's window table.",
)
WINDOW_PRODUCTS = gauge(
    "clickstream_window_table_products", "Products with stored window slices on this worker."
)

# Incident notifications
NOTIFICATIONS = counter(
    "clickstream_notifications_total",
    "Incident notifications by channel and outcome: delivered, already_delivered, rejected.",
    "channel",
    "outcome",
)
NOTIFICATION_FAILED_ATTEMPTS = counter(
    "clickstream_notification_failed_attempts_total",
    "Delivery attempts that failed and will be retried, by channel.",
    "channel",
)
NOTIFICATION_CHANNEL_FAILING = gauge(
    "clickstream_notification_channel_failing",
    "1 while the channel's last attempt failed or it rejected a notification since its last "
    "delivery.",
    "channel",
)
NOTIFICATIONS_PENDING = gauge(
    "clickstream_notifications_pending",
    "Incident records read and not yet delivered by the channel (bounded; the rest wait in Kafka).",
    "channel",
)


class ReconciliationTally(Collector):
    """The daily reports' reconciliation, read from DATA_DIR at each scrape (the report runs
    in another process): an unreadable tally leaves the last figures read."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.last = 0.0

    def collect(self) -> Iterator[MetricFamily]:
        # Imported here: the tally reads settings, which a bare import of metrics must not need.
        from app.reconciliation_tally import KINDS, TALLY, read_tally
        from app.settings import get_settings

        data_dir = get_settings().data_dir
        try:
            tally = read_tally(data_dir)
            self.totals = {kind: float(tally["totals"].get(kind, 0)) for kind in KINDS}
            self.last = float(tally["last"]["mismatches"]) if tally["last"] else 0.0
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("cannot read %s for /metrics: %s", data_dir / TALLY, exc)
        totals = CounterMetricFamily(
            "clickstream_reconciliation_mismatches_total",
            "Alert windows daily reports found missing in or extra in the stream, by kind.",
            labels=("kind",),
        )
        for kind, value in self.totals.items():
            totals.add_metric((kind,), value)
        yield totals
        yield GaugeMetricFamily(
            "clickstream_reconciliation_last_mismatches",
            "Mismatched alert windows in the most recent daily report (0 = all matched).",
            value=self.last,
        )


REGISTRY.register(ReconciliationTally())


def observe_detection_latency(
    alerts: int, source_watermarks: Mapping[int, tuple[int, float]]
) -> None:
    """Observe `alerts` alerts sent now, decided on a partition with these source watermarks
    (event time ms minus ALLOWED_LATENESS, and when each was set)."""
    from app.settings import get_settings

    if not alerts or not source_watermarks:
        return
    newest_ms = max(mark for mark, _ in source_watermarks.values())
    newest_ms += get_settings().allowed_lateness * 1000
    latency = max(0.0, time.time() - newest_ms / 1000)
    for _ in range(alerts):
        DETECTION_LATENCY.observe(latency)


def on_collect(refresh: Callable[[], None]) -> None:
    """Run `refresh` before each /metrics answer, to set gauges computed on demand."""
    _refreshers.append(refresh)


def render() -> bytes:
    """Every metric of this process in the Prometheus text format."""
    for refresh in _refreshers:
        refresh()
    return prometheus_client.generate_latest(REGISTRY)
