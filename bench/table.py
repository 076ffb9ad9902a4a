"""The one printed table: each row "ours / baseline = ratio", with a note on conditions."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime


@dataclass(frozen=True)
class Row:
    """One figure; `ratio` is ours / baseline (for latency: ours / target, lower is better)."""

    figure: str
    ours: str
    baseline: str
    ratio: float | None
    note: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def format_table(rows: list[Row], started: datetime, seconds: int) -> str:
    name_w = max(len(r.figure) for r in rows)
    ours_w = max(len(r.ours) for r in rows)
    base_w = max(len(r.baseline) for r in rows)
    lines = [f"make bench, {started:%Y-%m-%d %H:%M} UTC, {seconds} s; ratio = ours / baseline"]
    for r in rows:
        ratio = "n/a" if r.ratio is None else f"{r.ratio:.2f}"
        lines.append(f"{r.figure:<{name_w}}  {r.ours:>{ours_w}} / {r.baseline:<{base_w}}"
                     f"  = ratio {ratio:<6} {r.note}")  # fmt: skip
    return "\n".join(lines)
