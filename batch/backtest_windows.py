"""Every (product, window) count of a backtest, from step-long slices, in SQL.

Needs the view `counted` (batch.backtest_events). Creates, for windows starting in
[range_start, range_end):

- `groups`: per (pid, slice start s, src, depth): views v, carts c, purchases p, and the
  smallest and largest processing key of the views (vk0, vk1) and purchases (pk0, pk1);
- `windows`: per (pid, w): final v, c, p.

A window's counts are the sums of the groups of its size/step slices whose depth reaches it,
so each event is touched once and each slice group size/step times, never each event per
window.
"""

from __future__ import annotations

import duckdb

from batch.backtest_rule import WindowRule

_GROUPS = """
CREATE TEMP TABLE groups AS
SELECT pid, s, src, depth,
       count(*) FILTER (kind = 0) AS v,
       count(*) FILTER (kind = 1) AS c,
       count(*) FILTER (kind = 2) AS p,
       min(key) FILTER (kind = 0) AS vk0, max(key) FILTER (kind = 0) AS vk1,
       min(key) FILTER (kind = 2) AS pk0, max(key) FILTER (kind = 2) AS pk1
FROM counted
WHERE t < $last_event
GROUP BY ALL
"""
_WINDOWS = """
CREATE TEMP TABLE windows AS
SELECT pid, s - i * $step AS w, sum(v) AS v, sum(c) AS c, sum(p) AS p
FROM groups, range($per) AS r(i)
WHERE i <= depth AND s - i * $step >= $first AND s - i * $step < $end
GROUP BY ALL
"""


def count_windows(
    con: duckdb.DuckDBPyConnection, rule: WindowRule, range_start_ms: int, range_end_ms: int
) -> None:
    """Create `groups` and `windows` for windows starting in [range_start_ms, range_end_ms)."""
    values = {
        "$last_event": str(range_end_ms + rule.size_ms),
        "$step": str(rule.step_ms),
        "$per": str(rule.per_event),
        "$first": str(range_start_ms),
        "$end": str(range_end_ms),
    }
    for sql in (_GROUPS, _WINDOWS):
        for name, value in values.items():
            sql = sql.replace(name, value)
        con.execute(sql)


def window_sources(con: duckdb.DuckDBPyConnection, rule: WindowRule, table: str) -> None:
    """Create `window_sources` (pid, w, multi, imported) for the (pid, w) rows of `table`:
    whether a window holds events of more than one source partition, or imported ones."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE window_sources AS
        SELECT c.pid, c.w, min(g.src) <> max(g.src) AS multi, min(g.src) < 0 AS imported
        FROM (SELECT pid, w, i, w + i * {rule.step_ms} AS s
              FROM {table}, range({rule.per_event}) AS r(i)) c
        JOIN groups g ON g.pid = c.pid AND g.s = c.s AND g.depth >= c.i
        GROUP BY c.pid, c.w
    """)  # fmt: skip
