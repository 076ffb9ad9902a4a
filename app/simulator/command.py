"""`clickstream simulate`: realistic shoppers into Kafka or a JSON Lines file."""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click
import orjson

from app.settings import Settings, get_settings
from app.simulator.jsonl import JsonLinesWriter
from app.simulator.progress import Progress
from app.simulator.publisher import KafkaPublisher, connect
from app.simulator.report import describe_plan, describe_run, summary_lines
from app.simulator.runner import RunResult, Sink, StopRequest, run_events
from app.simulator.scenarios import Thresholds
from app.simulator.shoppers import DEFAULT_BEHAVIOUR, ShopperBehaviour
from app.simulator.simulation import SCENARIOS, Simulation, SimulationOptions, build_simulation


@dataclass(frozen=True)
class EventDestination:
    """Where the events go and how long to wait for an unresponsive broker."""

    output: str | None
    topic: str
    bootstrap: str
    batch_size: int
    give_up_after: float
    max_message_bytes: int
    max_clock_skew: int


def _parse_start(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        msg = f"{value!r} is not an ISO-8601 time such as 2024-06-01T00:00:00Z"
        raise click.BadParameter(msg) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.command("simulate")
@click.option("--count", type=click.IntRange(min=1), help="Stop after N events.")
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop after S seconds of event time (wall-clock seconds when live).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    help="Events per second of event time; 0 = as fast as possible. "
    "[default: 1 / SIMULATOR_INTERVAL]",
)
@click.option("--users", type=click.IntRange(min=1), help="Shoppers. [default: NUM_USERS]")
@click.option("--products", type=click.IntRange(min=1), help="Products. [default: NUM_PRODUCTS]")
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    help="Same seed and options, same events. [default: random, printed]",
)
@click.option(
    "--start",
    callback=_parse_start,
    metavar="ISO",
    help="Historical mode: event time starts here (naive = UTC); sent at full speed.",
)
@click.option(
    "--scenario",
    type=click.Choice(SCENARIOS),
    default="steady",
    show_default=True,
    help="flash-sale plants viral products (must alert) next to a hot seller.",
)
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="When the run ends, write the planted products and time ranges here as JSON.",
)
@click.option(
    "--output", metavar="FILE", help="Write JSON Lines to FILE (- for stdout) instead of Kafka."
)
@click.option("--topic", help="Kafka topic. [default: KAFKA_TOPIC]")
@click.option("--bootstrap", help="Kafka brokers. [default: KAFKA_BOOTSTRAP_SERVERS]")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=1,
    show_default=True,
    help="Events per Kafka message (a JSON array when > 1).",
)
@click.option(
    "--give-up-after",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Seconds to keep retrying an unreachable broker (and to wait for acks at the end).",
)
@click.option(
    "--cart-rate",
    type=click.FloatRange(0, 1),
    default=DEFAULT_BEHAVIOUR.cart_rate,
    show_default=True,
    help="Share of views followed by add_to_cart.",
)
@click.option(
    "--purchase-rate",
    type=click.FloatRange(0, 1),
    default=DEFAULT_BEHAVIOUR.purchase_rate,
    show_default=True,
    help="Share of carted products bought at checkout.",
)
def simulate_command(
    count: int | None,
    duration: float | None,
    rate: float | None,
    users: int | None,
    products: int | None,
    seed: int | None,
    start: datetime | None,
    scenario: str,
    plan_file: Path | None,
    output: str | None,
    topic: str | None,
    bootstrap: str | None,
    batch_size: int,
    give_up_after: float,
    cart_rate: float,
    purchase_rate: float,
) -> None:
    """Simulate shoppers: sessions that view, add to cart and buy, into Kafka or a file.

    Live by default (event time = now, at SIMULATOR_INTERVAL's pace); with --start, a stretch
    of history with a daily traffic curve, sent as fast as possible. Output is byte-identical
    for the same --seed, --start and options. Ctrl-C or SIGTERM flushes, then prints a
    summary; the exit code is 1 if any event was not acknowledged. Kafka keeps history only
    for the topic's retention (7 days by default): an older --start is deleted soon after.

    \b
    Examples:
      clickstream simulate                                  # live, until Ctrl-C
      clickstream simulate --scenario flash-sale            # an alert within ~2 minutes
      clickstream simulate --start 2024-06-01 --duration 86400 --seed 7 --output day.jsonl
      clickstream simulate --count 100000 --rate 0 --batch-size 100
      clickstream simulate --start 2024-06-01 --count 1000 --seed 1 --output -
    """
    settings = get_settings()
    options = SimulationOptions(
        seed=secrets.randbelow(1_000_000) if seed is None else seed,
        users=users or settings.num_users,
        products=products or settings.num_products,
        pace=_pace(rate, settings),
        count=count,
        duration=duration,
        start=start,
        scenario=scenario,
        behaviour=ShopperBehaviour(cart_rate=cart_rate, purchase_rate=purchase_rate),
        thresholds=Thresholds(
            settings.views_threshold,
            settings.purchases_threshold,
            settings.window_size,
            settings.window_step,
        ),
        zone=settings.tz,
    )
    _check(options)
    destination = EventDestination(
        output,
        topic or settings.kafka_topic,
        bootstrap or settings.kafka_bootstrap_servers,
        batch_size,
        give_up_after,
        settings.max_event_bytes,
        settings.max_clock_skew,
    )
    simulation, result = asyncio.run(_simulate(options, destination))
    if plan_file is not None:
        plan = simulation.plan(result.last_event_time)
        plan_file.write_bytes(orjson.dumps(plan, option=orjson.OPT_INDENT_2) + b"\n")
    to_stderr = output == "-"
    for line in summary_lines(simulation, result):
        click.echo(line, err=to_stderr)
    if result.stats.failed or result.stats.pending:
        raise SystemExit(1)


def _pace(rate: float | None, settings: Settings) -> float:
    if rate is not None:
        return rate
    interval = settings.simulator_interval
    return 1.0 / interval if interval > 0 else 0.0


def _check(options: SimulationOptions) -> None:
    if options.scenario == "flash-sale" and options.products < 5:
        msg = (
            f"the flash-sale scenario plants 4 products and needs 5 or more, not {options.products}"
        )
        raise click.BadParameter(msg, param_hint="--products")
    no_end = options.count is None and options.duration is None
    if options.start is not None and no_end and options.start.timestamp() >= time.time():
        msg = "is in the future: give --count or --duration to say when to stop"
        raise click.BadParameter(msg, param_hint="--start")


async def _simulate(
    options: SimulationOptions, destination: EventDestination
) -> tuple[Simulation, RunResult]:
    sink: Sink
    if destination.output is not None:
        simulation = build_simulation(options, time.time())
        sink = JsonLinesWriter(destination.output)
    else:
        producer = await connect(destination.bootstrap, destination.give_up_after)
        try:
            now = time.time()
            simulation = build_simulation(options, now, latest=now + destination.max_clock_skew)
            sink = await KafkaPublisher.open(
                producer,
                destination.topic,
                simulation.catalog.product_ids,
                destination.batch_size,
                destination.max_message_bytes,
            )
        except BaseException:
            await producer.stop()
            raise
    click.echo(describe_run(simulation, sink.describe()), err=True)
    for line in describe_plan(simulation):
        click.echo(line, err=True)
    stop = StopRequest()
    stop.install()
    progress = Progress(simulation.goal, on_terminal=sys.stderr.isatty())
    result = await run_events(
        simulation.stream,
        sink,
        live=simulation.clock.live,
        paced=simulation.clock.paced,
        progress=progress,
        close_timeout=destination.give_up_after,
        stop=stop,
    )
    return simulation, result
