"""The worker is wired in one place: importing code builds nothing, and the wiring registers
every stage, feed and page."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from agents.worker_app import wire
from app.faust_app import ClickstreamApp, build_app
from app.settings import load_settings
from tables.stage_links import stages

ROOT = Path(__file__).resolve().parents[3]
PAGES = {
    "/", "/api/alerts", "/api/incidents", "/api/internal/shop-series", "/api/internal/status",
    "/api/internal/top", "/api/internal/watermarks", "/api/pipeline",
    "/api/products/{product_id}/series", "/api/products/{product_id}/windows", "/api/reports",
    "/api/shop/series", "/api/status", "/api/top", "/health", "/metrics",
    "/products/{product_id}", "/reports/{name}", "/static/vendor/{name}", "/static/{name}",
}  # fmt: skip
PACKAGES = ("app", "tables", "agents", "batch")

# Run in a fresh interpreter in an empty folder: this test session has imported the modules.
IMPORT_EVERYTHING = """
import importlib, json, os, sys
import faust
import app.faust_app, app.settings

def refuse(*args, **kwargs):
    raise AssertionError("called at import")

faust.App.__init__ = refuse
app.faust_app.build_app = refuse
app.settings.get_settings = refuse
app.settings.load_settings = refuse
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
print(json.dumps(sorted(os.listdir("."))))
"""


def product_modules() -> list[str]:
    names = []
    for package in PACKAGES:
        for module in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            names.append(module.name)
    return sorted(names)


def test_importing_any_module_builds_no_app_reads_no_settings_and_makes_no_files(
    tmp_path: Path,
) -> None:
    modules = product_modules()
    assert "agents.worker_app" in modules and "tables.web.health" in modules
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING, json.dumps(modules)],
        cwd=tmp_path, capture_output=True, text=True, check=False,
        env={"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []  # no ./data, no state directory


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[ClickstreamApp]:
    before = (stages.window, stages.ingest, stages.member_prefix)
    yield wire(build_app(load_settings(data_dir=tmp_path, app_id="wiring-test")))
    stages.window, stages.ingest, stages.member_prefix = before


def test_the_wiring_registers_every_stage_and_page(wired: ClickstreamApp) -> None:
    services = {type(service).__name__ for service in wired._extra_services}
    assert "IngestService" in services and "WindowStage" in services
    assert {"AlertSinkService", "NotifierService"} <= services
    web_app = cast(Any, wired.web).web_app
    routes = {route.resource.canonical for route in web_app.router.routes()}
    assert sorted(PAGES - routes) == []
    assert stages.member_prefix is not None
    assert stages.window() is None and stages.ingest() is None  # nothing runs until start
