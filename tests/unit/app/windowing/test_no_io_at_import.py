"""The window engine loads without settings or the Faust app, so any floor may import it."""

from __future__ import annotations

import subprocess
import sys

ENGINE = (
    "spec",
    "slices",
    "seen_ids",
    "watermarks",
    "lateness",
    "alert_rule",
    "window_alert",
    "batch_groups",
    "slice_cache",
    "partition_windows",
)


def test_importing_the_engine_reads_no_settings_and_builds_no_app() -> None:
    # A fresh interpreter: this test session has long imported settings and the app.
    imports = "; ".join(f"import app.windowing.{name}" for name in ENGINE)
    check = "import sys; print(sorted(m for m in sys.modules if m in WATCHED))"
    watched = "WATCHED = {'app.settings', 'app.faust_app', 'faust', 'aiohttp', 'duckdb'}"
    code = f"{imports}; {watched}; {check}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
