"""The Parquet writer: every event once, in its UTC event-date partition, readable by all."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from app.storage import ALERTS_SCHEMA, PartitionedParquetWriter, alerts_table, events_table
from tests.support.storage import (
    TOPIC,
    events_writer,
    hidden_leftovers,
    make_event,
    ms,
    offsets_seen,
    read_rows,
    spread_events,
    write_batches,
)


def test_n_events_become_n_rows_with_n_distinct_ids(tmp_path: Path) -> None:
    events = spread_events(1000)
    write_batches(events_writer(tmp_path, fsync=True), events, 250)

    total, distinct = read_rows(tmp_path, "count(*), count(distinct event_id)")[0]
    assert (total, distinct) == (1000, 1000)
    assert offsets_seen(tmp_path) == list(range(1000))
    assert hidden_leftovers(tmp_path) == []


def test_rows_land_in_the_utc_date_of_their_event_time(tmp_path: Path) -> None:
    events = spread_events(300)  # times jump back and forth over three days: late, out of order
    write_batches(events_writer(tmp_path), events, 37)

    rows = read_rows(tmp_path, "event_id, event_time, date")
    assert len(rows) == 300
    for _event_id, event_time, day in rows:
        assert isinstance(event_time, datetime)
        assert event_time.astimezone(UTC).date() == day
    expected = {e.event_id: e.event_time.date() for e in events}
    assert {event_id: day for event_id, _, day in rows} == expected
    assert {p.name for p in tmp_path.glob("date=*")} == {
        "date=2024-03-01",
        "date=2024-03-02",
        "date=2024-03-03",
    }


def test_events_either_side_of_midnight_go_to_their_own_day(tmp_path: Path) -> None:
    before = make_event(0, ms("2024-12-31T23:59:59.999"))
    after = make_event(1, ms("2025-01-01T00:00:00.000"))
    files = events_writer(tmp_path).write(0, 0, 1, events_table([after, before]))

    assert sorted(p.parent.name for p in files) == ["date=2024-12-31", "date=2025-01-01"]
    rows = dict(read_rows(tmp_path, "event_id, date::varchar"))
    assert rows == {"e-0-0": "2024-12-31", "e-0-1": "2025-01-01"}
    times = dict(read_rows(tmp_path, "event_id, epoch_ms(event_time)"))
    assert times == {"e-0-0": before.event_time_ms, "e-0-1": after.event_time_ms}


def test_file_names_come_from_topic_partition_and_offsets(tmp_path: Path) -> None:
    events = [make_event(offset, ms("2024-05-05T10:00:00"), partition=3) for offset in (40, 41)]
    files = events_writer(tmp_path).write(3, 40, 42, events_table(events))

    assert [p.relative_to(tmp_path).as_posix() for p in files] == [
        f"date=2024-05-05/{TOPIC}-p3-{40:020d}-{42:020d}.parquet"
    ]
    assert pq.ParquetFile(files[0]).metadata.row_group(0).column(0).compression == "ZSTD"


def test_duckdb_and_pyarrow_see_the_documented_schema(tmp_path: Path) -> None:
    write_batches(events_writer(tmp_path), spread_events(20), 20)

    glob = f"{tmp_path}/*/*.parquet"
    described = duckdb.sql(
        f"describe select * from read_parquet('{glob}', hive_partitioning=true)"
    ).fetchall()
    assert [(name, kind) for name, kind, *_ in described] == [
        ("event_id", "VARCHAR"),
        ("user_id", "VARCHAR"),
        ("session_id", "VARCHAR"),
        ("product_id", "VARCHAR"),
        ("product_category", "VARCHAR"),
        ("event_type", "VARCHAR"),
        ("event_time", "TIMESTAMP WITH TIME ZONE"),
        ("price", "DOUBLE"),
        ("extra", "VARCHAR"),
        ("kafka_partition", "INTEGER"),
        ("kafka_offset", "BIGINT"),
        ("date", "DATE"),
    ]
    dataset = ds.dataset(tmp_path, format="parquet", partitioning="hive")
    assert dataset.schema.field("event_time").type == pa.timestamp("ms", tz="UTC")
    assert dataset.schema.names[:11] == [f.name for f in events_table([]).schema]
    assert dataset.to_table().num_rows == 20


def test_extra_keeps_unknown_fields_as_json_text(tmp_path: Path) -> None:
    write_batches(events_writer(tmp_path), spread_events(10), 10)

    rows = read_rows(tmp_path, "extra->>'campaign' from_json")
    assert sorted(r[0] for r in rows if r[0] is not None) == ["x", "x"]


def test_a_replayed_write_adds_nothing(tmp_path: Path) -> None:
    writer = events_writer(tmp_path)
    events = spread_events(50)
    write_batches(writer, events, 10)
    write_batches(writer, events, 10)  # the consumer forgot to skip: offsets are stored already
    write_batches(writer, events[5:], 20)  # overlapping batches are trimmed to the new offsets

    assert offsets_seen(tmp_path) == list(range(50))
    assert writer.recover(0) == 49


def test_a_batch_without_rows_still_moves_the_durable_end(tmp_path: Path) -> None:
    writer = events_writer(tmp_path)
    assert writer.write(0, 0, 9, events_table([])) == []  # e.g. ten messages all sent to the DLQ
    assert writer.recover(0) == 9
    assert events_writer(tmp_path).recover(1) == -1


def test_rows_outside_the_declared_offsets_are_refused(tmp_path: Path) -> None:
    table = events_table([make_event(7, ms("2024-05-05T10:00:00"))])
    with pytest.raises(ValueError, match=r"outside 0\.\.5"):
        events_writer(tmp_path).write(0, 0, 5, table)
    with pytest.raises(ValueError, match="another Kafka partition"):
        events_writer(tmp_path).write(1, 0, 9, table)
    assert read_rows(tmp_path) == []


def test_alerts_round_trip_with_their_own_schema(tmp_path: Path) -> None:
    alert = {
        "alert_id": "p1-2024-05-05T10:00:00Z",
        "product_id": "p1",
        "window_start": "2024-05-05T23:55:00Z",
        "window_end": "2024-05-06T00:05:00+00:00",
        "views": 150,
        "add_to_cart": 3,
        "purchases": 1,
        "detected_at": datetime(2024, 5, 6, 0, 1, tzinfo=UTC),
        "kafka_partition": 0,
        "kafka_offset": 12,
    }
    writer = PartitionedParquetWriter(tmp_path, "flash-sale-alerts", ALERTS_SCHEMA, "window_start")
    writer.write(0, 12, 12, alerts_table([alert]))

    rows = read_rows(tmp_path, "alert_id, views, window_end, date::varchar")
    assert rows == [
        ("p1-2024-05-05T10:00:00Z", 150, datetime(2024, 5, 6, 0, 5, tzinfo=UTC), "2024-05-05")
    ]
    with pytest.raises(ValueError, match="kafka_offset"):
        alerts_table([{k: v for k, v in alert.items() if k != "kafka_offset"}])


def test_event_fields_are_the_events_schema_in_order() -> None:
    from app.events import Event
    from app.storage.schema import EVENTS_SCHEMA

    assert [name.removesuffix("_ms") for name in Event._fields] == EVENTS_SCHEMA.names
