"""One worker partition's checkpoint: its state changes, alerts and input offset in one transaction.

A checkpoint of worker partition `p` runs, in this order:

1. begin a Kafka transaction on `p`'s own producer (transactional id `<APP_ID>-windows-<p>`);
2. write every state change since the last checkpoint (slices, source watermarks, expiries,
   sent-alert markers, open incidents) to partition `p` of the changelog topic;
3. send the alerts decided since the last checkpoint to ALERTS_TOPIC and the incident records
   (`agents.incidents`) to INCIDENTS_TOPIC (key = product id);
4. add the consumer group's next input offset of `p` to the transaction;
5. commit. Only now are the alerts and incidents printed and counted.

Kafka makes the changelog, the alerts, the incident records and the input offset visible
together or not at all (read_committed). A crash anywhere before step 5 leaves none of them:
the next owner's producer takes the same transactional id, which aborts the open transaction,
recovers the state of the last commit from the changelog and replays the input from the
offset committed with it. So a decided alert can be neither lost (it is in the same commit as
the counts that decided it) nor sent twice (the replay finds its marker). This is Kafka
Streams' exactly-once design with one producer per task (KIP-98, KIP-129): the stable
per-partition id is what fences a killed or stalled previous owner.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from agents.alerts import alert_record, console, console_table
from agents.incidents import IncidentRecord, incident_table
from agents.window_changelog import ChangelogStore
from app import metrics
from app.windowing.partition_windows import PartitionWindows
from app.windowing.window_alert import WindowAlert

logger = logging.getLogger(__name__)
STEP_TIMEOUT_S = 60.0  # a transaction that takes longer fails (and the partition is reset)


@dataclass
class PendingAlert:
    alert: WindowAlert
    record: dict[str, Any]


@dataclass
class PartitionCheckpoint:
    """The transactional producer of one worker partition and what its next commit carries."""

    partition: int
    producer: AIOKafkaProducer
    changelog_topic: str
    alerts_topic: str
    incidents_topic: str
    group_id: str
    stores: tuple[ChangelogStore, ...]
    console_windows: bool = False  # print per-window alert tables instead of incident tables
    alerts: list[PendingAlert] = field(default_factory=list)
    incidents: list[IncidentRecord] = field(default_factory=list)

    def add_alerts(self, state: PartitionWindows, alerts: list[WindowAlert], now_ms: int) -> None:
        """Decided alerts: their markers go into the state now, their records out at commit."""
        for alert in alerts:
            state.mark_alerted(alert)
            self.alerts.append(PendingAlert(alert, alert_record(alert, now_ms)))

    def add_incidents(self, records: list[IncidentRecord]) -> None:
        """Incident records whose state change is in the stores already: out at commit."""
        self.incidents.extend(records)

    async def commit(self, state: PartitionWindows, input_tp: TopicPartition, position: int) -> int:
        """Steps 1-5 above; returns how many changelog records the commit carried.

        Raises whatever Kafka raised (or TimeoutError); the caller must then drop the
        in-memory state, which holds changes that are now in no commit, and read the input
        again from the last commit.
        """
        state.flush()
        changes = [change for store in self.stores for change in store.take_changes()]
        alerts, self.alerts = self.alerts, []
        incidents, self.incidents = self.incidents, []
        sends = await asyncio.wait_for(
            self._transact(changes, alerts, incidents, input_tp, position), STEP_TIMEOUT_S
        )
        for future in sends:
            future.result()  # all acknowledged by the commit; raises if one was not
        if self.console_windows:
            for pending in alerts:
                console.warning("FLASH SALE ALERT\n%s", console_table(pending.alert))
        else:
            for record in incidents:
                console.warning("%s\n%s", record.headline(), incident_table(record))
        if alerts:
            metrics.ALERTS.inc(len(alerts))
            metrics.observe_detection_latency(len(alerts), state.source_watermarks())
        for record in incidents:
            metrics.INCIDENTS.inc(1, record.event)
        return len(changes)

    async def _transact(
        self,
        changes: list[tuple[bytes, bytes | None]],
        alerts: list[PendingAlert],
        incidents: list[IncidentRecord],
        input_tp: TopicPartition,
        position: int,
    ) -> list[asyncio.Future[Any]]:
        producer = self.producer
        # The context aborts on an error; if even that fails, the next producer of this id
        # aborts it at init_transactions.
        async with producer.transaction():
            sends = [
                await producer.send(self.changelog_topic, value, key=key, partition=self.partition)
                for key, value in changes
            ]
            for pending in alerts:
                value = orjson.dumps(pending.record)
                key = pending.alert.product_id.encode()
                sends.append(await producer.send(self.alerts_topic, value, key=key))
            for record in incidents:
                value = orjson.dumps(record.value)
                key = record.product_id.encode()
                sends.append(await producer.send(self.incidents_topic, value, key=key))
            offsets = {input_tp: OffsetAndMetadata(position, "")}
            await producer.send_offsets_to_transaction(offsets, self.group_id)
        return sends
