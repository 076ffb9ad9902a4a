"""`clickstream backtest`: the stream's alert rule replayed over stored history, no Kafka."""

from __future__ import annotations

import itertools
from datetime import date

import click

from app.report_day import ReportDay
from app.settings import get_settings
from batch.backtest import Backtest
from batch.backtest_output import FORMATS, RunInfo, render_alerts, render_sweep
from batch.backtest_rule import Thresholds, WindowRule
from batch.command import DATE, EXIT_NO_DATA

_SWEEP_NAMES = ("views", "purchases")


def parse_sweep(specs: tuple[str, ...], default: Thresholds) -> list[Thresholds]:
    """`views=100,150 purchases=3,5` -> every pair; a name left out keeps its default.

    Raises click.UsageError naming the bad part and the expected form.
    """
    values: dict[str, list[int]] = {"views": [default.views], "purchases": [default.purchases]}
    for spec in " ".join(specs).split():
        name, _, numbers = spec.partition("=")
        try:
            parsed = sorted({int(n) for n in numbers.split(",")})
        except ValueError:
            parsed = []
        lowest = 1 if name == "purchases" else 0
        if name not in _SWEEP_NAMES or not parsed or min(parsed) < lowest:
            msg = (
                f"sweep {spec!r} is not NAME=N,N,... with NAME views (N >= 0) or purchases "
                "(N >= 1), e.g. --sweep views=100,150,200 purchases=3,5"
            )
            raise click.UsageError(msg)
        values[name] = parsed
    return [Thresholds(v, p) for v, p in itertools.product(values["views"], values["purchases"])]


@click.command("backtest")
@click.option("--from", "first", type=DATE, required=True, help="First day (REPORT_TIMEZONE).")
@click.option("--to", "last", type=DATE, required=True, help="Last day, included.")
@click.option(
    "--views",
    type=click.IntRange(min=0),
    help="Alert above this many views. [default: VIEWS_THRESHOLD]",
)
@click.option(
    "--purchases",
    type=click.IntRange(min=1),
    help="... and below this many purchases. [default: PURCHASES_THRESHOLD]",
)
@click.option(
    "--window",
    "window_s",
    type=click.IntRange(min=1),
    help="Window length in seconds. [default: WINDOW_SIZE]",
)
@click.option(
    "--step",
    "step_s",
    type=click.IntRange(min=1),
    help="Seconds between window starts. [default: WINDOW_STEP]",
)
@click.option(
    "--lateness",
    "lateness_s",
    type=click.IntRange(min=0),
    help="Seconds a watermark trails. [default: ALLOWED_LATENESS]",
)
@click.option(
    "--sweep", is_flag=True, help="Count alerts for every pair of the SPEC lists instead."
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.argument("specs", nargs=-1, metavar="[SPEC]...")  # fmt: skip
def backtest_command(
    first: date,
    last: date,
    views: int | None,
    purchases: int | None,
    window_s: int | None,
    step_s: int | None,
    lateness_s: int | None,
    sweep: bool,
    fmt: str,
    specs: tuple[str, ...],
) -> None:
    """Replay the stream's flash-sale rule over the Parquet store with DuckDB.

    Counts every (product, window) as the worker does (late events and repeated event ids
    left out) and alerts a window at its first view past the views threshold, in processing
    order, while its purchases are below the purchases threshold. Alerts list final counts.
    With --sweep, SPECs are views=N,N,... and purchases=N,N,...: one count per pair.

    \b
    Examples:
      clickstream backtest --from 2024-06-01 --to 2024-06-07
      clickstream backtest --from 2024-06-01 --to 2024-06-01 --views 150 --format csv
      clickstream backtest --from 2024-06-01 --to 2024-06-07 --sweep views=100,150,200 purchases=3,5
    """
    if last < first:
        msg = f"--to {last} is before --from {first}"
        raise click.UsageError(msg)
    if specs and not sweep:
        msg = f"unexpected {' '.join(specs)!r}: threshold lists go with --sweep"
        raise click.UsageError(msg)
    settings = get_settings()
    size_s = window_s or settings.window_size
    step = step_s or settings.window_step
    if size_s % step:
        msg = f"--window {size_s} is not a multiple of --step {step}"
        raise click.UsageError(msg)
    lateness = settings.allowed_lateness if lateness_s is None else lateness_s
    rule = WindowRule(size_s * 1000, step * 1000, lateness * 1000)
    default = Thresholds(
        settings.views_threshold if views is None else views,
        settings.purchases_threshold if purchases is None else purchases,
    )
    pairs = parse_sweep(specs, default) if sweep else [default]
    start, end = ReportDay(first, settings.tz).start, ReportDay(last, settings.tz).end
    lookahead = settings.max_clock_skew * 1000
    with Backtest.over(settings.data_dir, start, end, rule, lookahead) as backtest:
        if backtest.events == 0:
            where = settings.data_dir / "events"
            click.echo(f"error: no events from {first} to {last} ({settings.tz.key}) under "
                       f"{where}. Nothing to backtest.", err=True)  # fmt: skip
            raise SystemExit(EXIT_NO_DATA)
        backtest.decide(pairs)
        info = RunInfo(start, end, settings.tz, rule, backtest.events, backtest.window_count())
        if sweep:
            click.echo(render_sweep(info, backtest.alert_counts(), fmt), nl=False)
        else:
            text = render_alerts(
                info, default, backtest.alerts(), backtest.qualifying(default), fmt
            )
            click.echo(text, nl=False)
