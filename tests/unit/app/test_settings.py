"""Settings: defaults as the README documents them, and one clear line for every bad value."""

from __future__ import annotations

import subprocess
import sys
from datetime import time
from pathlib import Path

import pytest

from app.errors import SettingsError
from app.settings import load_settings


def test_defaults_match_the_design(clean_env: Path) -> None:
    s = load_settings()
    assert s.kafka_bootstrap_servers == "localhost:9092"
    assert (s.kafka_topic, s.alerts_topic, s.dlq_topic) == (
        "clickstream-events", "flash-sale-alerts", "clickstream-events-dlq",
    )  # fmt: skip
    assert (s.views_threshold, s.purchases_threshold) == (100, 5)
    assert (s.window_size, s.window_step, s.allowed_lateness) == (600, 60, 60)
    assert s.window_size // s.window_step == 10
    assert s.report_time == time(0, 15)
    assert s.app_id == "clickstream"
    assert (s.max_event_bytes, s.max_clock_skew) == (262144, 3600)
    assert s.smtp_host is None


def test_environment_and_dotenv_are_read(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".env").write_text("VIEWS_THRESHOLD=7\nREPORT_TIME=23:05\n")
    monkeypatch.setenv("WINDOW_SIZE", "300")
    s = load_settings()
    assert s.views_threshold == 7
    assert s.report_time == time(23, 5)
    assert s.window_size == 300


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("VIEWS_THRESHOLD", "abc", "VIEWS_THRESHOLD='abc' is not allowed: expected a whole number >= 0"),
        ("WINDOW_STEP", "7", "WINDOW_STEP='7' is not allowed: expected a whole number of seconds >= 1 that divides WINDOW_SIZE"),
        ("REPORT_TIME", "25:00", "REPORT_TIME='25:00' is not allowed: expected a time of day as HH:MM"),
        ("REPORT_TIMEZONE", "Mars/Base", "REPORT_TIMEZONE='Mars/Base' is not allowed: expected an IANA time zone"),
        ("SMTP_PORT", "70000", "SMTP_PORT='70000' is not allowed: expected a port from 1 to 65535"),
        ("SIMULATOR_INTERVAL", "-1", "SIMULATOR_INTERVAL='-1' is not allowed: expected a number of seconds >= 0"),
        ("APP_ID", "has space", "APP_ID='has space' is not allowed"),
    ],
)  # fmt: skip
def test_bad_value_names_variable_value_and_what_is_allowed(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(expected)
    assert "\n" not in message
    assert f"Fix {variable} in the environment or in .env." in message


def test_cli_reports_a_bad_setting_in_one_line(clean_env: Path) -> None:
    env = {"PATH": str(Path(sys.executable).parent), "WINDOW_SIZE": "600", "WINDOW_STEP": "7"}
    code = "import agents.worker_app as worker; worker.app"  # what `faust -A` does first
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            cwd=clean_env, check=False)  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "error: WINDOW_STEP='7' is not allowed: expected a whole number of seconds >= 1 "
        "that divides WINDOW_SIZE. Fix WINDOW_STEP in the environment or in .env."
    ]


def test_env_example_documents_every_variable(clean_env: Path) -> None:
    from app.settings import Settings

    example = (Path(__file__).parents[3] / ".env.example").read_text()
    for name in Settings.model_fields:
        assert f"{name.upper()}=" in example, f"{name.upper()} missing from .env.example"


def test_env_example_values_are_valid_defaults(clean_env: Path) -> None:
    example = (Path(__file__).parents[3] / ".env.example").read_text()
    lines = [line.split("#")[0].strip() for line in example.splitlines()]
    (clean_env / ".env").write_text("\n".join(line for line in lines if line))
    assert load_settings() == load_settings(_env_file=None)
