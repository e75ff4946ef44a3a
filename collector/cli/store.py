"""``collector store``: setting up the configured store (downsampling) and filling the
rollups of history already stored."""

from __future__ import annotations

from pathlib import Path

import click

from collector.cli.common import Notes as _Notes
from collector.cli.common import config_option, user_errors
from collector.cli.common import console as _console
from collector.cli.common import load as _load
from collector.cli.common import text as _text


@click.group()
def store() -> None:
    """Set up the configured store."""


@store.command("setup")
@config_option
@user_errors
def store_setup(config_path: Path | None) -> None:
    """Downsampling: rollup retention policy and continuous queries (InfluxDB 1.x), rollup
    bucket and tasks (2.x), raw-data retention from influxdb.raw_retention; says what it
    created and what it found. Safe to run again."""
    from rich.table import Table

    from collector.stores.setup import setup_store

    report = setup_store(_load(config_path))
    notes = _Notes()
    table = Table(title=f"collector store setup: {report.store}")
    for col in ("part", "result", "detail"):
        table.add_column(col)
    for step in report.steps:
        table.add_row(_text(step.part), _text(step.result), notes.cell(step.detail))
    console = _console()
    console.print(table)
    notes.print(console)


@store.command("fill")
@config_option
@click.option("--since", default="30d", show_default=True,
              help="From when: 30d, 1y ... ago (365d) or an ISO date/time.")
@user_errors
def store_fill(config_path: Path | None, since: str) -> None:
    """Compute the rollups of the raw data already stored since --since (the continuous
    queries and tasks only cover new data): once after the first setup on a store that
    has history."""
    import time

    from collector.outputs.export import parse_time
    from collector.stores.setup import fill_rollups

    if since.endswith("y") and since[:-1].isdigit():
        since = f"{int(since[:-1]) * 365}d"
    start = parse_time(since)
    note = fill_rollups(_load(config_path), start or 0, time.time_ns())
    click.echo(note if note is not None else
               "no rollups to fill: run `collector store setup` first (InfluxDB only)")
