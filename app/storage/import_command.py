"""`clickstream import`: JSON Lines event logs into the Parquet store, once, with a rejects file."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import click
import orjson

from app.errors import StorageError
from app.events import EventParser
from app.settings import get_settings
from app.storage.durable import storage_error
from app.storage.import_store import add_events, import_lock
from app.storage.log_lines import RejectedLine, read_chunks, source_partition
from app.storage.schema import EVENTS_DIR


@dataclass
class FileResult:
    """What importing one file did."""

    path: Path
    lines: int = 0
    blank: int = 0
    written: int = 0
    already_stored: int = 0
    rejected: list[RejectedLine] = field(default_factory=list)


def _inputs(paths: tuple[Path, ...]) -> list[Path]:
    """Files as given; a directory stands for its *.jsonl files, by name."""
    found: list[Path] = []
    for path in paths:
        found += sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    return found


@click.command("import")
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, readable=True, path_type=Path)
)
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where bad lines go, as JSON Lines with the reason "
                   "[default: DATA_DIR/imports/rejects_<UTC time>.jsonl].")  # fmt: skip
def import_command(paths: tuple[Path, ...], rejects: Path | None) -> None:
    """Load JSON Lines event logs into the Parquet store (DATA_DIR/events).

    Reads the original system's RAW_LOGS_PATH/clickstream_YYYY-MM-DD.jsonl files (five
    fields, no event_id) and `clickstream simulate --output` files; a directory means its
    *.jsonl files. Each line is validated as the worker validates a message; bad lines go to
    the rejects file with the reason. Each line keeps its event_id, or gets one from its
    file name and line, so importing a file again adds nothing. Afterwards `clickstream
    report` and `clickstream backtest` cover those days.

    \b
    Examples:
      clickstream import /var/log/clickstream/raw/clickstream_2024-06-0*.jsonl
      clickstream import /var/log/clickstream/raw            # every *.jsonl in it
      clickstream simulate --start 2024-06-01 --duration 86400 --output day.jsonl
      clickstream import day.jsonl --rejects day-rejects.jsonl
    """
    settings = get_settings()
    files = _inputs(paths)
    if not files:
        msg = f"no *.jsonl files in {', '.join(map(str, paths))}"
        raise click.UsageError(msg)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    rejects = rejects or settings.data_dir / "imports" / f"rejects_{stamp}.jsonl"
    parser = EventParser(settings.max_event_bytes, settings.max_clock_skew)
    root = settings.data_dir / EVENTS_DIR
    began = time.monotonic()
    results: list[FileResult] = []
    total_bytes = sum(path.stat().st_size for path in files)
    try:
        with (
            import_lock(root),
            click.progressbar(length=total_bytes, label="Importing",
                              file=click.get_text_stream("stderr")) as bar,
        ):  # fmt: skip
            for path in files:
                results.append(_import_file(path, parser, root, bar.update))
    except OSError as exc:
        error = storage_error("import into", root, exc, "then run the import again")
        raise error from exc
    seconds = max(time.monotonic() - began, 1e-6)
    _write_rejects(rejects, results)
    _summary(results, rejects, seconds)


def _import_file(
    path: Path, parser: EventParser, root: Path, advance: Callable[[int], None]
) -> FileResult:
    result = FileResult(path)
    tag = f"{-1 - source_partition(path.name):08x}"
    for chunk in read_chunks(path, parser):
        first = result.lines + 1
        result.lines += chunk.lines
        result.blank += chunk.blank
        result.rejected += chunk.rejected
        added = add_events(root, chunk.events, f"{tag}-{first:010d}-{result.lines:010d}")
        result.written += added.written
        result.already_stored += added.already_stored
        advance(chunk.bytes_read)
    return result


def _write_rejects(path: Path, results: list[FileResult]) -> None:
    rejected = [line for result in results for line in result.rejected]
    if not rejected:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            for line in rejected:
                handle.write(orjson.dumps(line.as_dict(), option=orjson.OPT_APPEND_NEWLINE))
    except OSError as exc:
        msg = f"cannot write the rejects file {path}: {exc}; choose another with --rejects"
        raise StorageError(msg) from exc


def _summary(results: list[FileResult], rejects: Path, seconds: float) -> None:
    lines = sum(r.lines for r in results)
    head = f"{'file':<40}{'lines':>10}{'imported':>10}{'stored before':>15}{'rejected':>10}"
    click.echo(head)
    for r in results:
        click.echo(f"{r.path.name[:39]:<40}{r.lines:>10,}{r.written:>10,}"
                   f"{r.already_stored:>15,}{len(r.rejected):>10,}")  # fmt: skip
    written = sum(r.written for r in results)
    rejected = sum(len(r.rejected) for r in results)
    blank = sum(r.blank for r in results)
    skipped = f", {blank:,} blank lines skipped" if blank else ""
    click.echo(f"{len(results)} files, {lines:,} lines in {seconds:.1f} s "
               f"({lines / seconds:,.0f} lines/s): {written:,} events imported, "
               f"{sum(r.already_stored for r in results):,} already stored, "
               f"{rejected:,} rejected{skipped}.")  # fmt: skip
    if rejected:
        click.echo(f"Rejected lines and why: {rejects}", err=True)
