"""How the day's stream alerts compare with the backtest's, as the report shows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from batch.render import shown

_SHOWN = 10  # windows listed per class in the report


@dataclass(frozen=True, slots=True, order=True)
class WindowRef:
    product_id: str
    window_start: datetime

    def __str__(self) -> str:
        return f"{shown(self.product_id)} {self.window_start.isoformat()}"


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """How the day's stream alerts compare with the backtest's (see the module doc)."""

    stream_alerts: int
    backtest_alerts: int
    matched: int
    order_dependent: tuple[WindowRef, ...] = ()
    missing_in_stream: tuple[WindowRef, ...] = ()
    extra_in_stream: tuple[WindowRef, ...] = ()
    imported: int = 0
    pending: tuple[WindowRef, ...] = ()

    @property
    def mismatches(self) -> int:
        return len(self.missing_in_stream) + len(self.extra_in_stream)

    def headline(self) -> str:
        """One line: "all N matched" on a clean day, else the mismatches first."""
        extras = []
        if self.order_dependent:
            extras.append(f"{len(self.order_dependent):,} order-dependent")
        if self.imported:
            extras.append(f"{self.imported:,} in imported history, not compared")
        if self.pending:
            extras.append(f"{len(self.pending):,} too recent, not compared yet")
        tail = f" ({', '.join(extras)})" if extras else ""
        if not self.mismatches and not self.matched:
            if not extras:
                return "Stream alerts against the backtest: no alerts on either side."
            return f"Stream alerts against the backtest: nothing to compare{tail}."
        if not self.mismatches:
            return f"Stream alerts against the backtest: all {self.matched:,} matched{tail}."
        return (
            f"Stream alerts against the backtest: {self.mismatches:,} MISMATCHED - "
            f"{len(self.missing_in_stream):,} missing in the stream, "
            f"{len(self.extra_in_stream):,} extra in the stream; {self.matched:,} matched{tail}."
        )

    def details(self) -> list[str]:
        """The mismatched, order-dependent and pending windows, a few of each."""
        lines = []
        for label, refs in (("missing in the stream", self.missing_in_stream),
                            ("extra in the stream", self.extra_in_stream),
                            ("order-dependent", self.order_dependent),
                            ("not compared yet", self.pending)):  # fmt: skip
            lines += [f"{label}: {ref}" for ref in refs[:_SHOWN]]
            if len(refs) > _SHOWN:
                lines.append(f"{label}: ... and {len(refs) - _SHOWN:,} more")
        return lines

    def as_dict(self) -> dict[str, object]:
        def listed(refs: tuple[WindowRef, ...]) -> list[dict[str, str]]:
            return [{"product_id": r.product_id, "window_start": r.window_start.isoformat()}
                    for r in refs]  # fmt: skip

        return {
            "stream_alerts": self.stream_alerts,
            "backtest_alerts": self.backtest_alerts,
            "matched": self.matched,
            "mismatches": self.mismatches,
            "missing_in_stream": listed(self.missing_in_stream),
            "extra_in_stream": listed(self.extra_in_stream),
            "order_dependent": listed(self.order_dependent),
            "imported_not_compared": self.imported,
            "pending_not_compared_yet": listed(self.pending),
        }
