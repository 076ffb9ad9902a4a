"""Flash-sale incidents: one per burst of a product's alerts, opened, updated and resolved.

The per-window alert stays the original system's contract (one per product and window on
ALERTS_TOPIC). An incident groups them for people: one burst of one product, however many
hopping windows it crosses. Per worker partition, at each checkpoint (`agents.window_checkpoint`):

- **opens** with the first alert of a product that has no open incident. Its id is that
  alert's id (`<product_id>:<window start ms>`), so a replay after kill -9 rebuilds the same id;
- a further alert of the product joins it (`windows`, `latest_window_*`) when its window ends
  less than INCIDENT_QUIET_SECONDS after the end of the incident's latest window; its peak
  views and purchases follow the current counts of its windows (both only grow);
- **updates** go out when any of that changed, at most once per INCIDENT_UPDATE_SECONDS
  (wall clock, so a busy product does not flood a receiver);
- **resolves** when every window of the incident that is still open (its end not passed by
  the watermark) has reached PURCHASES_THRESHOLD, or once the watermark is
  INCIDENT_QUIET_SECONDS (event time) past the end of its latest window, since no window
  still open can join it any more (or earlier, when an alert arrives that is too late to
  join: that alert opens the next incident). Its `resolution` is `purchases` when its latest
  window reached PURCHASES_THRESHOLD (buyers caught up), else `quiet`.

Joining, the resolution and the windows of an incident depend on window counts and ends,
not on how the input was cut into polls, so the same input gives the same incidents on a
live run, a replay and after kill -9, with one exception: an alert decided after the
purchases of an open incident caught up, but in the same poll, joins it instead of opening
the next one. Conditions are checked at each checkpoint (every poll).

Open incidents are state like the window slices: one changelog record per product
(`INCIDENTS` store), written in the same Kafka transaction as the incident records they
caused, so across kill -9 and rebalances there is never a second open for one burst and never
a lost open or resolve.

Shapes: times are epoch milliseconds inside; records carry ISO-8601 UTC strings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import orjson

from agents.alerts import draw_table
from app.console_text import escape_control
from app.time_format import iso_utc_ms
from app.windowing.slices import KeyValueStore
from app.windowing.spec import NO_WATERMARK, WindowSpec
from app.windowing.window_alert import WindowAlert


class WindowCounts(Protocol):
    """What incidents read of the window state (`PartitionWindows`)."""

    @property
    def watermark_ms(self) -> int: ...
    def oldest_complete_window(self) -> int: ...
    def window_counts(self, product: str, window_start: int) -> list[int]: ...


@dataclass(slots=True)
class Incident:
    """One open incident of one product; `windows` are the starts of its alerted windows."""

    incident_id: str
    product_id: str
    opened_at_ms: int
    windows: list[int]
    peak_views: int
    purchases: int
    sequence: int = 0
    emitted_at_ms: int = 0
    changed: bool = False

    def encode(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def decode(cls, raw: bytes) -> Incident:
        return cls(**orjson.loads(raw))


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    """One record for INCIDENTS_TOPIC (key = product_id) and the console."""

    event: str  # opened | updated | resolved
    value: dict[str, Any]

    @property
    def product_id(self) -> str:
        return str(self.value["product_id"])

    def headline(self) -> str:
        """The console's line above the table, e.g. `FLASH SALE INCIDENT RESOLVED (quiet):
        P0036:1764489600000`."""
        reason = self.value["resolution"]
        event = self.event.upper() + (f" ({reason})" if reason else "")
        return f"FLASH SALE INCIDENT {event}: {escape_control(str(self.value['incident_id']))}"


_INCIDENT_HEADER = ("product_id", "first_window_start", "latest_window_end", "windows",
                    "peak_views", "purchases", "status")  # fmt: skip


def incident_table(record: IncidentRecord) -> str:
    """One incident record as a one-row console table (times in UTC)."""
    v = record.value

    def hhmm(iso: str) -> str:
        return iso[:16].replace("T", " ")

    cells = (
        escape_control(record.product_id), hhmm(v["first_window_start"]),
        hhmm(v["latest_window_end"]), str(v["windows"]), str(v["peak_views"]),
        str(v["purchases"]), str(v["status"]),
    )  # fmt: skip
    return draw_table(_INCIDENT_HEADER, cells)


class PartitionIncidents:
    """The open incidents of the products one worker partition owns."""

    def __init__(
        self,
        spec: WindowSpec,
        views_threshold: int,
        purchases_threshold: int,
        quiet_ms: int,
        update_every_ms: int,
        store: KeyValueStore,
        stored_keys: Iterable[bytes],
    ) -> None:
        self.spec = spec
        self.views_threshold = views_threshold
        self.purchases_threshold = purchases_threshold
        self.quiet_ms = quiet_ms
        self.update_every_ms = update_every_ms
        self.store = store
        self.open: dict[str, Incident] = {}
        # The watermark of the last advance: a window that ended before it had its final
        # counts then, and was refreshed with them, so later advances skip it.
        self._refreshed_to = NO_WATERMARK
        for key in stored_keys:
            raw = store.get(key)
            if raw is not None:
                self.open[key.decode()] = Incident.decode(raw)

    def add_alerts(
        self, alerts: list[WindowAlert], windows: WindowCounts, now_ms: int
    ) -> list[IncidentRecord]:
        """Open or grow incidents for the alerts one batch decided (`PartitionWindows.apply`).

        They are taken in the order per-event processing decides them (by the deciding view,
        then window start), whatever order the batch's summing produced. An incident opened
        here is published with every window that joined it in the same batch (one burst
        crosses up to WINDOW_SIZE / WINDOW_STEP windows at once)."""
        records: list[IncidentRecord] = []
        opening: dict[str, Incident] = {}  # opened by these alerts, open record not built yet
        for alert in sorted(alerts, key=lambda a: (a.decided_at_seq, a.window_start_ms)):
            product = alert.product_id
            incident = self.open.get(product)
            if incident is not None and self._too_late_to_join(incident, alert.window_start_ms):
                if opening.pop(product, None) is not None:
                    records.append(self._record(incident, "opened", now_ms))
                records.append(self._resolve(incident, windows, now_ms))
                incident = None
            if incident is None:
                incident = self.open[product] = opening[product] = Incident(
                    alert.alert_id, product, now_ms, [alert.window_start_ms],
                    alert.views, alert.purchases, emitted_at_ms=now_ms,
                )  # fmt: skip
            elif alert.window_start_ms not in incident.windows:
                incident.windows.append(alert.window_start_ms)
                incident.windows.sort()
                incident.peak_views = max(incident.peak_views, alert.views)
                incident.purchases = max(incident.purchases, alert.purchases)
                incident.changed = product not in opening
            self._store(incident)
        records += [self._record(incident, "opened", now_ms) for incident in opening.values()]
        return records

    def advance(self, windows: WindowCounts, now_ms: int) -> list[IncidentRecord]:
        """Refresh open incidents from the current counts and the watermark: resolve those
        whose burst is over, send a due update for the others. Call after every batch.
        While the watermark is unknown (a start, before every source partition reported),
        nothing resolves, but the windows alerts added still go out as updates."""
        if not self.open:
            return []
        watermark = windows.watermark_ms
        known = watermark != NO_WATERMARK
        records = []
        for incident in list(self.open.values()):
            if known:
                live_purchases = self._refresh(incident, windows, watermark, self._refreshed_to)
                if (
                    live_purchases and min(live_purchases) >= self.purchases_threshold
                ) or self._too_late_to_join(incident, self.spec.first_open_start(watermark)):
                    records.append(self._resolve(incident, windows, now_ms))
                    continue
            if incident.changed and now_ms - incident.emitted_at_ms >= self.update_every_ms:
                incident.changed = False
                records.append(self._record(incident, "updated", now_ms))
                self._store(incident)
            elif incident.changed:
                self._store(incident)
        if known:
            self._refreshed_to = watermark
        return records

    def _refresh(
        self, incident: Incident, windows: WindowCounts, watermark: int, final_before: int
    ) -> list[int]:
        """Take peak views and purchases from the current counts of the incident's windows
        that ended at or after `final_before`; return the purchases of those still open
        under `watermark`. (Summing a closed window again costs a read of each slice.)"""
        size = self.spec.size_ms
        oldest_whole = windows.oldest_complete_window()
        live_purchases = []
        for start in incident.windows:
            if start < oldest_whole or start + size < final_before:
                continue  # its counts were final, and taken, before
            views, _, purchases = windows.window_counts(incident.product_id, start)
            if views > incident.peak_views or purchases > incident.purchases:
                incident.peak_views = max(incident.peak_views, views)
                incident.purchases = max(incident.purchases, purchases)
                incident.changed = True
            if start + size >= watermark:  # still open: its end not passed
                live_purchases.append(purchases)
        return live_purchases

    def _too_late_to_join(self, incident: Incident, window_start: int) -> bool:
        """Whether a window starting at `window_start` (or later) ends INCIDENT_QUIET_SECONDS
        or more after the incident's latest window: the product was quiet that long. (Every
        window of the incident then is closed, as it ends before the oldest open one.)"""
        return window_start - incident.windows[-1] >= self.quiet_ms

    def _resolve(self, incident: Incident, windows: WindowCounts, now_ms: int) -> IncidentRecord:
        """Close the incident. Its resolution says why its burst is over: `purchases` when its
        latest window reached PURCHASES_THRESHOLD (buyers caught up), else `quiet`. That
        window is the last of the incident to close, so the answer does not depend on when
        the resolve is noticed."""
        self._refresh(incident, windows, NO_WATERMARK, NO_WATERMARK)
        purchases = windows.window_counts(incident.product_id, incident.windows[-1])[2]
        reason = "purchases" if purchases >= self.purchases_threshold else "quiet"
        del self.open[incident.product_id]
        del self.store[incident.product_id.encode()]
        return self._record(incident, "resolved", now_ms, reason)

    def _store(self, incident: Incident) -> None:
        self.store[incident.product_id.encode()] = incident.encode()

    def _record(
        self, incident: Incident, event: str, now_ms: int, resolution: str | None = None
    ) -> IncidentRecord:
        if event != "opened":
            incident.sequence += 1
        incident.emitted_at_ms = now_ms
        size = self.spec.size_ms
        first, latest = incident.windows[0], incident.windows[-1]
        value = {
            "incident_id": incident.incident_id,
            "event": event,
            "sequence": incident.sequence,
            "product_id": incident.product_id,
            "status": "resolved" if event == "resolved" else "open",
            "opened_at": iso_utc_ms(incident.opened_at_ms),
            "first_window_start": iso_utc_ms(first),
            "first_window_end": iso_utc_ms(first + size),
            "latest_window_start": iso_utc_ms(latest),
            "latest_window_end": iso_utc_ms(latest + size),
            "windows": len(incident.windows),
            "peak_views": incident.peak_views,
            "purchases": incident.purchases,
            "views_threshold": self.views_threshold,
            "purchases_threshold": self.purchases_threshold,
            "emitted_at": iso_utc_ms(now_ms),
            "resolved_at": iso_utc_ms(now_ms) if event == "resolved" else None,
            "resolution": resolution,
        }
        return IncidentRecord(event, value)
