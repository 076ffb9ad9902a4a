"""`--output FILE.jsonl` (or `-` for stdout): the same events as Kafka would get, one per line."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import BinaryIO

from app.simulator.delivery import DeliveryStats
from app.simulator.stream import Emitted
from app.simulator.wire import encode_lines

logger = logging.getLogger(__name__)


class JsonLinesWriter:
    """Writes events as JSON Lines; a reader that goes away (`| head`) ends the run quietly."""

    def __init__(self, target: str) -> None:
        self.stats = DeliveryStats()
        self.target = target
        self.closed_by_reader = False
        self._file: BinaryIO = (
            sys.stdout.buffer if target == "-" else Path(target).open("wb")  # noqa: SIM115
        )

    def describe(self) -> str:
        return "standard output" if self.target == "-" else f"file {self.target}"

    async def write(self, events: list[Emitted]) -> None:
        if self.closed_by_reader or not events:
            return
        counts = [0, 0, 0]
        for event in events:
            counts[event[2]] += 1
        try:
            self._file.write(encode_lines([event[0] for event in events]))
        except BrokenPipeError:
            self._reader_gone()
            return
        self.stats.queued(counts)
        self.stats.acknowledged(counts)

    async def flush(self, older_than: float = 0.0) -> None:
        if self.closed_by_reader:
            return
        try:
            self._file.flush()
        except BrokenPipeError:
            self._reader_gone()

    async def close(self, timeout: float) -> None:
        await self.flush()
        if self.target != "-":
            self._file.close()

    def _reader_gone(self) -> None:
        logger.info("the reader of %s went away; stopping", self.describe())
        self.closed_by_reader = True
        if self.target == "-":
            # Point stdout at /dev/null so Python's exit-time flush does not fail again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
