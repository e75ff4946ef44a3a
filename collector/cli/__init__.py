"""The ``collector`` command line."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from collector.cli.common import Notes as _Notes
from collector.cli.common import config_option, user_errors
from collector.cli.common import console as _console
from collector.cli.common import load as _load
from collector.cli.common import text as _text
from collector.config import Config, load_config
from collector.errors import CollectorError
from collector.logs import redact, setup_logging

if TYPE_CHECKING:

    pass

@click.group()
@click.version_option(package_name="collector")
def main() -> None:
    """Energy and climate history from FRITZ!Box, Thinknx and Overkiz into InfluxDB."""


@main.command()
@config_option
@user_errors
def run(config_path: Path | None) -> None:
    """Collect on schedule until SIGTERM/SIGINT, then flush and exit."""
    from collector.pipeline.daemon import keep_unused_modules_out
    from collector.pipeline.daemon import run as run_daemon

    keep_unused_modules_out()  # before anything imports httpx
    from collector.pipeline.app import App

    config = _load(config_path)
    app = App(config)
    asyncio.run(run_daemon(app))


@main.command()
@config_option
@user_errors
def once(config_path: Path | None) -> None:
    """Poll every source once (with its statistics), flush, print a summary."""
    from collector.pipeline.app import App

    config = _load(config_path)

    async def go() -> tuple[list[Any], int]:
        app = App(config)
        try:
            outcomes = await app.once()
            return outcomes, app.spool.pending
        finally:
            await app.aclose()

    outcomes, pending = asyncio.run(go())
    from rich.table import Table

    console = _console()
    notes = _Notes()
    table = Table(title="collector once")
    for col in ("source", "job", "points", "seconds", "result"):
        table.add_column(col)
    for o in outcomes:
        result = _text("ok") if o.ok else notes.failure(o.errors)
        if note := o.drop_note():
            result.append_text(_text("; " if not o.ok else ", "))
            result.append_text(notes.cell(note, "yellow"))
        table.add_row(_text(o.source), _text(o.job), str(o.points), f"{o.duration_s:.2f}",
                      result)
    if outcomes:
        console.print(table)
        notes.print(console)
    else:
        console.print("no sources configured")
    failed = [o for o in outcomes if not o.ok]
    if pending:
        click.echo(f"{pending} lines wait in the spool for the store "
                   "(see `collector spool status`)", err=True)
    sys.exit(1 if failed or pending else 0)


@main.command()
@config_option
@click.option("--within", "within_s", type=click.FloatRange(min=1), default=None,
              help="Seconds since the daemon last showed it works (default: 90).")
@user_errors
def health(config_path: Path | None, within_s: float | None) -> None:
    """Exit 0 while `collector run` with this config works (no job stuck, its event loop
    and spool answer), else 1: for a container's health check."""
    from collector.pipeline.supervisor import HEALTHY_WITHIN_S, check_heartbeat, heartbeat_path

    config = load_config(config_path)
    ok, text = check_heartbeat(heartbeat_path(config), within_s or HEALTHY_WITHIN_S)
    click.echo(text, err=not ok)
    sys.exit(0 if ok else 1)


@main.command()
@config_option
@user_errors
def check(config_path: Path | None) -> None:
    """Validate the config, reach every source and the store, verify credentials; show each
    job's last success, last error and errors of the last 24 h from the daemon's
    self-metrics in the store. Exits 1 when a part cannot be reached or a job's newest run
    failed."""
    from collector.pipeline.app import App
    from collector.pipeline.check_jobs import job_names

    config = _load(config_path)

    async def go() -> tuple[list[tuple[str, bool, str]], list[str]]:
        app = App(config)
        try:
            return await app.check(), job_names(app)
        finally:
            await app.aclose()

    rows, jobs = asyncio.run(go())
    from rich.table import Table

    notes = _Notes()
    table = Table(title="collector check")
    table.add_column("part")
    table.add_column("ok")
    table.add_column("detail")
    table.add_row("config", "yes", "valid")
    for part, ok, detail in rows:
        table.add_row(_text(part), _text("yes") if ok else _text("NO", "red"), notes.cell(detail))
    console = _console()
    console.print(table)
    notes.print(console)
    jobs_ok = _check_jobs(config, jobs)
    sys.exit(0 if all(ok for _, ok, _ in rows) and jobs_ok else 1)


def _check_jobs(config: Config, jobs: list[str]) -> bool:
    """The jobs table of ``check`` (collector/pipeline/check_jobs.py); False when the self-metrics
    cannot be read or a job's newest run failed."""
    from datetime import UTC, datetime

    from rich.table import Table

    from collector.pipeline.check_jobs import read_job_health, table_rows

    if not jobs:
        return True
    now = datetime.now(UTC)
    try:
        cells = table_rows(read_job_health(config, jobs, now), now)
    except CollectorError as err:
        click.echo(f"jobs: cannot read the self-metrics: {redact(str(err))}", err=True)
        return False
    notes = _Notes()
    table = Table(title="jobs (the daemon's self-metrics of the last 24 h)")
    for col in ("job", "ok", "last success", "last error", "errors"):
        table.add_column(col)
    for job, ok, success, error, count in cells:
        table.add_row(_text(job), _text("yes") if ok else _text("NO", "red"), _text(success),
                      notes.cell(error, "" if ok else "red"), count)
    console = _console()
    console.print(table)
    notes.print(console)
    return all(ok for _, ok, _, _, _ in cells)


@main.command()
@click.option("--seconds", type=float, default=30.0, show_default=True)
@click.option("--dir", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("demo-out"), show_default=True)
@user_errors
def demo(seconds: float, out_dir: Path) -> None:
    """The three simulators collected into an embedded store for SECONDS, their history
    backfilled; prints a summary and writes CSV files and report.html into DIR. No config
    needed."""
    from collector.cli.demo import run_demo

    setup_logging("WARNING")
    run_demo(seconds=seconds, out_dir=out_dir, console=_console())


@main.command()
@click.argument("system", type=click.Choice(["fritzbox", "thinknx", "overkiz"]))
@click.option("--port", type=int, default=0, help="0 = a free port")
@click.option(
    "--setup",
    "setup_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="overkiz only: serve the devices of this recorded /setup answer (JSON)",
)
@user_errors
def simulate(system: str, port: int, setup_file: Path | None) -> None:
    """Run one device simulator on loopback until Ctrl-C."""
    import importlib

    if setup_file is not None and system != "overkiz":
        raise click.UsageError("--setup is for the overkiz simulator only")
    setup_logging("INFO")
    # each simulator module offers serve_forever(port): start, print a working config
    # snippet, serve until Ctrl-C
    module = importlib.import_module(f"collector.simulators.{system}")
    # Ctrl-C is how it ends, also when it comes before the simulator's own loop took over
    with contextlib.suppress(KeyboardInterrupt):
        if setup_file is None:
            module.serve_forever(port)
        else:
            module.serve_forever(port, setup_file=setup_file)


@main.command()
@config_option
@click.option("--measurement", "measurements", multiple=True, help="repeatable")
@click.option("--all", "every", is_flag=True, help="every measurement of the schema")
@click.option("--from", "start", default=None, help="ISO time or 7d/24h ago")
@click.option("--to", "end", default=None)
@click.option("--device", default=None, help="device or device_id")
@click.option("--site", default=None)
@click.option("--room", default=None)
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv")
@click.option("--wide", is_flag=True, help="one column per device (and unit)")
@click.option("--resample", default=None, help="15m, 1h or 1d: the aggregate of each kind")
@click.option("--tz", "tz_name", default=None, help="time zone of the timestamps (default UTC)")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
@user_errors
def export(config_path: Path | None, measurements: tuple[str, ...], every: bool,
           start: str | None, end: str | None, device: str | None, site: str | None,
           room: str | None, fmt: str, wide: bool, resample: str | None, tz_name: str | None,
           out: Path | None) -> None:
    """Export measurements from the configured store, streamed."""
    from collector.cli.progress import ExportBar
    from collector.outputs.export import (
        ExportRequest,
        Selection,
        measurement_names,
        parse_time,
        zone,
    )
    from collector.outputs.export import export as run_export

    req = ExportRequest(measurement_names(measurements, every),
                        Selection(parse_time(start), parse_time(end), device, site, room),
                        fmt, wide, resample, zone(tz_name))
    config = _load(config_path)
    bar = ExportBar() if sys.stderr.isatty() and (out is not None or not sys.stdout.isatty()) \
        else None
    try:
        n = run_export(config, req, out, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    click.echo(f"{n} rows exported" if n else
               "0 rows exported: nothing in the store for that range and selection", err=True)


from collector.cli.backfill import backfill  # noqa: E402
from collector.cli.spool import spool  # noqa: E402
from collector.cli.store import store  # noqa: E402

for _group in (backfill, spool, store):
    main.add_command(_group)

if __name__ == "__main__":
    main()
