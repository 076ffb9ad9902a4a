"""In-process counters and gauges of the worker, rendered as Prometheus text for /metrics."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Metric:
    """A counter or gauge with optional labels.

    `label` names one label, or several comma separated ("channel,outcome"); a metric with
    several takes each `label_value` as their values, comma separated in the same order.
    """

    def __init__(self, name: str, help_text: str, kind: str, label: str | None = None) -> None:
        self.name = name
        self.help_text = help_text
        self.kind = kind
        self.label = label
        self.values: dict[str, float] = {}
        self._lock = threading.Lock()

    def inc(self, amount: float = 1, label_value: str = "") -> None:
        with self._lock:
            self.values[label_value] = self.values.get(label_value, 0) + amount

    def set(self, value: float, label_value: str = "") -> None:
        with self._lock:
            self.values[label_value] = value

    def get(self, label_value: str = "") -> float:
        return self.values.get(label_value, 0)

    def total(self) -> float:
        return sum(self.values.values())

    def render(self) -> str:
        lines = [f"# HELP {self.name} {self.help_text}", f"# TYPE {self.name} {self.kind}"]
        items = sorted(self.values.items()) or [("", 0.0)]
        for label_value, value in items:
            labels = self._labels(label_value)
            number = int(value) if float(value).is_integer() else value
            lines.append(f"{self.name}{labels} {number}")
        return "\n".join(lines)

    def _labels(self, label_value: str) -> str:
        if not self.label or not label_value:
            return ""
        names = self.label.split(",")
        values = label_value.split(",", len(names) - 1)
        pairs = zip(names, values, strict=False)
        return "{" + ",".join(f'{name}="{value}"' for name, value in pairs) + "}"


class Registry:
    """All metrics of one process."""

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}
        self._collectors: list[Callable[[], None]] = []

    def counter(self, name: str, help_text: str, label: str | None = None) -> Metric:
        return self._metrics.setdefault(name, Metric(name, help_text, "counter", label))

    def gauge(self, name: str, help_text: str, label: str | None = None) -> Metric:
        return self._metrics.setdefault(name, Metric(name, help_text, "gauge", label))

    def on_collect(self, collector: Callable[[], None]) -> None:
        """Run `collector` before each render, to refresh gauges computed on demand."""
        self._collectors.append(collector)

    def render(self) -> str:
        for collect in self._collectors:
            collect()
        return "\n".join(m.render() for m in self._metrics.values()) + "\n"


REGISTRY = Registry()
EVENTS_IN = REGISTRY.counter("clickstream_events_total", "Valid input events by type.", "type")
DLQ = REGISTRY.counter("clickstream_dlq_total", "Input sent to the dead-letter topic.", "reason")
LATE_EVENTS = REGISTRY.counter(
    "clickstream_late_events_total", "Valid events whose windows were all closed."
)
PARQUET_LAST_WRITE = REGISTRY.gauge(
    "clickstream_parquet_last_write_timestamp_seconds",
    "Wall-clock time this worker's Parquet sink last made a write durable (0 = none since start).",
)
ALERTS = REGISTRY.counter("clickstream_alerts_total", "Flash-sale alerts emitted.")
INCIDENTS = REGISTRY.counter(
    "clickstream_incidents_total", "Flash-sale incident records emitted, by event.", "event"
)
DUPLICATES = REGISTRY.counter(
    "clickstream_replayed_events_skipped_total", "Replayed events recognised and not recounted."
)
RECONCILIATION_MISMATCHES = REGISTRY.counter(
    "clickstream_reconciliation_mismatches_total",
    "Alert windows daily reports found missing in or extra in the stream, by kind.",
    "kind",
)
RECONCILIATION_LAST = REGISTRY.gauge(
    "clickstream_reconciliation_last_mismatches",
    "Mismatched alert windows in the most recent daily report (0 = all matched).",
)


def _refresh_reconciliation() -> None:
    # Imported here: the tally reads settings, which a bare import of metrics must not need.
    from app.reconciliation_tally import refresh_metrics
    from app.settings import get_settings

    refresh_metrics(get_settings().data_dir, RECONCILIATION_MISMATCHES, RECONCILIATION_LAST)


REGISTRY.on_collect(_refresh_reconciliation)
