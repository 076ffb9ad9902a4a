"""The events a backtest counts, loaded into DuckDB in the order the stream processed them.

The stream counts an event in a window only while that window is open under the watermark of
the event's source partition (the newest event time seen there, in offset order, minus the
lateness), and counts a supplied `event_id` once. The Parquet store keeps every event as
delivered and marks neither, so both are recomputed here from `kafka_partition` and
`kafka_offset`. Imported rows carry a negative partition (one per imported file) and their
line number as offset: each file replays as a source of its own, in line order.

Processing order, the `key` every later step compares: within a source, offset order (then
row order, for the events of one batched message). Across sources the true interleaving is not
recorded; the backtest takes runs of BLOCK consecutive offsets of one source as units and
orders them by the newest event time their source had seen by the end of the run (ties by
partition, then offset). That is one order the stream could have taken: windows fed by one
source get the stream's exact order, the others are checked for order dependence elsewhere.

Created on the connection, in memory:

- `stats`: per block its newest and oldest event time; `repeated_hashes`: of event ids;
- `blocks`: per (src, b = off // BLOCK): `before` (newest time before the block), `suspect`
  (may hold an event late for some window), `brank` (the block's place in processing order);
- `counted`: every counted event: pid, kind (0 view, 1 cart, 2 purchase), t (epoch ms),
  s (its slice start), src, depth, key, and fi, rn (file and row: the row's identity).

`depth` d means the event counts in the windows starting at s - i*step for i in 0..d. Late
events (no open window) and later copies of a counted event_id are not in `counted`.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from batch.backtest_rule import WindowRule

BLOCK = 64  # offsets per interleaving unit and per lateness pre-check
_NEVER = -(2**62)
_RANGE = "event_time >= $first AND event_time < $last"
_STATS = """
CREATE TEMP TABLE stats AS
SELECT kafka_partition AS src, kafka_offset // {block} AS b,
       max(epoch_ms(event_time)) AS newest, min(epoch_ms(event_time)) AS oldest
FROM read_parquet($files) WHERE {range}
GROUP BY ALL
"""
# The hashes of event ids stored more than once (a producer's retries).
_REPEATED_HASHES = (
    "CREATE TEMP TABLE repeated_hashes AS SELECT h FROM counted GROUP BY h HAVING count(*) > 1"
)
_BLOCKS = """
CREATE TEMP TABLE blocks AS
WITH bounded AS (
    SELECT src, b, oldest, max(newest) OVER w AS bound,
           coalesce(max(newest) OVER (PARTITION BY src ORDER BY b
                                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                    {never}) AS before
    FROM stats
    WINDOW w AS (PARTITION BY src ORDER BY b ROWS UNBOUNDED PRECEDING)
)
SELECT src, b, before, oldest < bound - {lateness} AS suspect,
       row_number() OVER (ORDER BY bound, src, b) AS brank
FROM bounded
"""
# Row order inside a block: off % BLOCK (6 bits), then the row in its file (30 bits).
_COUNTED = """
CREATE TEMP TABLE counted AS
SELECT product_id AS pid,
       (CASE event_type WHEN 'view' THEN 0 WHEN 'add_to_cart' THEN 1 ELSE 2 END)::UTINYINT AS kind,
       epoch_ms(event_time) AS t, epoch_ms(event_time) // {step} * {step} AS s,
       kafka_partition AS src, {full} AS depth,
       (k.brank << 36) | ((kafka_offset % {block}) << 30) | (file_row_number & 1073741823) AS key,
       file_index::INTEGER AS fi, file_row_number AS rn, hash(event_id) AS h
FROM read_parquet($files, file_row_number = true) r
JOIN blocks k ON k.src = r.kafka_partition AND k.b = r.kafka_offset // {block}
WHERE {range} AND event_type IN ('view', 'add_to_cart', 'purchase')
"""
# The blocks that may hold late events, event by event: the newest time seen is the newest
# before the block or in it up to the event (keys order a block's events by offset).
_LATE = """
UPDATE counted SET depth = exact.depth
FROM (SELECT fi, rn, {depth} AS depth
      FROM (SELECT c.fi, c.rn, c.t,
                   greatest(k.before, max(c.t) OVER (PARTITION BY k.brank ORDER BY c.key
                                                     ROWS UNBOUNDED PRECEDING)) AS seen
            FROM counted c JOIN blocks k ON k.brank = c.key >> 36
            WHERE k.suspect)) AS exact
WHERE counted.fi = exact.fi AND counted.rn = exact.rn
"""
_REPEATED = """
CREATE TEMP TABLE repeated AS
SELECT fi, rn, key FROM counted
WHERE depth >= 0 AND h IN (SELECT h FROM repeated_hashes)
"""
# A late copy never counts, so it never wins: the first counted copy in processing order does.
_COPIES = """
DELETE FROM counted USING (
    SELECT r.fi, r.rn
    FROM repeated r
    JOIN (SELECT file_index::INTEGER AS fi, file_row_number AS rn, event_id
          FROM read_parquet($files, file_row_number = true)) ids USING (fi, rn)
    QUALIFY row_number() OVER (PARTITION BY ids.event_id ORDER BY r.key) > 1
) AS copy
WHERE counted.fi = copy.fi AND counted.rn = copy.rn
"""


def _depth(rule: WindowRule) -> str:
    """SQL for the depth of an event at `t` when its source had seen up to `seen`: how many
    windows older than its newest one are still open (< 0: late). Times are positive epoch
    milliseconds, so integer division is floor division here."""
    step, size, per = rule.step_ms, rule.size_ms, rule.per_event
    oldest_open = f"((seen - {rule.lateness_ms} - {size} + {step - 1}) // {step} * {step})"
    return f"least({per - 1}, ((t - t % {step}) - {oldest_open}) // {step})"


def load_events(
    con: duckdb.DuckDBPyConnection,
    files: list[str],
    first_window: datetime,
    last_event: datetime,
    rule: WindowRule,
) -> int:
    """Create `blocks` and `counted` from the Parquet `files`: events in [first_window,
    last_event), where last_event lies past the range's last window by the furthest an event
    may be stamped ahead of the others. Returns how many events were read.

    Earlier events belong to no window of the range and cannot move a watermark past a later
    event. Raises duckdb.Error on unreadable files.
    """
    values = {"block": BLOCK, "never": _NEVER, "step": rule.step_ms, "range": _RANGE,
              "lateness": rule.lateness_ms, "full": rule.per_event - 1,
              "depth": _depth(rule)}  # fmt: skip
    params = {"files": files, "first": first_window, "last": last_event}
    con.execute(_STATS.format(**values), params)
    con.execute(_BLOCKS.format(**values))
    con.execute(_COUNTED.format(**values), params)
    row = con.execute("SELECT count(*) FROM counted").fetchone()
    con.execute(_LATE.format(**values))
    # Four threads, though the machine may have fewer: DuckDB then splits this one large
    # hash aggregate into smaller partitions that stay in cache (half the CPU time, measured).
    con.execute("SET threads = 4")
    con.execute(_REPEATED_HASHES)
    con.execute("RESET threads")
    if con.execute("SELECT count(*) FROM repeated_hashes").fetchone() != (0,):
        # Rare (a producer's retries): only then are the ids themselves read again.
        con.execute(_REPEATED)
        con.execute(_COPIES, {"files": files})
    con.execute("DELETE FROM counted WHERE depth < 0")
    return int(row[0]) if row else 0
