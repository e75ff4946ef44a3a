"""``collector backfill``: load device-side history into the store, resumable.

Each source's ``history(since, sink)`` hands its history to a sink series by series (a
FRITZ! device's statistics, one Overkiz state of one device), window by window. The sink
here spools every window like polled readings, so an interrupted backfill loses nothing
that was handed over, and only then moves that series' *watermark*: the end of the last
window stored. The watermarks live in a small private JSON file beside the spool, one per
(source, series). A rerun starts every series at ``max(--since, watermark)``, so it fetches
only what is missing, whatever ``--since`` says; ``--restart`` ignores the watermarks (and
still stores new ones). The file holds one entry per series, never one per run.

A source that answers "too many requests" or "unavailable" with a Retry-After of at most
``MAX_RETRY_AFTER_S`` is asked again after that wait, from the watermarks, so only the window
that was refused is fetched again; ``RETRIES`` refusals in a row without a stored window in
between end the source's backfill. A run cancelled midway (Ctrl-C) keeps every window it
stored: the caller's ``outcomes`` list shows how far each source got.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from collector.errors import CollectorError, ConfigError, PartialFailure, TransientError
from collector.model import Reading
from collector.pipeline.app import App
from collector.sources.base import Source

log = logging.getLogger(__name__)
_REL = re.compile(r"^(\d+)([mhdw])$")
_REL_S = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
#: The state file's format; files without it (the per-``--since`` format of earlier
#: versions) are ignored and replaced at the first stored window.
STATE_VERSION = 2
#: Refusals in a row (no window stored in between) after which a source's backfill ends.
RETRIES = 3
#: A longer Retry-After ends the source's backfill at once: run it again later.
MAX_RETRY_AFTER_S = 60.0
#: Where a series done in this run starts when its source starts over: later than the end
#: of any window up to the present (windows include both bounds, to the millisecond).
_AHEAD = timedelta(seconds=1)


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """'7d', '12h', '30m', '2w' (ago) or an ISO date/time (UTC unless it says otherwise)."""
    now = now or datetime.now(UTC)
    if m := _REL.match(text.strip()):
        return now - timedelta(seconds=int(m.group(1)) * _REL_S[m.group(2)])
    try:
        ts = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"--since: {text!r} is neither e.g. 7d/12h/2w nor an ISO date") from None
    return _aware(ts)


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def state_path(app: App) -> Path:
    """The watermark file of ``app``: beside its spool."""
    return app.spool.path.with_name(app.spool.path.name + ".backfill.json")


def write_private_atomically(path: Path, text: str) -> None:
    """Replace ``path`` by ``text``: a private temporary file, fsync, rename, fsync the
    directory. A crash leaves either the old or the new file, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a stale temporary file may have had other bits
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class Watermarks:
    """One watermark per (source label, series): the end of the last window stored."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._marks: dict[str, dict[str, str]] = self._load(path)

    @staticmethod
    def _load(path: Path) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            log.warning("backfill state %s is unreadable (%s): starting every series at "
                        "--since", path, err)
            return {}
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            log.info("backfill state %s is from an earlier version: ignored", path)
            return {}
        sources = data.get("watermarks")
        if not isinstance(sources, dict):
            return {}
        return {label: {s: t for s, t in series.items() if isinstance(t, str)}
                for label, series in sources.items() if isinstance(series, dict)}

    def get(self, source: str, series: str) -> datetime | None:
        text = self._marks.get(source, {}).get(series)
        if text is None:
            return None
        try:
            return _aware(datetime.fromisoformat(text))
        except ValueError:
            log.warning("backfill state %s: %s %s has no valid watermark: ignored",
                        self.path, source, series)
            return None

    def set(self, source: str, series: str, until: datetime) -> None:
        """Store ``until`` for the series and write the file (before returning).

        Another process may keep watermarks in the same file (a ``collector backfill``
        while ``collector run`` heals gaps): under a lock the file is read again and only
        this series changed, so neither writes back its older copy of the other's marks."""
        value = _aware(until).astimezone(UTC).isoformat()
        self._marks.setdefault(source, {})[series] = value
        with _locked(self.path):
            # A temporary file seen while holding the lock is what a writer killed midway
            # left behind (writers write them only under the lock).
            for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
                stale.unlink(missing_ok=True)
            marks = self._load(self.path)
            marks.setdefault(source, {})[series] = value
            text = json.dumps({"version": STATE_VERSION, "watermarks": marks}, indent=1,
                              sort_keys=True)
            write_private_atomically(self.path, text)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on a private file beside ``path``, held while the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class Progress(Protocol):
    """What the command line shows while a backfill runs (e.g. a progress bar per source)."""

    def begin(self, source: str) -> None: ...

    def expect(self, source: str, windows: int) -> None: ...

    def advance(self, source: str, points: int) -> None: ...


@dataclass
class BackfillOutcome:
    source: str
    #: False for a source that keeps no history on the device.
    has_history: bool = True
    #: Windows stored, and windows the source announced (None: it did not say).
    windows: int = 0
    expected: int | None = None
    #: Series that handed over at least one window, and series that resumed at a watermark.
    series: set[str] = field(default_factory=set)
    resumed: set[str] = field(default_factory=set)
    points: int = 0
    dropped: int = 0
    errors: list[str] = field(default_factory=list)
    #: Waits for a source's Retry-After, and whether the run was cancelled in this source.
    retries: int = 0
    interrupted: bool = False
    #: The times of the first and the last reading loaded (None: none loaded).
    first: datetime | None = None
    last: datetime | None = None

    def loaded(self, readings: Sequence[Reading]) -> None:
        """Widen the range of times loaded by ``readings``."""
        if not readings:
            return
        times = [r.time for r in readings]
        lo, hi = min(times), max(times)
        self.first = lo if self.first is None else min(self.first, lo)
        self.last = hi if self.last is None else max(self.last, hi)


class WatermarkSink:
    """The ``HistorySink`` of one source in one run of ``collector backfill`` or of a gap
    heal (collector/pipeline/heal.py): readings to the spool, each series' watermark saved."""

    def __init__(self, app: App, marks: Watermarks, outcome: BackfillOutcome, since: datetime,
                 *, restart: bool, progress: Progress | None) -> None:
        self._app = app
        self._marks = marks
        self._outcome = outcome
        self._since = since
        self._restart = restart
        self._progress = progress
        self._done_before = 0  # windows stored before the source's current attempt
        self._announced = 0  # windows the source announced in its current attempt
        self._began = datetime.now(UTC)
        self._ahead: set[str] = set()  # series started after the present (see start)

    def start(self, series: str) -> datetime:
        """Where ``series`` begins: its watermark when that is later than --since; under
        --restart only a watermark stored in this run (the source started over).

        A series this run already brought up to the time it began is done: when the source
        starts over (after a refusal for rate) it begins just after the present, so no
        window up to now is asked for it again in this run (the next run gets what was
        recorded since)."""
        this_run = series in self._outcome.series
        if self._restart and not this_run:
            return self._since
        mark = self._marks.get(self._outcome.source, series)
        if this_run and mark is not None and mark >= self._began:
            self._ahead.add(series)
            return max(mark, datetime.now(UTC) + _AHEAD)
        if mark is not None and mark > self._since:
            if not this_run:
                self._outcome.resumed.add(series)
            return mark
        return self._since

    def put(self, series: str, readings: Sequence[Reading], *, until: datetime) -> None:
        lines, dropped = self._app.spool_counted(readings)
        # Only what is in the spool may move the watermark: see HistorySink. A series
        # started after the present keeps its mark: what was recorded between the mark and
        # its start was not asked for.
        if series not in self._ahead:
            self._marks.set(self._outcome.source, series, until)
        self._outcome.series.add(series)
        self._outcome.windows += 1
        self._outcome.points += lines
        self._outcome.dropped += dropped
        self._outcome.loaded(readings)
        if self._progress is not None:
            self._progress.advance(self._outcome.source, lines)

    def total(self, windows: int) -> None:
        """Each call adds ``windows`` to the windows to expect (in this attempt)."""
        self._announced += windows
        expected = self._done_before + self._announced
        change = expected - (self._outcome.expected or 0)
        self._outcome.expected = expected
        if self._progress is not None and change:
            self._progress.expect(self._outcome.source, change)

    def again(self) -> None:
        """The source starts over from the watermarks: what it announces next replaces
        what it announced before and did not store."""
        self._done_before = self._outcome.windows
        self._announced = 0


def has_history(source: Source) -> bool:
    return type(source).history is not Source.history


async def run_backfill(app: App, since: datetime, *, source_name: str | None = None,
                       restart: bool = False, progress: Progress | None = None,
                       outcomes: list[BackfillOutcome] | None = None) -> list[BackfillOutcome]:
    """Backfill every source (or the one named), one after the other; returns one outcome
    per source. ``outcomes``, if given, is filled as the run goes: a caller whose run is
    cancelled midway still learns what was stored."""
    sources = [s for s in app.sources
               if source_name is None or source_name in (s.name, s.label)]
    if source_name is not None and not sources:
        known = ", ".join(s.label for s in app.sources) or "none configured"
        raise ConfigError(f"--source: no source named {source_name!r} (known: {known})")
    since = _aware(since)
    marks = Watermarks(state_path(app))
    outcomes = outcomes if outcomes is not None else []
    for source in sources:
        outcome = BackfillOutcome(source.label, has_history=has_history(source))
        outcomes.append(outcome)
        if not outcome.has_history:
            continue
        if progress is not None:
            progress.begin(source.label)
        sink = WatermarkSink(app, marks, outcome, since, restart=restart, progress=progress)
        try:
            await _history(app, source, since, sink, outcome)
        except asyncio.CancelledError:
            # Every window handed over is in the spool and its watermark saved: a rerun
            # continues after it.
            outcome.interrupted = True
            raise
    await app.deliverer.drain()
    await fill_rollups_of(app, outcomes)
    return outcomes


async def fill_rollups_of(app: App, outcomes: Sequence[BackfillOutcome]) -> str | None:
    """Compute the store's rollups over the past the backfill loaded: a continuous query or
    task only covers the last hours. Not stored yet (the spool still holds lines): nothing
    is computed, the rollups would miss them; the note says so."""
    from collector.stores.setup import fill_rollups

    firsts = [o.first for o in outcomes if o.first is not None]
    lasts = [o.last for o in outcomes if o.last is not None]
    if not firsts or not lasts:
        return None
    if app.spool.pending:
        log.warning("rollups of the backfilled range not computed: %d lines still wait in "
                    "the spool (run `collector backfill` again once they are stored)",
                    app.spool.pending)
        return None
    lo, hi = min(firsts), max(lasts)
    start = int(lo.timestamp()) * 1_000_000_000
    end = (int(hi.timestamp()) + 1) * 1_000_000_000
    try:
        note = await asyncio.to_thread(fill_rollups, app.config, start, end)
    except CollectorError as err:
        log.warning("rollups of the backfilled range not computed: %s", err)
        return None
    if note is not None:
        log.info("rollups from %s to %s: %s", lo.isoformat(), hi.isoformat(), note)
    return note


async def _history(app: App, source: Source, since: datetime, sink: WatermarkSink,
                   outcome: BackfillOutcome) -> None:
    """One source's history; after a refusal with a short Retry-After, wait and go on from
    the watermarks (a --restart run too: its new watermarks are the ones to resume at)."""
    refused = 0
    while True:
        stored_before = outcome.windows
        try:
            await source.history(since, sink)
        except TransientError as err:
            refused = 0 if outcome.windows > stored_before else refused + 1
            wait = err.retry_after
            if wait is None or wait > MAX_RETRY_AFTER_S or refused > RETRIES:
                outcome.errors.append(f"{type(err).__name__}: {err}")
                return
            log.warning("%s: %s; going on from the watermarks in %.1f s", source.label, err,
                        wait)
            outcome.retries += 1
            sink.again()
            await asyncio.sleep(max(wait, 0.0))
            continue
        except PartialFailure as err:
            outcome.errors += err.errors
            if isinstance(err.readings, Sequence) and err.readings:
                outcome.points += app.spool_readings(err.readings)  # not resumable: no series
        except CollectorError as err:
            outcome.errors.append(f"{type(err).__name__}: {err}")
        except Exception as err:  # a bug in one source must not stop the others
            log.exception("%s: unexpected error during backfill", source.label)
            outcome.errors.append(f"{type(err).__name__}: {err}")
        return
