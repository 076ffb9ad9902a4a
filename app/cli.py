"""The `clickstream` command: one entry point for every subcommand."""

from __future__ import annotations

import logging
import sys

import click

from app.errors import ClickstreamError, SettingsError
from app.kafka.command import kafka_command
from app.simulator.command import simulate_command
from app.storage.command import compact_command
from app.storage.import_command import import_command
from app.workers.command import worker_command
from batch.backtest_command import backtest_command
from batch.command import report_command, scheduler_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True, help="How much to log on stderr.")  # fmt: skip
def cli(log_level: str) -> None:
    """clickstream-analytics: real-time and daily analytics for e-commerce clickstreams.

    \b
    Examples:
      clickstream kafka start          # a local broker where KAFKA_BOOTSTRAP_SERVERS says
      clickstream worker --processes auto   # windows, alerts, Parquet, dashboard
    """
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


cli.add_command(kafka_command)
cli.add_command(simulate_command)
cli.add_command(report_command)
cli.add_command(scheduler_command)
cli.add_command(compact_command)
cli.add_command(backtest_command)
cli.add_command(import_command)
cli.add_command(worker_command)


def main() -> None:
    """Run the CLI; a known error becomes one line on stderr instead of a traceback."""
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        raise SystemExit(130) from None
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except SettingsError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    except ClickstreamError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
