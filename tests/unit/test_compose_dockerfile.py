"""The Dockerfile: pinned bases, two stages, non-root, entry points that exist in the venv."""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.support.compose_files import (
    APP_SERVICES,
    ROOT,
    Dockerfile,
    Instruction,
    dockerignore_excludes,
    load_compose,
    parse_dockerfile,
)

PINNED_TAG = re.compile(
    r"^[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?$|@sha256:[0-9a-f]{64}$"
)
BUILD_TOOLS = re.compile(r"\b(build-essential|gcc|g\+\+|make|cargo|rustc|git)\b")
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile()


def _console_scripts() -> set[str]:
    return {ep.name for ep in entry_points(group="console_scripts")}


def _assert_runs_in_the_venv(command: list[str]) -> None:
    """The executable is a console script installed in the venv; `-A module` is importable."""
    executable = command[0]
    assert executable in _console_scripts() or executable == "python", executable
    assert (VENV_BIN / executable).exists(), f"{executable} is not in {VENV_BIN}"
    if "-A" in command:
        module = command[command.index("-A") + 1]
        assert importlib.util.find_spec(module) is not None, module


def test_every_base_image_is_pinned_to_a_version(dockerfile: Dockerfile) -> None:
    images = [dockerfile.base_image(stage) for stage in dockerfile.stages]
    assert images
    for image in images:
        assert PINNED_TAG.search(image), f"{image} is not pinned to a full version or digest"
        assert "slim" in image


def test_the_base_python_is_the_one_the_project_supports(dockerfile: Dockerfile) -> None:
    image = dockerfile.base_image(dockerfile.stages[-1])
    match = re.search(r"python:(\d+)\.(\d+)\.\d+", image)
    assert match, image
    version = (int(match.group(1)), int(match.group(2)))
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    minimum = re.fullmatch(r">=(\d+)\.(\d+)", pyproject["project"]["requires-python"])
    assert minimum
    assert version >= (int(minimum.group(1)), int(minimum.group(2)))
    assert version == sys.version_info[:2], "tests run on another Python than the image"


def test_the_final_stage_gets_only_the_venv_and_no_build_tools(dockerfile: Dockerfile) -> None:
    assert len(dockerfile.stages) >= 2
    final = len(dockerfile.stages) - 1
    copies = dockerfile.in_stage(final, "COPY")
    assert [c.arguments for c in copies] == ["--from=build /opt/venv /opt/venv"]
    for run in dockerfile.in_stage(final, "RUN"):
        assert "apt-get install" not in run.arguments
        assert not BUILD_TOOLS.search(run.arguments), run.arguments
    build_stage_runs = " ".join(r.arguments for r in dockerfile.in_stage(0, "RUN"))
    assert "pip wheel" in build_stage_runs and "/opt/venv" in build_stage_runs


def test_the_final_stage_runs_as_the_non_root_user_of_the_compose_file(
    dockerfile: Dockerfile,
) -> None:
    final = len(dockerfile.stages) - 1
    users = dockerfile.in_stage(final, "USER")
    assert users, "no USER: the container would run as root"
    user = users[-1].arguments
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) > 0, f"USER {user} must be a numeric non-root uid"
    compose = load_compose()
    for name in APP_SERVICES:
        assert compose["services"][name]["user"] == user


def test_the_default_command_is_the_worker_and_exists_in_the_venv(dockerfile: Dockerfile) -> None:
    final = len(dockerfile.stages) - 1
    (cmd,) = dockerfile.in_stage(final, "CMD")
    assert cmd.exec_form() == load_compose()["services"]["worker"]["command"]
    for entrypoint in dockerfile.in_stage(final, "ENTRYPOINT"):
        _assert_runs_in_the_venv(entrypoint.exec_form())
    _assert_runs_in_the_venv(cmd.exec_form())


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_app_service_command_exists_in_the_venv(name: str) -> None:
    command = load_compose()["services"][name]["command"]
    _assert_runs_in_the_venv(command)
    if command[0] == "clickstream":
        from app.cli import cli

        assert command[1] in cli.commands


def test_the_healthcheck_asks_the_worker_for_health(dockerfile: Dockerfile) -> None:
    (check,) = dockerfile.in_stage(len(dockerfile.stages) - 1, "HEALTHCHECK")
    options, _, command = check.arguments.partition(" CMD ")
    assert "--interval=" in options and "--start-period=" in options
    argv = Instruction("CMD", command, check.stage).exec_form()
    assert argv[:2] == ["python", "-c"] and "/health" in argv[2]
    compile(argv[2], "HEALTHCHECK", "exec")
    worker_check = load_compose()["services"]["worker"]["healthcheck"]["test"]
    assert worker_check == ["CMD", *argv]


def test_the_build_context_holds_the_package_and_nothing_secret(dockerfile: Dockerfile) -> None:
    sources = []
    for copy in dockerfile.in_stage(0, "COPY"):
        *srcs, _dest = copy.arguments.split()
        sources += [s for s in srcs if not s.startswith("--")]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {p.rstrip("*") for p in packages} <= set(sources)
    assert pyproject["project"]["readme"] in sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not dockerignore_excludes(source), f".dockerignore leaves out {source}"
    for package, globs in pyproject["tool"]["setuptools"]["package-data"].items():
        for glob in globs:
            files = [p.relative_to(ROOT).as_posix() for p in (ROOT / package).glob(glob)]
            assert files, f"package data {package}/{glob} matches nothing"
            for data in files:
                assert not dockerignore_excludes(data), f".dockerignore leaves out {data}"
    for private in (".env", ".venv/bin/python", "data/events/x.parquet", ".git/config"):
        assert dockerignore_excludes(private), f"{private} would be sent to the builder"
    assert dockerignore_excludes("app/__pycache__/cli.cpython-311.pyc")
