"""README.md: the operator's page stays true to the settings, the stack and the alert format."""

from __future__ import annotations

import re
from datetime import datetime, time
from pathlib import Path

import orjson
import pytest

from agents.alerts import alert_record, console_table
from app.settings import Settings
from app.windowing.window_alert import WindowAlert
from tests.support.compose_files import APP_SERVICES, ROOT, load_compose

README = (ROOT / "README.md").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.MULTILINE | re.DOTALL)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def shown_default(value: object) -> str:
    """A default as the configuration table writes it."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Path):
        return f"./{value}" if not value.is_absolute() else str(value)
    return str(value)


def configuration_rows() -> dict[str, str]:
    rows = {}
    for line in section("Configuration").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[1].strip("`")
    return rows


def test_the_quick_start_commands_are_there_and_are_make_targets() -> None:
    """Only the two commands: the words around them may change freely."""
    for target in ("run", "test"):
        assert re.search(rf"^make {target}\b", README, re.MULTILINE), f"make {target}"
        assert re.search(rf"^{target}:", MAKEFILE, re.MULTILINE), target


def test_the_configuration_table_lists_every_setting_with_its_default() -> None:
    rows = configuration_rows()
    for name, field in Settings.model_fields.items():
        assert name.upper() in rows, f"{name.upper()} is missing from the README's table"
        assert rows[name.upper()] == shown_default(field.default), name.upper()
    assert set(rows) == {name.upper() for name in Settings.model_fields}


def test_the_docker_section_names_each_service_command() -> None:
    docker = section("Docker quick start")
    for name, service in load_compose()["services"].items():
        assert f"`{name}`" in docker
        if name in APP_SERVICES:
            assert f"`{' '.join(service['command'])}`" in docker
    assert load_compose()["services"]["kafka"]["image"] in docker


@pytest.mark.parametrize("block", ["json", ""])
def test_the_example_alert_is_what_the_worker_prints(block: str) -> None:
    """The JSON example and the console table are rendered by the product's own functions."""
    alerts = section("Windows and alerts")
    shown = re.search(r"```json\n(.*?)```", alerts, re.DOTALL)
    assert shown
    record = orjson.loads(shown.group(1))

    def ms(iso: str) -> int:
        return int(datetime.fromisoformat(iso).timestamp() * 1000)

    alert = WindowAlert(
        record["product_id"], ms(record["window_start"]), ms(record["window_end"]),
        record["views"], record["add_to_cart"], record["purchases"],
    )  # fmt: skip
    if block == "json":
        assert alert_record(alert, ms(record["detected_at"])) == record
        assert record["views"] == Settings.model_fields["views_threshold"].default + 1
    else:
        assert f"FLASH SALE ALERT\n{console_table(alert)}\n```" in alerts
