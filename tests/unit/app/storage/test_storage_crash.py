"""A crash at any step of a write (or of its recovery) neither loses nor duplicates a row."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.storage import events_table
from tests.support.storage import (
    SimulatedCrash,
    crash_at,
    events_writer,
    hidden_leftovers,
    offsets_seen,
    read_rows,
    spread_events,
    write_batches,
)

TOTAL = 60
EVENTS = spread_events(TOTAL)  # the crashed batch 10..39 spans three date directories


def crashed_write(root: Path, step: int) -> bool:
    """Store offsets 0..9, then write 10..39 crashing at `step`; False if it never got there."""
    writer = events_writer(root, fsync=True)
    write_batches(writer, EVENTS[:10], 10)
    with crash_at(step):
        try:
            writer.write(0, 10, 39, events_table(EVENTS[10:40]))
        except SimulatedCrash:
            return True
    return False


def assert_restart_stores_everything_once(root: Path, *, fsync: bool = True) -> None:
    restarted = events_writer(root, fsync=fsync)
    durable = restarted.recover(0)
    assert durable in (9, 39)
    assert offsets_seen(root) == list(range(durable + 1))  # readers see exactly the durable part
    write_batches(restarted, EVENTS[durable + 1 :], 7)  # the replay batches differently
    assert offsets_seen(root) == list(range(TOTAL))
    assert read_rows(root, "count(distinct event_id)") == [(TOTAL,)]
    assert hidden_leftovers(root) == []


def test_a_crash_at_every_step_of_a_write_then_recover_and_rebatch(tmp_path: Path) -> None:
    for step in itertools.count():
        root = tmp_path / f"crash-{step}"
        if not crashed_write(root, step):
            break
        assert_restart_stores_everything_once(root)
    assert step > 15, "the write should take many steps; is the crash hook still counting?"


@pytest.mark.slow
def test_a_crash_during_recovery_is_recovered_by_the_next_start(tmp_path: Path) -> None:
    scenarios = 0
    for step in itertools.count():
        crashed = tmp_path / f"crash-{step}"
        if not crashed_write(crashed, step):
            break
        for recovery_step in itertools.count():
            root = tmp_path / f"crash-{step}-{recovery_step}"
            shutil.copytree(crashed, root)
            with crash_at(recovery_step):
                try:
                    events_writer(root, fsync=True).recover(0)
                    recovered_cleanly = True
                except SimulatedCrash:
                    recovered_cleanly = False
            assert_restart_stores_everything_once(root, fsync=False)  # fsync steps tested above
            scenarios += 1
            if recovered_cleanly:
                break
    assert scenarios > step


_CHILD = """
import os, sys
from tests.support.storage import events_writer, spread_events, write_batches
from app.storage import events_table
root, stop_at = sys.argv[1], int(sys.argv[2])
events = spread_events(60)
writer = events_writer(__import__("pathlib").Path(root), fsync=True)
write_batches(writer, events[:10], 10)
real_replace, seen = os.replace, [0]
def replace_or_die(*args):
    if seen[0] == stop_at:
        os._exit(17)
    seen[0] += 1
    real_replace(*args)
os.replace = replace_or_die
writer.write(0, 10, 39, events_table(events[10:40]))
"""


@pytest.mark.parametrize("stop_at", range(5))  # intent, three files, durable end
def test_a_killed_process_leaves_a_state_the_next_one_recovers(
    tmp_path: Path, stop_at: int
) -> None:
    root = tmp_path / "events"
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(root), str(stop_at)],
        cwd=Path(__file__).parents[4],
        capture_output=True,
        text=True,
        check=False,
    )
    assert child.returncode == 17, child.stderr
    assert_restart_stores_everything_once(root)
