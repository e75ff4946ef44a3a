"""``collector spool``: the durable buffer's backlog and dead letters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from collector.cli.common import config_option, load, user_errors


@click.group()
def spool() -> None:
    """Inspect the durable buffer and its dead letters."""


def _spool(config_path: Path | None) -> Any:
    from collector.pipeline.spool import Spool

    config = load(config_path)
    return Spool(config.spool.path, max_lines=config.spool.max_lines)


@spool.command("status")
@config_option
@user_errors
def spool_status(config_path: Path | None) -> None:
    """Backlog, dead letters and totals."""
    sp = _spool(config_path)
    st = sp.status()
    click.echo(f"spool {st.path}: {st.pending} pending, {st.dead_letters} dead letters, "
               f"{st.delivered_total} delivered, {st.dropped_total} dropped in total")
    for dl in sp.dead_letters(20):
        click.echo(f"  dead letter {dl.id} ({_answer(dl.status)}): {dl.error[:300]}\n"
                   f"    {dl.line[:300]}")
    sp.close()


def _answer(status: int) -> str:
    """The store's answer to a dead letter: its HTTP status, or 0 when it was unreadable."""
    return f"HTTP {status}" if status else "unreadable answer"


@spool.command("retry")
@config_option
@user_errors
def spool_retry(config_path: Path | None) -> None:
    """Queue every dead letter again (after fixing what the store complained about)."""
    sp = _spool(config_path)
    click.echo(f"{sp.retry_dead_letters()} dead letters queued again")
    sp.close()


@spool.command("drop")
@config_option
@click.option("--pending", is_flag=True, help="Also drop the undelivered backlog.")
@click.confirmation_option(prompt="Drop the dead letters for good?")
@user_errors
def spool_drop(config_path: Path | None, pending: bool) -> None:
    """Delete the dead letters (and with --pending the backlog)."""
    sp = _spool(config_path)
    click.echo(f"{sp.drop_dead_letters()} dead letters dropped")
    if pending:
        click.echo(f"{sp.drop_pending()} pending lines dropped")
    sp.close()
