"""What the daily report's reconciliation found, kept on disk for the worker's /metrics.

The report runs in its own process (`clickstream report`, the scheduler); the worker serves
/metrics. Each report run adds its mismatched alert windows to DATA_DIR/reports/
reconciliation.json (totals by kind, and the latest run's figures), under a lock, and every
/metrics request reads the file back:

- `clickstream_reconciliation_mismatches_total{kind}`: missing_in_stream, extra_in_stream,
  over all report runs (a report run again counts again: it found them again);
- `clickstream_reconciliation_last_mismatches`: mismatches in the most recent run (0 = clean).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

from app.storage.durable import write_json_atomically
from app.storage.locks import LockFile

logger = logging.getLogger(__name__)

TALLY = Path("reports") / "reconciliation.json"
KINDS = ("missing_in_stream", "extra_in_stream")


def read_tally(data_dir: Path) -> dict[str, Any]:
    """The stored tally, or an empty one when no report has reconciled yet."""
    path = data_dir / TALLY
    if not path.exists():
        return {"totals": dict.fromkeys(KINDS, 0), "last": None}
    loaded: dict[str, Any] = orjson.loads(path.read_bytes())
    return loaded


def record_run(data_dir: Path, day: date, mismatches: dict[str, int]) -> None:
    """Add one report run's mismatches, by kind (missing_in_stream, extra_in_stream)."""
    path = data_dir / TALLY
    with LockFile(path.with_name(".reconciliation.lock"), blocking=True):
        tally = read_tally(data_dir)
        for kind in KINDS:
            tally["totals"][kind] = int(tally["totals"].get(kind, 0)) + mismatches.get(kind, 0)
        tally["last"] = {
            "date": day.isoformat(),
            "mismatches": sum(mismatches.get(kind, 0) for kind in KINDS),
            "at": datetime.now(UTC).isoformat(),
        }
        write_json_atomically(path, tally, fsync=True)
