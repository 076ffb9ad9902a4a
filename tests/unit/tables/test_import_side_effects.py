"""Importing any tables module builds no app, reads no settings and creates no files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

# Run in a fresh interpreter: this test process may have imported the modules already.
IMPORT_ALL = """
import importlib, pkgutil, sys
import app.faust_app, app.settings

def refuse(*args, **kwargs):
    raise AssertionError("called at import")

app.faust_app.get_app = refuse
app.faust_app.build_app = refuse
app.settings.get_settings = refuse
app.settings.load_settings = refuse
import tables
names = [m.name for m in pkgutil.walk_packages(tables.__path__, "tables.")]
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_every_tables_module_imports_without_side_effects(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": str(Path(sys.executable).parent)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 20  # every module of tables/ and tables/web/ was imported
    assert list(tmp_path.iterdir()) == []  # no ./data, no .env read into a file
