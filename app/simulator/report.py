"""What `clickstream simulate` tells its user: the run at the start, the summary at the end."""

from __future__ import annotations

from app.simulator.runner import RunResult
from app.simulator.scenarios import BURST_SECONDS
from app.simulator.simulation import Simulation
from app.time_format import iso_utc_s


def describe_run(simulation: Simulation, destination: str) -> str:
    opts = simulation.options
    if opts.start is None:
        mode = "live, as fast as possible" if opts.pace == 0 else f"live at {opts.pace:g} events/s"
    else:
        mode = f"historical from {iso_utc_s(simulation.goal.start)}, at full speed"
    ends = []
    if opts.count is not None:
        ends.append(f"{opts.count:,} events")
    if simulation.goal.end is not None:
        ends.append(f"event time {iso_utc_s(simulation.goal.end)}")
    until = " or ".join(ends) if ends else "Ctrl-C"
    return (
        f"Simulating {opts.scenario} traffic: {opts.users:,} users, {opts.products:,} "
        f"products, seed {opts.seed}, {mode}, until {until}; to {destination}."
    )


def describe_plan(simulation: Simulation) -> list[str]:
    flash_sale = simulation.flash_sale
    if flash_sale is None:
        return []
    ids = simulation.catalog.product_ids
    first = flash_sale.start + 20.0
    return [
        f"Flash sale: viral {', '.join(ids[i] for i in flash_sale.viral)} (one per burst, "
        f"> {flash_sale.thresholds.views} views and < {flash_sale.thresholds.purchases} "
        f"purchases: must alert) next to hot seller {ids[flash_sale.hot_seller]} (must not).",
        f"Bursts of {BURST_SECONDS / 60:g} min every {flash_sale.cycle / 60:g} min; the first "
        f"from {iso_utc_s(first)} to {iso_utc_s(first + BURST_SECONDS)}.",
    ]


def summary_lines(simulation: Simulation, result: RunResult) -> list[str]:
    stats = result.stats
    rate = stats.sent / result.elapsed if result.elapsed > 0 else 0.0
    failed = stats.failed + stats.pending
    lines = []
    if result.stopped_by:
        lines.append(f"Stopped by {result.stopped_by} after {result.generated:,} events.")
    lines.append(
        f"Sent {stats.sent:,} events in {result.elapsed:.1f} s ({rate:,.0f} events/s), "
        f"{failed:,} failed; seed {simulation.options.seed}."
    )
    lines.append("By type: " + ", ".join(f"{name} {n:,}" for name, n in stats.by_type().items()))
    if simulation.flash_sale is not None and result.last_event_time is not None:
        bursts = simulation.flash_sale.bursts_until(result.last_event_time)
        for role in ("viral", "hot_seller"):
            planted = [burst for burst in bursts if burst.role == role]
            products = ", ".join(dict.fromkeys(burst.product_id for burst in planted))
            lines.append(
                f"Planted {len(planted)} {role} burst(s) of {products or 'no product'}; "
                "--plan FILE lists their times."
            )
    return lines
