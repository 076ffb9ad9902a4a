"""A look at the pipeline from the broker's side every few seconds, for /health and /metrics.

Asks Kafka for the end offsets of the input, windows and alerts topics and for what each
consumer group committed: that the broker answers at all is the reachability check, and the
differences are the consumer lag of the whole deployment (every worker), not just this one.
The ingest group's commits also carry each input partition's newest event time.

Each look also feeds the stall detector (`app.stall_detector`) with every stage's committed
offset and log end per partition: a stage's progress is what its group commits, seen from the
broker, so a stage whose own task hangs cannot hide its stall.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
from mode import Service

from app import metrics
from app.commit_state import decode_commit_state
from app.faust_app import ClickstreamApp
from app.stall_detector import get_stall_detector

logger = logging.getLogger(__name__)

PROBE_EVERY_S = 5.0
PROBE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ProbeResult:
    """What the broker said at `at` (wall clock, seconds)."""

    at: float
    error: str | None = None
    lag: dict[str, int] = field(default_factory=dict)
    committed_max_event_ms: dict[int, int] = field(default_factory=dict)

    @property
    def reachable(self) -> bool:
        return self.error is None


class ProbeState:
    """The newest probe result, shared with the views."""

    latest: ProbeResult | None = None


probe_state = ProbeState()


class PipelineProbe(Service):
    """Refreshes `probe_state` every PROBE_EVERY_S seconds, over long-lived Kafka clients."""

    admin: AIOKafkaAdminClient | None = None
    consumer: AIOKafkaConsumer | None = None

    def __init__(self, app: ClickstreamApp, **kwargs: Any) -> None:
        self.app = app
        self.settings = app.settings
        super().__init__(**kwargs)

    @Service.task
    async def _probe_forever(self) -> None:
        while not self.should_stop:
            began = time.time()
            try:
                result = await asyncio.wait_for(self.probe_once(), PROBE_TIMEOUT_S)
            except Exception as exc:  # any failure means: the broker did not answer in time
                detail = str(exc) or type(exc).__name__
                result = ProbeResult(at=began, error=detail)
                if probe_state.latest is None or probe_state.latest.reachable:
                    logger.warning("health: the broker did not answer: %s", detail)
                await self._close_clients()  # start afresh next time
            probe_state.latest = result
            for stage, lag in result.lag.items():
                metrics.CONSUMER_LAG.set(lag, stage)
            await self.sleep(PROBE_EVERY_S)

    async def on_stop(self) -> None:
        await self._close_clients()

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        servers = self.settings.kafka_bootstrap_servers
        if self.admin is None:
            self.admin = AIOKafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=5000)
            await self.admin.start()
        if self.consumer is None:
            self.consumer = AIOKafkaConsumer(
                bootstrap_servers=servers, request_timeout_ms=5000, isolation_level="read_committed"
            )
            await self.consumer.start()
        return self.admin, self.consumer

    async def _close_clients(self) -> None:
        admin, consumer, self.admin, self.consumer = self.admin, self.consumer, None, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()

    async def probe_once(self) -> ProbeResult:
        admin, consumer = await self._clients()
        settings = self.settings
        stages = {
            "ingest": (settings.ingest_group, settings.kafka_topic),
            "windows": (settings.windows_group, settings.product_events_topic),
            "alerts": (settings.alert_sink_group, settings.alerts_topic),
        }
        existing = set(await admin.list_topics())
        wanted = sorted({topic for _, topic in stages.values() if topic in existing})
        partitions = {
            d["topic"]: [TopicPartition(d["topic"], p["partition"]) for p in d["partitions"]]
            for d in (await admin.describe_topics(wanted) if wanted else [])
            if d["error_code"] == 0
        }
        lag: dict[str, int] = {}
        event_ms: dict[int, int] = {}
        stalls = get_stall_detector()
        for stage, (group, topic) in stages.items():
            tps = partitions.get(topic)
            if not tps:
                continue
            # Commits first, then end offsets: a commit never points past the end we read.
            committed = await admin.list_consumer_group_offsets(group, partitions=tps)
            ends = await consumer.end_offsets(tps)
            total = 0
            for tp in tps:
                meta = committed.get(tp)
                done = meta.offset if meta is not None and meta.offset >= 0 else 0
                total += max(ends[tp] - done, 0)
                stalls.observed(stage, tp.partition, done, ends[tp])
                if stage == "ingest" and meta is not None and meta.metadata:
                    seen = decode_commit_state(meta.metadata)
                    if seen is not None:
                        event_ms[tp.partition] = seen
            lag[stage] = total
        return ProbeResult(at=time.time(), lag=lag, committed_max_event_ms=event_ms)


def register(app: ClickstreamApp) -> None:
    """Look at the pipeline from the broker's side while the worker runs."""
    app.add_service(PipelineProbe(app))
