"""Turning events and alert dicts into Arrow tables of the documented schemas, split by UTC date."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from app.events import Event
from app.storage.schema import ALERTS_SCHEMA, EVENTS_SCHEMA

_ALERT_TIMES = ("window_start", "window_end", "detected_at")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def events_table(events: Sequence[Event]) -> pa.Table:
    """Events as an EVENTS_SCHEMA table; `event_time` is `event_time_ms` as a UTC timestamp."""
    # Event is a named tuple in EVENTS_SCHEMA's column order: one C-level transpose.
    columns = list(zip(*events, strict=True)) if events else [()] * len(Event._fields)
    return pa.Table.from_arrays(
        [
            pa.array(column, type=field.type)
            for column, field in zip(columns, EVENTS_SCHEMA, strict=True)
        ],
        schema=EVENTS_SCHEMA,
    )


def alerts_table(rows: Sequence[Mapping[str, object]]) -> pa.Table:
    """Alert dicts (ALERTS_TOPIC JSON plus `kafka_partition`/`kafka_offset`) as ALERTS_SCHEMA.

    Times may be ISO-8601 text (naive means UTC), aware datetimes or epoch milliseconds.
    """
    columns: dict[str, list[object]] = {name: [] for name in ALERTS_SCHEMA.names}
    for row in rows:
        missing = [name for name in ALERTS_SCHEMA.names if name not in row]
        if missing:
            msg = f"alert row lacks {missing}; kafka_* come from the consumed record: {row!r}"
            raise ValueError(msg)
        for name in ALERTS_SCHEMA.names:
            value = row[name]
            columns[name].append(_epoch_ms(value, name) if name in _ALERT_TIMES else value)
    return pa.Table.from_pydict(columns, schema=ALERTS_SCHEMA)


def split_by_date(table: pa.Table, time_column: str) -> dict[date, pa.Table]:
    """The rows of each UTC calendar date of `time_column`, in their original order."""
    if table.num_rows == 0:
        return {}
    unit = table.schema.field(time_column).type.unit
    days = pc.cast(table[time_column].cast(pa.timestamp(unit, "UTC")), pa.date32())
    distinct = sorted(pc.unique(days).to_pylist())
    if len(distinct) == 1:
        return {distinct[0]: table}
    return {day: table.filter(pc.equal(days, pa.scalar(day, pa.date32()))) for day in distinct}


def _epoch_ms(value: object, name: str) -> int:
    if isinstance(value, bool):
        msg = f"{name}={value!r} is not a time"
        raise ValueError(msg)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip())
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            msg = f"{name}={value!r} is a naive datetime; pass an aware UTC datetime"
            raise ValueError(msg)
        return (value - _EPOCH) // _ONE_MS
    msg = f"{name}={value!r} is not ISO-8601 text, an aware datetime or epoch milliseconds"
    raise ValueError(msg)


def conform_to_schema(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with exactly the columns and types of `schema`, or ValueError saying why not."""
    if table.schema.equals(schema, check_metadata=False):
        return table
    try:
        return table.select(schema.names).cast(schema)
    except (KeyError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        msg = f"table does not fit the schema {schema.names}: {exc}"
        raise ValueError(msg) from exc


def check_offsets(table: pa.Table, partition: int, first: int, last: int) -> None:
    """ValueError unless every row is of `partition` with an offset in [first, last]."""
    names = table.schema.names
    if table.num_rows == 0 or "kafka_offset" not in names:
        return
    bounds = pc.min_max(table["kafka_offset"]).as_py()
    if bounds["min"] < first or bounds["max"] > last:
        msg = f"rows hold offsets {bounds['min']}..{bounds['max']}, outside {first}..{last}"
        raise ValueError(msg)
    if (
        "kafka_partition" in names
        and pc.any(pc.not_equal(table["kafka_partition"], partition)).as_py()
    ):
        msg = f"rows of another Kafka partition in a write for partition {partition}"
        raise ValueError(msg)
