"""The one small interface every source implements."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from collector.aio import AsyncClosing
from collector.model import Reading

#: Takes one part of a job's readings (e.g. one device's statistics); it does not raise.
ReadingSink = Callable[[Sequence[Reading]], None]


@dataclass(frozen=True, slots=True)
class SourceJob:
    """A scheduled job of a source: ``run`` returns the readings of one cycle.

    A job with many readings per cycle may also offer ``stream``: the same cycle, handing
    its readings to a sink part by part as they are ready, so that they never all exist at
    once. It raises like ``run``, but a ``PartialFailure`` then carries no readings (every
    reading collected went to the sink).
    """

    name: str  # e.g. "poll", "stats"
    interval_s: float
    run: Callable[[], Awaitable[Sequence[Reading]]]
    stream: Callable[[ReadingSink], Awaitable[None]] | None = None


class HistorySink(Protocol):
    """Where a source hands device-side history, series by series (``collector backfill``).

    A *series* is whatever the source can fetch on its own and resume from: a FRITZ! device's
    statistics, one Overkiz state of one device. ``start`` says where to begin a series: the
    requested ``--since`` or, when a previous run got further, its stored watermark. ``put``
    makes the readings durable (the spool) and only then moves the series' watermark to
    ``until``, so an interrupted backfill resumes after the last window that was stored and
    never skips one. ``total`` (optional) tells the progress bar how many windows to expect.
    """

    def start(self, series: str) -> datetime: ...

    def put(self, series: str, readings: Sequence[Reading], *, until: datetime) -> None: ...

    def total(self, windows: int) -> None: ...


class Source(AsyncClosing):
    """Base class: a source is an async context manager that polls readings.

    Subclasses implement ``poll``; those with device-side history implement ``history``;
    those with more than one cadence override ``jobs``.
    """

    kind: str = ""  # fritzbox | thinknx | overkiz

    def __init__(self, name: str, interval_s: float) -> None:
        self.name = name
        self.interval_s = interval_s

    async def aclose(self) -> None:
        """Release sessions and connections (e.g. log out)."""

    async def poll(self) -> Sequence[Reading]:
        raise NotImplementedError

    async def history(self, since: datetime, sink: HistorySink) -> None:
        """Device-side history from ``since`` on, handed to ``sink`` series by series.

        Sources without device-side history do nothing. A source with many series raises
        ``PartialFailure`` (with no readings: they went to the sink) when some series failed.
        """
        return None

    @property
    def keeps_history(self) -> bool:
        """Whether ``history`` can hand over anything for this source as configured (a
        source may have the port but not the means, e.g. a gateway's local API)."""
        return type(self).history is not Source.history

    async def check(self) -> str:
        """Reach the device, log in, verify permissions; return a short description."""
        await self.poll()
        return "reachable"

    def jobs(self) -> Sequence[SourceJob]:
        return (SourceJob("poll", self.interval_s, self.poll),)

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}"
