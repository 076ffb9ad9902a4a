"""Everything under tests/stress is a crash-safety scenario of minutes, run by `make stress`."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/stress/" in str(item.path):
            item.add_marker(pytest.mark.stress)
