"""Report files on disk: written to a temporary name, fsynced, renamed, so never half there."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.storage.durable import write_file_atomically
from batch.html import render_html
from batch.render import render_json, render_text
from batch.summary import DailySummary

FORMATS = ("text", "json", "html")
_SUFFIX = {"text": "txt", "json": "json", "html": "html"}


@dataclass(frozen=True, slots=True)
class RenderedReport:
    """The three renderings of one summary, by format name."""

    summary: DailySummary
    text: str
    json: str
    html: str

    @classmethod
    def of(cls, summary: DailySummary) -> RenderedReport:
        return cls(summary, render_text(summary), render_json(summary), render_html(summary))

    def in_format(self, name: str) -> str:
        return {"text": self.text, "json": self.json, "html": self.html}[name]


def report_paths(reports_dir: Path, summary: DailySummary) -> dict[str, Path]:
    stem = f"summary_{summary.date.isoformat()}"
    return {name: reports_dir / f"{stem}.{_SUFFIX[name]}" for name in FORMATS}


def write_report(reports_dir: Path, report: RenderedReport) -> list[Path]:
    """Write DATA_DIR/reports/summary_D.{json,txt,html}; returns the paths written."""
    paths = report_paths(reports_dir, report.summary)
    for name, path in paths.items():
        write_file_atomically(path, report.in_format(name).encode("utf-8"), fsync=True)
    return list(paths.values())
