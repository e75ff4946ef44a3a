"""``collector backfill``: device-side history into the store, resumable."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from collector.cli.common import Notes, config_option, console, load, text, user_errors

if TYPE_CHECKING:
    from rich.text import Text

    from collector.pipeline.backfill import BackfillOutcome

@click.command()
@config_option
@click.option("--since", default="7d", show_default=True,
              help="How far back: 7d, 12h, 2w or an ISO date/time.")
@click.option("--source", "source_name", default=None, help="Only this source (name).")
@click.option("--restart", is_flag=True,
              help="Start every series at --since, ignoring how far earlier runs got.")
@user_errors
def backfill(config_path: Path | None, since: str, source_name: str | None,
             restart: bool) -> None:
    """Load device-side history into the store; a rerun continues where the last one ended
    (also after Ctrl-C or a kill: every window stored stays stored)."""
    import signal

    from rich.table import Table

    from collector.cli.progress import SourceBars, backfill_progress
    from collector.pipeline.app import App
    from collector.pipeline.backfill import parse_since, run_backfill

    config = load(config_path)
    start = parse_since(since)
    out = console()
    stopped_by = [signal.SIGINT]  # the signal that ends a run early: SIGINT unless SIGTERM

    async def go() -> tuple[list[BackfillOutcome], int, bool]:
        app = App(config)
        outcomes: list[BackfillOutcome] = []
        task = asyncio.current_task()

        def terminated() -> None:  # SIGTERM ends the run as Ctrl-C does
            stopped_by[0] = signal.SIGTERM
            if task is not None:
                task.cancel()

        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, terminated)
        try:
            bars = backfill_progress()
            if bars is None:
                await run_backfill(app, start, source_name=source_name, restart=restart,
                                   outcomes=outcomes)
            else:
                with bars:
                    await run_backfill(app, start, source_name=source_name, restart=restart,
                                       progress=SourceBars(bars), outcomes=outcomes)
            return outcomes, app.spool.pending, False
        except asyncio.CancelledError:
            # Ctrl-C: asyncio.run cancels this task at the first SIGINT (a second one stops
            # at once). What was fetched is in the spool with its watermarks: hand it to the
            # store while that is quick; what is left waits in the spool for the next run.
            await app.deliverer.drain(deadline_s=_INTERRUPTED_DRAIN_S)
            return outcomes, app.spool.pending, True
        finally:
            await app.aclose()

    outcomes, pending, interrupted = asyncio.run(go())
    notes = Notes()
    table = Table(title=f"collector backfill since {start.isoformat()}")
    for col in ("source", "series", "windows", "points", "result"):
        table.add_column(col)
    for o in outcomes:
        table.add_row(text(o.source), *_backfill_cells(o, notes))
    if outcomes or not interrupted:  # interrupted before the first source: no table
        out.print(table if outcomes else "no sources configured")
        notes.print(out)
    if pending:
        click.echo(f"{pending} lines wait in the spool for the store "
                   "(see `collector spool status`)", err=True)
    if interrupted:
        points = sum(o.points for o in outcomes)
        click.echo(f"interrupted; {points} points stored, run `collector backfill` again to "
                   "continue where this run stopped", err=True)
        sys.exit(128 + stopped_by[0])  # as a shell reports a command ended by the signal
    sys.exit(1 if pending or any(o.errors for o in outcomes) else 0)


#: How long an interrupted backfill still delivers the spool to the store before it exits.
_INTERRUPTED_DRAIN_S = 10.0


def _backfill_cells(o: BackfillOutcome, notes: Notes) -> tuple[str, str, str, Text]:
    """series (resumed), windows done/expected, points, result of one source."""
    if not o.has_history:
        return "-", "-", "-", text("no device-side history")
    series = str(len(o.series)) + (f" ({len(o.resumed)} resumed)" if o.resumed else "")
    windows = str(o.windows) + ("" if o.expected is None else f"/{o.expected}")
    if o.interrupted:
        result = text("interrupted", "yellow")
    elif o.errors:
        result = notes.failure(o.errors)
    elif o.windows == 0 and o.resumed:
        result = text("up to date")
    else:
        result = text("ok")
    if o.retries:
        result.append_text(text(f"; waited {o.retries}x as the source asked", "yellow"))
    if o.dropped:
        result.append_text(text(f"; {o.dropped} unencodable readings dropped", "yellow"))
    return series, windows, str(o.points), result
