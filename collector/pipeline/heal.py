"""Gap healing in ``collector run``: device-side history fetched on start and after a
source comes back, through the watermarks of ``collector backfill``
(collector/pipeline/backfill.py).

Each source with device-side history gets one more job, ``heal``. Its first run (at start)
and every run after one of the source's other jobs failed fetch what is missing: each series
from its backfill watermark on, never from further back than ``heal_days`` (``[[overkiz]]``,
default 7; 0 turns healing off); a series without a watermark starts ``heal_days`` ago. The
readings go to the spool window by window and only then move the watermark, exactly as in a
backfill, so ``collector backfill`` and the daemon share one state and neither fetches twice
what the other stored.

While a source still fails, its heal waits (it would fail the same way). A heal that fails
(e.g. a window refused for rate, Overkiz's limiter) stays due and is tried again at the next
run of the job, ``HEAL_INTERVAL_S`` later: never in a tight loop. The windows stored before
the failure keep their watermarks, so the next try resumes after them.

The FRITZ!Box needs no heal: its statistics job runs at start and then every
``stats_interval``, and each round already reads everything the box keeps
(``getbasicdevicestats``, AHA-HTTP-Interface 1.2.2: e.g. the last hour of 10-s power
values, a day of 15-min temperatures, days and months of energy); the points of an overlap
are the same series at the same times (parse_stats.py), so the store overwrites them. What
is older than the box's memory is lost whoever asks.

After a long run a restart reads up to ``heal_days`` again (the watermarks move only when a
heal stores windows); the store keeps one point per series and time, so that costs
requests, never duplicates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from collector.errors import CollectorError, PartialFailure
from collector.model import Reading, utc_now
from collector.pipeline.app import App
from collector.pipeline.backfill import (
    BackfillOutcome,
    Watermarks,
    WatermarkSink,
    has_history,
    state_path,
)
from collector.sources.base import Source, SourceJob

log = logging.getLogger(__name__)

#: How often a source's heal job looks whether a heal is due.
HEAL_INTERVAL_S = 300.0
HEAL_JOB = "heal"
#: Source kinds whose own polling reads all the history the device keeps (see above).
HEALED_BY_POLLING = frozenset({"fritzbox"})
#: How far back a source without a ``heal_days`` setting of its own is healed.
DEFAULT_HEAL_DAYS = 7.0


def heals(source: Source) -> bool:
    """Whether ``source`` gets a heal job."""
    return has_history(source) and source.keeps_history and source.kind not in HEALED_BY_POLLING


class Healer:
    """The heal jobs of one daemon; heals run one at a time (they share the state file)."""

    def __init__(self, app: App, *, days: float | None = None,
                 now: Callable[[], datetime] = utc_now) -> None:
        self._app = app
        self._days = days
        self._now = now
        self._lock = asyncio.Lock()
        #: Failed job runs of each source when its last heal began (sources never healed:
        #: absent, hence due).
        self._healed_at: dict[str, int] = {}
        #: The last heal of each source (one per source, whatever the daemon's age).
        self.last: dict[str, BackfillOutcome] = {}

    def days(self, source: Source) -> float:
        """How far back ``source`` is healed: ``days`` if given, else its config's."""
        if self._days is not None:
            return self._days
        for oc in self._app.config.overkiz:
            if source.label == f"overkiz:{oc.name}":
                return oc.heal_days
        return DEFAULT_HEAL_DAYS

    def jobs(self) -> list[tuple[Source, SourceJob]]:
        """One heal job per source with device-side history and ``days`` above 0."""
        return [(s, SourceJob(HEAL_JOB, HEAL_INTERVAL_S, self._runner(s)))
                for s in self._app.sources if heals(s) and self.days(s) > 0]

    def _runner(self, source: Source) -> Callable[[], Awaitable[Sequence[Reading]]]:
        async def run() -> Sequence[Reading]:
            await self.heal_if_due(source)
            return ()

        return run

    def due(self, source: Source) -> bool:
        """Due at start, after a failed heal, and once the source works again after one of
        its jobs failed; never while one of its jobs is failing right now."""
        prefix = f"{source.label}:"
        current = [o for key, o in self._app.outcomes.items()
                   if key.startswith(prefix) and o.job != HEAL_JOB]
        if any(not o.ok for o in current):
            return False
        healed_at = self._healed_at.get(source.label)
        return healed_at is None or self._app.failed_runs[source.label] > healed_at

    async def heal_if_due(self, source: Source) -> BackfillOutcome | None:
        if not self.due(source):
            return None
        return await self.heal(source)

    async def heal(self, source: Source) -> BackfillOutcome:
        """Fetch the source's history from each series' watermark (at most ``days`` back);
        raises what the source raised, after its stored windows moved their watermarks."""
        async with self._lock:
            failed_before = self._app.failed_runs[source.label]
            since = self._now() - timedelta(days=self.days(source))
            outcome = self.last[source.label] = BackfillOutcome(source.label)
            # a fresh read: a `collector backfill` may have moved watermarks meanwhile
            marks = Watermarks(state_path(self._app))
            sink = WatermarkSink(self._app, marks, outcome, since, restart=False, progress=None)
            try:
                await source.history(since, sink)
            except PartialFailure as err:
                outcome.errors += err.errors
                raise
            except CollectorError as err:
                outcome.errors.append(f"{type(err).__name__}: {err}")
                raise
            log.info("%s: healed %d series with %d points (%d resumed at their watermark)",
                     source.label, len(outcome.series), outcome.points, len(outcome.resumed))
            self._healed_at[source.label] = failed_before
            return outcome
