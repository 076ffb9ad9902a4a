"""`clickstream simulate` as a user runs it: JSON Lines on stdout or in a file, no broker needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import cli

CLICKSTREAM = str(Path(sys.executable).parent / "clickstream")
HISTORY = ["--start", "2024-06-01T00:00:00Z", "--seed", "42"]


def simulate(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [CLICKSTREAM, "simulate", *args], capture_output=True, timeout=60, check=False
    )


def test_stdout_gets_json_lines_and_a_rerun_gives_the_same_bytes(clean_env: Path) -> None:
    done = simulate(*HISTORY, "--count", "300", "--output", "-")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 300
    events = [json.loads(line) for line in lines]
    assert events[0]["event_id"] == "sim-42-1" and events[-1]["event_id"] == "sim-42-300"
    assert b"Sent 300 events" in done.stderr  # the summary stays out of the data

    again = CliRunner().invoke(cli, ["simulate", *HISTORY, "--count", "300", "--output", "e.jsonl"])
    assert again.exit_code == 0, again.output
    assert (clean_env / "e.jsonl").read_bytes() == done.stdout
    assert "Sent 300 events" in again.output


def test_flash_sale_writes_its_plan(clean_env: Path) -> None:
    done = simulate(
        *HISTORY,
        "--duration",
        "1200",
        "--scenario",
        "flash-sale",
        "--plan",
        "plan.json",
        "--output",
        "events.jsonl",
    )
    assert done.returncode == 0, done.stderr
    plan = json.loads((clean_env / "plan.json").read_text())
    assert plan["scenario"] == "flash-sale" and plan["seed"] == 42
    assert plan["thresholds"] == {
        "views": 100,
        "purchases": 5,
        "window_size": 600,
        "window_step": 60,
    }
    assert {burst["role"] for burst in plan["bursts"]} == {"viral", "hot_seller"}
    assert plan["bursts"][0]["start"] == "2024-06-01T00:00:20.000Z"
    assert b"hot seller" in done.stderr


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--scenario", "flash-sale", "--products", "4"], "--products"),
        (["--start", "2999-01-01T00:00:00Z"], "--start"),
        (["--start", "yesterday"], "ISO-8601"),
        (["--batch-size", "0"], "--batch-size"),
    ],
)
def test_bad_options_are_refused_with_a_clear_line(
    clean_env: Path, args: list[str], complaint: str
) -> None:
    done = CliRunner().invoke(cli, ["simulate", *args, "--output", "-"])
    assert done.exit_code == 2
    assert complaint in done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)


def test_a_reader_that_stops_early_ends_the_run_quietly(clean_env: Path) -> None:
    with subprocess.Popen(
        [CLICKSTREAM, "simulate", *HISTORY, "--count", "5000000", "--output", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert json.loads(proc.stdout.readline())["event_id"] == "sim-42-1"
        proc.stdout.close()
        stderr = proc.stderr.read()
        assert proc.wait(timeout=30) == 0
    assert b"Traceback" not in stderr
