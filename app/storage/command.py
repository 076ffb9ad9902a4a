"""`clickstream compact`: merge one day's small Parquet files into a few large ones."""

from __future__ import annotations

import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from app.settings import get_settings
from app.storage.compaction import TARGET_ROWS, compact_date
from app.storage.schema import ALERTS_DIR, EVENTS_DIR


@click.command("compact")
@click.option("--date", "day", required=True, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="The UTC day to compact, YYYY-MM-DD.")  # fmt: skip
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Root of events/ and alerts/ (default: DATA_DIR).")  # fmt: skip
@click.option("--what", type=click.Choice(["events", "alerts", "both"]), default="both",
              show_default=True, help="Which data set to compact.")  # fmt: skip
@click.option("--target-rows", type=click.IntRange(min=1000), default=TARGET_ROWS,
              show_default=True, help="Rows per merged file at most.")  # fmt: skip
def compact_command(day: datetime, data_dir: Path | None, what: str, target_rows: int) -> None:
    """Merge one day's small Parquet files into a few large ones, atomically.

    Readers of DATA_DIR/<set>/*/*.parquet see every row exactly once before and after; a
    running worker may keep writing (it waits for the day's lock while the swap happens).

    \b
    Examples:
      clickstream compact --date 2024-06-01
      clickstream compact --date 2024-06-01 --what events
      clickstream compact --date 2024-06-01 --data-dir /srv/clickstream/data
    """
    root = data_dir if data_dir is not None else get_settings().data_dir
    names = [EVENTS_DIR, ALERTS_DIR] if what == "both" else [what]
    for name in names:
        began = time.monotonic()
        with ExitStack() as stack:
            bar = _LazyProgressBar(stack, f"{name} {day.date()}")
            result = compact_date(root / name, day.date(), target_rows=target_rows, on_progress=bar)
        seconds = time.monotonic() - began
        if result.merged_files == 0:
            click.echo(f"{name} {result.day}: nothing to compact ({result.files_before} files).")
            continue
        click.echo(
            f"{name} {result.day}: {result.files_before} files -> {result.files_after} "
            f"({result.merged_files} merged, {result.merged_rows:,} rows) in {seconds:.1f} s."
        )


class _LazyProgressBar:
    """A click progress bar that appears once compaction knows how many files it merges."""

    def __init__(self, stack: ExitStack, label: str) -> None:
        self.stack = stack
        self.label = label
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = self.stack.enter_context(
                click.progressbar(
                    length=total, label=self.label, file=click.get_text_stream("stderr")
                )
            )
        self.bar.update(done - self.bar.pos)
