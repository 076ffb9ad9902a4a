"""clickstream-analytics: the Faust app, settings, event models and command line.

`faust -A app worker` looks up the attribute `app` of this package. It is built lazily so that
`clickstream` subcommands that need no Faust app (kafka, simulate, report) do not pay for one.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "app":
        from app.faust_app import get_app

        return get_app()
    raise AttributeError(name)
