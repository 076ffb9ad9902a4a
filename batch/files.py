"""Report files on disk: written to a temporary name, fsynced, renamed, so never half there."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

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


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` in one step: a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def report_paths(reports_dir: Path, summary: DailySummary) -> dict[str, Path]:
    stem = f"summary_{summary.date.isoformat()}"
    return {name: reports_dir / f"{stem}.{_SUFFIX[name]}" for name in FORMATS}


def write_report(reports_dir: Path, report: RenderedReport) -> list[Path]:
    """Write DATA_DIR/reports/summary_D.{json,txt,html}; returns the paths written."""
    paths = report_paths(reports_dir, report.summary)
    for name, path in paths.items():
        atomic_write(path, report.in_format(name).encode("utf-8"))
    return list(paths.values())
