"""The job runs of ``collector run`` in progress: one at a time per job, overruns said once,
stuck runs told apart, and shutdown that waits for them, then cancels and counts them.

APScheduler only starts runs: each one becomes a task of its own here and the scheduled
function returns at once, so that a run that overruns its interval is not reported by
APScheduler once per skipped run ("maximum number of running instances reached"): a trigger
that finds the job's last run still going is skipped here, and the overrun is logged once
per run, with how long it has been running; its end is logged too.

A job is *stuck* when it has not finished a run for longer than its bound (``stuck_after``):
several of its intervals, never less than ``STUCK_MIN_S``; device history (``heal``) may
take hours through rate limits and has a bound of its own. The daemon feeds systemd's
watchdog only while no job is stuck (daemon.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from functools import partial

from collector.pipeline.app import App
from collector.pipeline.heal import HEAL_JOB
from collector.sources.base import Source, SourceJob

log = logging.getLogger("collector.pipeline.daemon")

#: How long a cancelled job may take to wind down (it spools what it has).
CANCEL_WAIT_S = 5.0
#: A job is stuck once it has not finished a run for this many of its intervals ...
STUCK_INTERVALS = 3
#: ... and never before this long.
STUCK_MIN_S = 300.0
#: A heal fetches days of device history through the device's rate limits.
HEAL_STUCK_S = 6 * 3600.0


def stuck_after(job: SourceJob, minimum_s: float = STUCK_MIN_S) -> float:
    """How long ``job`` may go without finishing a run before it counts as stuck."""
    if job.name == HEAL_JOB:
        return max(minimum_s, HEAL_STUCK_S)
    return max(minimum_s, STUCK_INTERVALS * job.interval_s)


@dataclass
class _Run:
    task: asyncio.Task[object]
    started: float
    overrun_said: bool = False
    skipped: int = 0


class InFlight:
    """The job runs in progress, each its own task, so that shutdown can wait for them and
    then cancel and count the ones still running."""

    def __init__(self, *, stuck_min_s: float = STUCK_MIN_S,
                 cancel_wait_s: float = CANCEL_WAIT_S) -> None:  # fmt: skip
        self._tasks: set[asyncio.Task[object]] = set()
        self._runs: dict[str, _Run] = {}
        #: per job: (its bound, time.monotonic() its last run ended or it was added)
        self._jobs: dict[str, tuple[float, float]] = {}
        self._stuck_min_s = stuck_min_s
        self._cancel_wait_s = cancel_wait_s
        self._stopping = False
        self._stopped = False

    def add(self, key: str, job: SourceJob, *, starts_in_s: float = 0.0) -> None:
        """Watch ``job`` (scheduled as ``key``, its first run ``starts_in_s`` from now)."""
        self._jobs[key] = (stuck_after(job, self._stuck_min_s), time.monotonic() + starts_in_s)

    async def run(self, app: App, source: Source, job: SourceJob) -> None:
        """The scheduled function of every job: starts a run unless one is going."""
        if self._stopping:
            # handed over by the scheduler just before it was paused: starting now would
            # outlive the spool
            return
        key = f"{source.label}:{job.name}"
        current = self._runs.get(key)
        if current is not None:
            self._overran(key, current, job.interval_s)
            return
        task: asyncio.Task[object] = asyncio.create_task(app.run_job(source, job), name=key)
        self._runs[key] = _Run(task, time.monotonic())
        self._tasks.add(task)
        task.add_done_callback(partial(self._ended, key))

    def _overran(self, key: str, run: _Run, interval_s: float) -> None:
        run.skipped += 1
        if not run.overrun_said:
            run.overrun_said = True
            log.warning("job %s has been running for %.1f s, longer than its interval of %g s; "
                        "its next runs wait until it ends", key,
                        time.monotonic() - run.started, interval_s)

    def _ended(self, key: str, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        run = self._runs.get(key)
        if run is not None and run.task is task:
            del self._runs[key]
            if key in self._jobs:
                self._jobs[key] = (self._jobs[key][0], time.monotonic())
            if run.overrun_said:
                log.warning("job %s ended after %.1f s; %d run(s) skipped meanwhile", key,
                            time.monotonic() - run.started, run.skipped)
        if task.cancelled() or (err := task.exception()) is None:
            return
        if self._stopped:  # whatever it ends with once the spool is closed: not raised
            log.debug("%s ended after shutdown: %s: %s", key, type(err).__name__, err)
        else:
            log.error("%s: unexpected error", key, exc_info=err)

    def stuck(self, now: float | None = None) -> list[tuple[str, float, bool]]:
        """The jobs that have not finished a run within their bound: (name, seconds their
        run has been going, True) or (name, seconds since their last run ended, False)."""
        now = time.monotonic() if now is None else now
        out = []
        for key, (bound, ended) in sorted(self._jobs.items()):
            if now - ended > bound:
                run = self._runs.get(key)
                out.append((key, now - run.started, True) if run else (key, now - ended, False))
        return out

    async def stop(self, grace_s: float) -> list[str]:
        """Wait up to ``grace_s`` for the running jobs, cancel the rest; their names."""
        self._stopping = True
        try:
            return await self._stop(grace_s)
        finally:
            self._stopped = True

    async def _stop(self, grace_s: float) -> list[str]:
        running = [t for t in self._tasks if not t.done()]
        if not running:
            return []
        _, late = await asyncio.wait(running, timeout=grace_s)
        if not late:
            return []
        names = sorted(t.get_name() for t in late)
        log.warning("%d job(s) still running after %.0f s cancelled: %s", len(late), grace_s,
                    ", ".join(names))
        for task in late:
            task.cancel()
        _, stuck = await asyncio.wait(late, timeout=self._cancel_wait_s)
        if stuck:
            log.error("job(s) ignoring cancellation, their readings are lost: %s",
                      ", ".join(sorted(t.get_name() for t in stuck)))
        return names
