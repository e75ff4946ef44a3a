"""Progress shown on a terminal by ``collector backfill`` (a bar per source) and
``collector export`` (rows written); rich is imported only when one is shown."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Progress


def backfill_progress() -> Progress | None:
    """Progress bars on stderr, only when stderr is a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        return None
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("windows, {task.fields[points]} points"), console=console)


class SourceBars:
    """One progress bar per source (``collector.pipeline.backfill.Progress``)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, Any] = {}
        self._points: dict[str, int] = {}
        self._totals: dict[str, int] = {}

    def begin(self, source: str) -> None:
        from rich.markup import escape

        self._points[source] = self._totals[source] = 0
        self._tasks[source] = self._progress.add_task(escape(source), total=None, points=0)

    def expect(self, source: str, windows: int) -> None:
        self._totals[source] += windows
        self._progress.update(self._tasks[source], total=self._totals[source])

    def advance(self, source: str, points: int) -> None:
        self._points[source] += points
        self._progress.update(self._tasks[source], advance=1, points=self._points[source])


class ExportBar:
    """Rows written so far, on stderr; shown from the first chunk on, so a small export
    shows nothing."""

    def __init__(self) -> None:
        self._bar: Progress | None = None
        self._task: Any = None

    def __call__(self, rows: int) -> None:
        if self._bar is None:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._bar = Progress(SpinnerColumn(), TextColumn("export: {task.completed:,} rows"),
                                 TimeElapsedColumn(), console=Console(stderr=True),
                                 transient=True)
            self._task = self._bar.add_task("export", total=None, completed=rows)
            self._bar.start()
        self._bar.update(self._task, completed=rows)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
