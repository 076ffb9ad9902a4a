"""The write-ahead progress record of one (topic, partition): durable end offset and open intent."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from app.errors import StorageError
from app.storage.durable import make_dir, write_json_atomically

PROGRESS_DIR = "_progress"


@dataclass(frozen=True, slots=True)
class Intent:
    """A write that has begun: offsets [first, last] go to `files` (paths relative to the root)."""

    first: int
    last: int
    files: tuple[str, ...]

    @property
    def dir_names(self) -> set[str]:
        return {Path(name).parent.name for name in self.files}


@dataclass(frozen=True, slots=True)
class PartitionProgress:
    """Offsets up to `durable_end` are stored for good (-1: none); `intent` is a write in flight."""

    topic: str
    partition: int
    durable_end: int = -1
    intent: Intent | None = None


class ProgressLog:
    """Reads and atomically replaces root/_progress/<topic>-p<partition>.json."""

    def __init__(self, root: Path, topic: str, *, fsync: bool) -> None:
        self.directory = root / PROGRESS_DIR
        self.topic = topic
        self.fsync = fsync

    def path(self, partition: int) -> Path:
        return self.directory / f"{self.topic}-p{partition}.json"

    def load(self, partition: int) -> PartitionProgress:
        path = self.path(partition)
        if not path.exists():
            return PartitionProgress(self.topic, partition)
        return _read(path)

    def save(self, progress: PartitionProgress) -> None:
        make_dir(self.directory, fsync=self.fsync)
        write_json_atomically(self.path(progress.partition), _encode(progress), fsync=self.fsync)


def open_intents(root: Path) -> list[Intent]:
    """Every unfinished write under `root`, of any topic (compaction must leave their files be)."""
    found = []
    for path in sorted((root / PROGRESS_DIR).glob("*.json")):
        progress = _read(path)
        if progress.intent is not None:
            found.append(progress.intent)
    return found


def _read(path: Path) -> PartitionProgress:
    try:
        return _decode(orjson.loads(path.read_bytes()))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        msg = (
            f"progress record {path} is unreadable ({exc}); restore it from a backup, or "
            "delete it to let the consumer replay from Kafka's committed offset"
        )
        raise StorageError(msg) from exc


def _encode(progress: PartitionProgress) -> dict[str, object]:
    intent = progress.intent
    return {
        "version": 1,
        "topic": progress.topic,
        "partition": progress.partition,
        "durable_end": progress.durable_end,
        "intent": None
        if intent is None
        else {"first": intent.first, "last": intent.last, "files": list(intent.files)},
    }


def _decode(raw: Any) -> PartitionProgress:
    intent = raw["intent"]
    return PartitionProgress(
        topic=str(raw["topic"]),
        partition=int(raw["partition"]),
        durable_end=int(raw["durable_end"]),
        intent=None
        if intent is None
        else Intent(int(intent["first"]), int(intent["last"]), tuple(map(str, intent["files"]))),
    )
