"""What every ``collector`` command shares: the ``--config`` option, typed errors as one
message and an exit status, and tables whose long texts are printed whole below them."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from collector.config import Config, load_config
from collector.errors import CollectorError, ConfigError
from collector.logs import redact, setup_logging

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

F = TypeVar("F", bound=Callable[..., Any])

config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Config file (default: $COLLECTOR_CONFIG, else ./collector.toml).",
)


def user_errors(func: F) -> F:
    """Turn our typed errors into one clear message and an exit status, no traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as err:
            click.echo(f"config error: {redact(str(err))}", err=True)
            sys.exit(2)
        except CollectorError as err:
            click.echo(f"error: {redact(str(err))}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def console() -> Console:
    # rich (with pygments) costs megabytes of resident memory: only the commands that print
    # tables or progress bars import it, never the daemon.
    from rich.console import Console

    return Console()


def text(value: str, style: str = "") -> Text:
    """A table cell shown as it is: texts from devices, stores and configs may contain
    ``[...]``, which rich would otherwise read as markup (and drop, or fail on)."""
    from rich.text import Text

    return Text(value, style=style)


class Notes:
    """Long texts of one table, printed whole below it as numbered notes: a cell longer
    than half the terminal's width shows its start and the note's number."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []
        self.limit = max(40, console().width // 2)

    def cell(self, value: str, style: str = "") -> Text:
        if len(value) <= self.limit:
            return text(value, style)
        self.texts.append((value, style))
        return text(f"{value[:self.limit - 8].rstrip()} ... [{len(self.texts)}]", style)

    def failure(self, errors: list[str]) -> Text:
        return self.cell("; ".join(errors), "red")

    def print(self, console: Console) -> None:
        for number, (value, style) in enumerate(self.texts, 1):
            console.print(text(f"[{number}] {value}", style), soft_wrap=True)


def load(config_path: Path | None) -> Config:
    config = load_config(config_path)
    setup_logging(config.log.level, config.secrets())
    return config
