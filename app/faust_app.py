"""The only place the `faust.App` is built; agents and tables are found by autodiscovery."""

from __future__ import annotations

import functools
import sys

import faust

from app import faust_transport
from app.errors import SettingsError
from app.settings import Settings, get_settings


def build_app(settings: Settings, store: str = "rocksdb://") -> faust.App:
    """A Faust app configured from settings: idempotent acks=all producer, RocksDB state."""
    faust_transport.install()
    (settings.data_dir / "worker-state").mkdir(parents=True, exist_ok=True)
    return faust.App(
        settings.app_id,
        broker=[f"kafka://{host.strip()}" for host in settings.kafka_bootstrap_servers.split(",")],
        store=store,
        topic_partitions=settings.partitions,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        autodiscover=["agents", "tables"],
        origin="app",
        datadir=str(settings.data_dir / "worker-state"),
        producer_acks=-1,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
    )


@functools.cache
def get_app() -> faust.App:
    """The process's app; a bad setting ends start-up with one line instead of a traceback."""
    try:
        settings = get_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return build_app(settings)
