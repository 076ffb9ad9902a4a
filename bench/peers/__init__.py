"""Peers on the same topic: Quix Streams and the seed's PySpark job, each in its own venv.

Each venv lives under `bench/` (gitignored) and is created on first use from the package
registry. A peer that cannot be installed or run gives `{"unavailable": reason}` instead of
figures, and the table prints that reason.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from bench.probes import log
from bench.process_tree import run_measured

HERE = Path(__file__).parent
BENCH = HERE.parent
QUIX = ("quixstreams==3.28.1",)
SPARK = ("pyspark==4.2.0",)  # its Kafka connector of the same version comes from Maven Central


def ensure_venv(name: str, packages: tuple[str, ...], module: str) -> Path | str:
    """The venv's python, created and installed if needed; a reason string when that fails."""
    venv = BENCH / f".venv-{name}"
    python = venv / "bin" / "python"
    check = [str(python), "-c", f"import {module}"]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return python
    log(f"peers: installing {' '.join(packages)} into {venv.relative_to(BENCH.parent)}")
    steps = [[sys.executable, "-m", "venv", "--clear", str(venv)],
             [str(python), "-m", "pip", "install", "--quiet", *packages]]  # fmt: skip
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return f"installing {' '.join(packages)} failed: {done.stderr.strip()[-300:]}"
    return python


def _run_peer(python: Path | str, script: str, args: list[str]) -> dict[str, object]:
    if isinstance(python, str):
        return {"unavailable": python}
    try:
        return run_measured([str(python), str(HERE / script), *args])
    except RuntimeError as exc:
        return {"unavailable": str(exc).splitlines()[-1][:300]}


def quix_peer(bootstrap: str, topic: str, events: int, case: str) -> dict[str, object]:
    """Quix Streams' hopping count (10 min / 1 min) per product over the whole topic."""
    python = ensure_venv("quix", QUIX, "quixstreams")
    return _run_peer(python, "quix_hopping.py", [bootstrap, topic, str(events), case])


def spark_peer(bootstrap: str, topic: str, events: int, case: str) -> dict[str, object]:
    """The seed's Structured Streaming job (local[2]) over the whole topic, once."""
    if shutil.which("java") is None:
        return {"unavailable": "no java on PATH (Spark needs Java 17+)"}
    python = ensure_venv("spark", SPARK, "pyspark")
    return _run_peer(python, "spark_hopping.py", [bootstrap, topic, str(events), case])
