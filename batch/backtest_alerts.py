"""Which windows alert under a pair of thresholds: the stream's rule, decided in SQL.

A window with final views <= V never alerts; one with views > V and purchases < P always does.
For the rest ("contested": views > V, purchases >= P) the order decides: it alerts iff its
(V+1)-th view comes before its P-th purchase in processing order (`key`). Slice groups give
each of those two keys an interval for nearly free (the keys of a group lie between its
smallest and largest); only windows whose intervals overlap are settled row by row, and only
with the rows of the groups that overlap the undecided interval, so the answer is exact
however the slices interleave.

Needs `groups` and `windows` (batch.backtest_windows) and `counted`. Creates `alerted`
(pair, pid, w): for each threshold pair by index, the windows that alert.
"""

from __future__ import annotations

import duckdb

from batch.backtest_rule import Thresholds, WindowRule

# For each contested window, its slice groups (depth-aware) at offset i in the window, and
# key intervals from the slice order: the slices up to the one where the views
# first exceed V hold V+1 views, all with keys <= hi_v; views with keys < lo_v (the smallest
# key of the views from that slice on) lie in earlier slices, fewer than V+1 of them. So the
# (V+1)-th view key lies in [lo_v, hi_v], and likewise the P-th purchase key in [lo_p, hi_p].
# Tight when slices follow each other in processing order, as they do in a steady stream.
_BOUNDS = """
CREATE OR REPLACE TEMP TABLE contested_groups AS
SELECT c.pid, c.w, c.i, g.s, g.src, g.depth, g.v, g.p, g.vk0, g.vk1, g.pk0, g.pk1
FROM (SELECT pid, w, i, w + i * {step} AS s
      FROM windows, range({per}) AS r(i) WHERE v > {views} AND p >= {purchases}) c
JOIN groups g ON g.pid = c.pid AND g.s = c.s
WHERE g.depth >= c.i;

CREATE OR REPLACE TEMP TABLE bounds AS
WITH running AS (
    SELECT *, sum(v) OVER w AS views_to_i, sum(p) OVER w AS purchases_to_i
    FROM contested_groups WINDOW w AS (PARTITION BY pid, w ORDER BY i RANGE UNBOUNDED PRECEDING)
), crossing AS (
    SELECT pid, w, min(i) FILTER (views_to_i > {views}) AS view_i,
           min(i) FILTER (purchases_to_i >= {purchases}) AS purchase_i
    FROM running GROUP BY pid, w
)
SELECT pid, w,
       max(vk1) FILTER (i <= view_i) AS hi_v, min(vk0) FILTER (i >= view_i) AS lo_v,
       max(pk1) FILTER (i <= purchase_i) AS hi_p, min(pk0) FILTER (i >= purchase_i) AS lo_p
FROM contested_groups JOIN crossing USING (pid, w)
GROUP BY pid, w;
"""
# Undecided windows: [lo, hi] covers both intervals. Views (purchases) of groups entirely
# below lo all come first; the (V+1)-th view is then the (V+1-bv)-th among the rows of the
# groups overlapping [lo, hi].
_SETTLE = """
CREATE OR REPLACE TEMP TABLE undecided AS
SELECT b.pid, b.w, least(lo_v, lo_p) AS lo, greatest(hi_v, hi_p) AS hi
FROM bounds b WHERE NOT (hi_v < lo_p OR hi_p < lo_v);

CREATE OR REPLACE TEMP TABLE undecided_groups AS
SELECT u.pid, u.w, g.s, g.src, g.depth,
       coalesce(g.vk1 < u.lo, false) AS view_base, coalesce(g.pk1 < u.lo, false) AS purchase_base,
       coalesce(g.vk1 >= u.lo AND g.vk0 <= u.hi, false) AS view_rows,
       coalesce(g.pk1 >= u.lo AND g.pk0 <= u.hi, false) AS purchase_rows,
       g.v, g.p
FROM undecided u JOIN contested_groups g USING (pid, w);

CREATE OR REPLACE TEMP TABLE settled AS
WITH base AS (
    SELECT pid, w, (sum(v) FILTER (view_base))::BIGINT AS bv,
           (sum(p) FILTER (purchase_base))::BIGINT AS bp
    FROM undecided_groups GROUP BY pid, w
), keys AS (
    SELECT ug.pid, ug.w,
           min(c.key, {views} + 1) FILTER (c.kind = 0 AND ug.view_rows) AS view_keys,
           min(c.key, {purchases}) FILTER (c.kind = 2 AND ug.purchase_rows) AS purchase_keys
    FROM undecided_groups ug
    JOIN counted c ON c.pid = ug.pid AND c.s = ug.s AND c.src = ug.src AND c.depth = ug.depth
    WHERE (ug.view_rows AND c.kind = 0) OR (ug.purchase_rows AND c.kind = 2)
    GROUP BY ug.pid, ug.w
)
SELECT pid, w,
       view_keys[{views} + 1 - coalesce(bv, 0)] < purchase_keys[{purchases} - coalesce(bp, 0)]
           AS alerts
FROM keys JOIN base USING (pid, w);
"""
_ALERTED = """
INSERT INTO alerted
SELECT {pair}, pid, w FROM windows WHERE v > {views} AND p < {purchases}
UNION ALL
SELECT {pair}, pid, w FROM bounds WHERE hi_v < lo_p
UNION ALL
SELECT {pair}, pid, w FROM settled WHERE alerts;
"""


def decide_alerts(
    con: duckdb.DuckDBPyConnection, rule: WindowRule, pairs: list[Thresholds]
) -> None:
    """Fill `alerted` (pair, pid, w) with the windows each threshold pair alerts on."""
    con.execute("CREATE OR REPLACE TEMP TABLE alerted (pair INTEGER, pid VARCHAR, w BIGINT)")
    for index, pair in enumerate(pairs):
        values = {"views": pair.views, "purchases": pair.purchases, "pair": index,
                  "per": rule.per_event, "step": rule.step_ms}  # fmt: skip
        for template in (_BOUNDS, _SETTLE, _ALERTED):
            con.execute(template.format(**values))
