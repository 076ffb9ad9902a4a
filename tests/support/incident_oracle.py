"""An independent recount of flash-sale incidents: plain Python, no project code.

Events of one input partition are replayed one at a time, in order. Windows and alerts are
counted as `tests.support.window_oracle` does; after each event the incident rules of the
README apply:

- an alert of a product with no open incident opens one, id `<product>:<window start ms>`;
  alerts decided by the same event are taken oldest window first;
- an alert joins the open incident when its window ends less than `quiet` after the end of
  the incident's latest window; otherwise the incident resolves (`quiet`) and the alert opens
  the next one;
- after each event, with watermark W = newest event time - lateness: the incident resolves
  when its windows still open (end >= W) all have purchases >= P, or when the oldest window
  still open starts `quiet` or more after its latest window's start;
- a resolved incident's resolution is `purchases` when its latest window has purchases >= P,
  else `quiet`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TYPES = {"view": 0, "add_to_cart": 1, "purchase": 2}


@dataclass
class OracleIncident:
    incident_id: str
    product_id: str
    windows: list[int]
    peak_views: int
    purchases: int
    resolution: str | None = None


@dataclass
class IncidentOracle:
    size: int = 600_000
    step: int = 60_000
    lateness: int = 60_000
    views: int = 100
    purchases: int = 5
    quiet: int = 600_000
    counts: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    alerted: set[tuple[str, int]] = field(default_factory=set)
    open: dict[str, OracleIncident] = field(default_factory=dict)
    resolved: list[OracleIncident] = field(default_factory=list)
    max_seen: int | None = None

    def feed(self, product: str, event_type: str, t: int) -> None:
        self.max_seen = t if self.max_seen is None else max(self.max_seen, t)
        watermark = self.max_seen - self.lateness
        decided = []
        start = t - t % self.step - self.size + self.step
        while start <= t:
            if start + self.size >= watermark:  # the window is still open
                key = (product, start)
                c = self.counts.setdefault(key, [0, 0, 0])
                c[TYPES[event_type]] += 1
                if c[0] > self.views and key not in self.alerted and c[0] - 1 == self.views:
                    self.alerted.add(key)
                    if c[2] < self.purchases:
                        decided.append((start, list(c)))
            start += self.step
        for start, c in decided:
            self._alert(product, start, c)
        self._advance(watermark)

    def _alert(self, product: str, start: int, c: list[int]) -> None:
        incident = self.open.get(product)
        if incident is not None and start - incident.windows[-1] >= self.quiet:
            self._resolve(incident)
            incident = None
        if incident is None:
            self.open[product] = OracleIncident(f"{product}:{start}", product, [start], c[0], c[2])
            return
        incident.windows.append(start)

    def _advance(self, watermark: int) -> None:
        oldest_open = -((-(watermark - self.size)) // self.step) * self.step
        for incident in list(self.open.values()):
            live = []
            for start in incident.windows:
                v, _, p = self.counts[(incident.product_id, start)]
                incident.peak_views = max(incident.peak_views, v)
                incident.purchases = max(incident.purchases, p)
                if start + self.size >= watermark:
                    live.append(p)
            if (live and min(live) >= self.purchases) or (
                oldest_open - incident.windows[-1] >= self.quiet
            ):
                self._resolve(incident)

    def _resolve(self, incident: OracleIncident) -> None:
        latest = self.counts[(incident.product_id, incident.windows[-1])]
        incident.resolution = "purchases" if latest[2] >= self.purchases else "quiet"
        del self.open[incident.product_id]
        self.resolved.append(incident)

    def summary(self) -> list[tuple[str, str | None, int, int, int]]:
        """(incident id, resolution or None while open, windows, first start, latest start)."""
        return sorted(
            (i.incident_id, i.resolution, len(i.windows), i.windows[0], i.windows[-1])
            for i in [*self.resolved, *self.open.values()]
        )
