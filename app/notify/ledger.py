"""What one channel has delivered, kept on disk so that a restart does not repeat it.

One file per channel and partition of INCIDENTS_TOPIC, `<dir>/<channel>/<topic>-<p>.ids`:
a delivery id per line (as a JSON string), appended and fsynced after the receiver took the
notification and before the consumer commits past it. Only the partition's owner writes it.
A torn last line (a crash mid-append) is ignored. The newest `keep` ids are kept: far more than
the records a replay can bring back (the notifier holds at most a few hundred uncommitted).
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from app.storage.durable import fsync_dir, write_file_atomically

KEEP = 10_000


def ledger_path(directory: Path, channel: str, topic: str, partition: int) -> Path:
    return directory / channel / f"{topic}-{partition}.ids"


class DeliveryLedger:
    """The delivery ids (`<incident_id>/<sequence>`) handled on one channel and partition.

    `add` raises OSError when the disk refuses the write; the id is then not recorded.
    """

    def __init__(self, path: Path, keep: int = KEEP) -> None:
        self.path = path
        self.keep = keep
        self._ids: dict[str, None] = {}  # insertion-ordered: the oldest first
        self._lines = 0
        self._torn = False  # the file ends in a partial line: the next append starts anew
        if path.exists():
            data = path.read_bytes()
            self._torn = bool(data) and not data.endswith(b"\n")
            for line in data.splitlines():
                try:
                    delivery_id = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(delivery_id, str):
                    self._remember(delivery_id)
                    self._lines += 1

    def __contains__(self, delivery_id: object) -> bool:
        return delivery_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, delivery_id: str) -> None:
        """Record `delivery_id` durably (appended and fsynced) before returning."""
        if self._lines >= 2 * self.keep:
            self._remember(delivery_id)
            self._rewrite()
            return
        new_file = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as handle:
            handle.write((b"\n" if self._torn else b"") + orjson.dumps(delivery_id) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        if new_file:
            fsync_dir(self.path.parent)
        self._torn = False
        self._remember(delivery_id)
        self._lines += 1

    def _remember(self, delivery_id: str) -> None:
        self._ids.pop(delivery_id, None)
        self._ids[delivery_id] = None
        while len(self._ids) > self.keep:
            del self._ids[next(iter(self._ids))]

    def _rewrite(self) -> None:
        """Replace the file by the newest `keep` ids in one step."""
        data = b"".join(orjson.dumps(delivery_id) + b"\n" for delivery_id in self._ids)
        write_file_atomically(self.path, data, fsync=True)
        self._torn = False
        self._lines = len(self._ids)
