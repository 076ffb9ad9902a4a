"""The tests' floor plan: test modules share helpers only through tests/support, and each test
sits under the folder of the product package it tests."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_PACKAGES = ("agents", "app", "batch", "tables")
IMPORTERS = ("import_module", "__import__")
# Tests of the files at the repository's top (README, Dockerfile, docker-compose.yml) and of
# this floor plan: the only ones not under a package's folder.
TOP_LEVEL = {
    "test_compose_dockerfile.py", "test_compose_file.py", "test_compose_readme.py",
    "test_compose_smoke.py", "test_layout.py",
}  # fmt: skip


def imported_modules(source: str, package: str) -> set[str]:
    """Every module the source imports, anywhere in it (also inside functions and through
    importlib), with relative imports resolved against `package`; `from a import b` counts
    both `a` and `a.b`, since `b` may be a module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
            base = ".".join(p for p in (base, node.module or "") if p)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args:
            name = node.func.attr if isinstance(node.func, ast.Attribute) else None
            name = node.func.id if isinstance(node.func, ast.Name) else name
            first = node.args[0]
            if name in IMPORTERS and isinstance(first, ast.Constant):
                found.add(str(first.value))
    return found


def other_test_code(modules: set[str]) -> list[str]:
    """Modules of tests/ other than the shared helpers in tests/support."""
    return sorted(
        m for m in modules if m.startswith("tests.") and not m.startswith("tests.support")
    )


@pytest.mark.parametrize(
    "source",
    [
        "from tests.integration.agents.test_streaming_windows import produce",
        "from tests.unit.app import test_settings",
        "import tests.unit.agents.test_window_counting as counting",
        "def helper():\n    from tests.integration.tables.test_web_api import TOKEN\n",
        "from .test_batch_render import make_summary",
        "from ..agents import test_incidents",
        "import importlib\nimportlib.import_module('tests.unit.batch.test_batch_render')",
        "__import__('tests.integration.support_of_mine')",
    ],
)
def test_the_check_finds_imports_of_test_code_however_written(source: str) -> None:
    assert other_test_code(imported_modules(source, "tests.unit.batch"))


def test_no_module_imports_test_code_other_than_tests_support() -> None:
    offenders = {}
    for path in sorted([*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]):
        package = ".".join(path.relative_to(ROOT).parts[:-1])  # what relative imports start from
        found = other_test_code(imported_modules(path.read_text(), package))
        if found:
            offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}, "move what they share into tests/support"


@pytest.mark.parametrize("kind", ["unit", "integration"])
def test_each_test_sits_under_the_folder_of_the_package_it_tests(kind: str) -> None:
    base = ROOT / "tests" / kind
    for path in base.rglob("test_*.py"):
        folder = path.parent.relative_to(base)
        if not folder.parts:
            assert path.name in TOP_LEVEL, f"{path}: move it under its package's folder"
        else:
            assert folder.parts[0] in PRODUCT_PACKAGES, path
            assert (ROOT / folder / "__init__.py").is_file(), f"{path}: no package {folder}"
        for parent in [path.parent, *path.parent.parents][: len(folder.parts) + 1]:
            assert (parent / "__init__.py").is_file(), f"{parent} needs an __init__.py"
