"""Whether a window's alert depends on how the stream interleaved its source partitions.

Within one source partition the stream's order is fixed (offsets); across partitions any
merge that keeps each partition's order is possible. A window with views > V and purchases
>= P at the end alerts iff, at its (V+1)-th view, fewer than P purchases came before it. Per
source i of the window, with `u_i[j]` = its views before its j-th purchase:

- some merge alerts iff purchase budgets b_i with sum(b_i) <= P - 1 let the sources bring
  sum(w_i(b_i)) >= V + 1 views before any of them reaches its (b_i + 1)-th purchase, where
  w_i(b) = u_i[b + 1] (all its views when it has no more than b purchases);
- some merge does not alert iff counts p_i with sum(p_i) = P bring P purchases in after at
  most V views: sum(u_i[p_i]) <= V (u_i[0] = 0).

The window is order-dependent when both hold. Both are small knapsacks over the sources.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from batch.backtest_rule import Thresholds, WindowRule


@dataclass(frozen=True, slots=True)
class SourceRun:
    """One source partition's part of a window: its views, purchases, and views before its
    1st, 2nd, ... purchase (the first P purchases; counts may be capped at V + 1)."""

    views: int
    purchases: int
    views_before_purchase: tuple[int, ...]


def can_alert(sources: Sequence[SourceRun], t: Thresholds) -> bool:
    """Some interleaving reaches the (V+1)-th view with fewer than P purchases before it."""
    best = [0] * t.purchases  # best[b]: most views reachable with b purchases spent
    for run in sources:

        def views_with(b: int, run: SourceRun = run) -> int:
            return run.views_before_purchase[b] if b < run.purchases else run.views

        best = [max(best[b - k] + views_with(k) for k in range(b + 1)) for b in range(len(best))]
    return max(best) >= t.views + 1


def can_hold_back(sources: Sequence[SourceRun], t: Thresholds) -> bool:
    """Some interleaving has P purchases in before the (V+1)-th view."""
    unreachable = t.views + 1
    fewest = [0] + [unreachable] * t.purchases  # fewest[p]: fewest views to bring p purchases
    for run in sources:
        cost = [0, *run.views_before_purchase[: run.purchases]]
        fewest = [
            min(fewest[p - k] + cost[k] for k in range(min(p, len(cost) - 1) + 1))
            for p in range(t.purchases + 1)
        ]
    return fewest[t.purchases] <= t.views


def is_order_dependent(sources: Sequence[SourceRun], t: Thresholds) -> bool:
    return len(sources) > 1 and can_alert(sources, t) and can_hold_back(sources, t)


def order_dependent_windows(
    con: duckdb.DuckDBPyConnection, candidates: str, rule: WindowRule, t: Thresholds
) -> set[tuple[str, int]]:
    """Of the (pid, w) rows of table `candidates`, those whose alert is order-dependent.

    Reads `counted` (batch.backtest_events) for the views and purchases of each window, by
    source; only windows with more than one source and at least P purchases can qualify.
    """
    rows = con.execute(f"""
        WITH window_rows AS (
            SELECT c.pid, c.w, r.src, r.kind, r.key
            FROM (SELECT pid, w, i, w + i * {rule.step_ms} AS s
                  FROM {candidates}, range({rule.per_event}) AS r(i)) c
            JOIN counted r ON r.pid = c.pid AND r.s = c.s AND r.depth >= c.i
            WHERE r.kind <> 1
        ), per_source AS (
            SELECT pid, w, src, count(*) FILTER (kind = 0) AS v, count(*) FILTER (kind = 2) AS p,
                   coalesce(min(key, {t.views + 1}) FILTER (kind = 0), []) AS vk,
                   coalesce(min(key, {t.purchases}) FILTER (kind = 2), []) AS pk
            FROM window_rows GROUP BY ALL
        )
        SELECT pid, w, list((least(v, {t.views + 1}), p,
                             list_transform(pk, lambda k: len(list_filter(vk, lambda x: x < k)))))
        FROM per_source GROUP BY pid, w
        HAVING count(*) > 1 AND sum(p) >= {t.purchases}
    """).fetchall()  # fmt: skip
    found = set()
    for pid, w, runs in rows:
        sources = [SourceRun(v, p, tuple(before)) for v, p, before in runs]
        if is_order_dependent(sources, t):
            found.add((pid, w))
    return found
