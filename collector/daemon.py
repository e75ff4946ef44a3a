"""``collector run``: all scheduling lives here.

Every source job becomes one APScheduler interval job with ``coalesce`` (a backlog of
missed runs collapses into one), ``max_instances=1`` (a slow device never overlaps with
itself), a misfire grace of half the interval and a small jitter so that many sources do
not hit the network at the same instant. Delivery to the store runs as its own task.
SIGTERM/SIGINT stop the scheduler, wait up to 30 s for running jobs (a job still running
then is cancelled: it spools what it has, counts as failed and is named in the log), flush
the spool and exit 0. Nothing of a job runs after the spool is closed. Every 5 s the free
pages inside glibc's heaps go back to the system (``trim_heap``); Python's cycle collector
leaves what was set up at the start alone and runs less often (``tuned_gc``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import gc
import logging
import signal
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from collector.app import App
from collector.heal import Healer
from collector.sources.base import Source, SourceJob

log = logging.getLogger(__name__)

SELF_METRICS_INTERVAL_S = 60.0
SHUTDOWN_FLUSH_S = 20.0
#: How long shutdown waits for running jobs before cancelling them.
JOB_GRACE_S = 30.0
#: How long a cancelled job may take to wind down (it spools what it has).
_CANCEL_WAIT_S = 5.0
#: Allocations of container objects (net of those freed) between two collections of the
#: youngest generation of Python's cycle collector (Python's default: 700).
GC_YOUNG_THRESHOLD = 10_000
#: glibc's mallopt parameter M_MMAP_THRESHOLD (<malloc.h>) and its documented default.
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 128 * 1024
#: How often the free pages inside glibc's heaps go back to the system (``trim_heap``).
HEAP_TRIM_INTERVAL_S = 5.0
#: Modules that libraries import whenever they are installed but ``collector run`` never
#: uses: httpx's command line client (``httpx._main``, which pulls in rich and pygments) and
#: trio (an optional backend httpcore imports if it can; asyncio is what runs here). Marked
#: absent before httpx is first imported, they keep about 7 MB out of the daemon.
_UNUSED_MODULES = ("httpx._main", "trio")


def keep_unused_modules_out() -> None:
    """Make later imports of ``_UNUSED_MODULES`` fail, so that their importers take their
    own ``ImportError`` fallback; a module already imported stays as it is.

    Call it before anything imports httpx (``collector run`` does, first thing).
    """
    for name in _UNUSED_MODULES:
        # None in sys.modules is the documented way to make an import fail; typeshed's type
        # for sys.modules does not allow it.
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


@functools.cache
def _libc() -> Any:
    """The C library of this process, or None where it is not glibc-like (no mallopt)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    # a C library without them (e.g. musl): nothing to tune
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def trim_heap() -> None:
    """Give the free pages inside glibc's heaps back to the system.

    Python frees small objects into its own arenas (returned when empty), but larger blocks
    (lists of lines, parse buffers, SQLite's copies) come from glibc's heaps, which only
    shrink from the top; a poll leaves free holes that stay resident. ``malloc_trim(0)``
    releases every free page of every heap (about 3 MB with 100 devices); it takes well
    under a millisecond.
    """
    if (libc := _libc()) is not None:
        libc.malloc_trim(0)


async def _trim_heap_every(interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        trim_heap()


def return_large_blocks_to_the_os() -> None:
    """Keep glibc from holding on to the large buffers of a statistics round.

    glibc gives blocks above its mmap threshold (128 KiB) their own mappings, which go back
    to the system when freed; but the first such block freed raises the threshold to its
    own size (up to 32 MiB). After the first statistics round (a spool chunk of several MB
    and the UTF-8 copy SQLite gets of it) later large buffers come from the heap instead,
    which rarely shrinks: with 100 devices about 9 MB of resident memory kept for good.
    Setting the threshold explicitly turns that adjustment off.
    """
    if (libc := _libc()) is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)


@contextlib.contextmanager
def tuned_gc() -> Iterator[None]:
    """Spare the event loop needless work of Python's cycle collector, while inside.

    A poll makes thousands of short-lived objects (readings, tuples, the parts of a chunk)
    that reference counting frees at once, and hardly any reference cycles. With Python's
    default threshold a 100-device poll still triggered collections that walked every
    object of the process again and again, modules and configuration included: about 18 ms
    of CPU per 100,000 lines. What exists on entry is moved out of the collector's sight
    (``gc.freeze``: it lives as long as the daemon anyway), and the youngest generation is
    collected after ``GC_YOUNG_THRESHOLD`` new objects instead of 700; a poll then triggers
    almost none, and a cycle is still freed within a few polls.
    """
    gc.collect()
    gc.freeze()
    before = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def _jitter(interval_s: float) -> int:
    return int(min(5.0, interval_s * 0.05))


class InFlight:
    """The job runs in progress, each its own task, so that shutdown can wait for them and
    then cancel and count the ones still running (APScheduler only runs them)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()
        self._stopping = False

    async def run(self, app: App, source: Source, job: SourceJob) -> None:
        """The scheduled function of every job."""
        if self._stopping:
            # handed over by the scheduler just before it was paused: starting now would
            # outlive the spool
            return
        task: asyncio.Task[object] = asyncio.create_task(
            app.run_job(source, job), name=f"{source.label}:{job.name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            # Cancelled at shutdown (the run itself, counted by ``stop``) or the scheduler
            # giving up on this wrapper: the run stays tracked and is waited for either way.
            return

    async def stop(self, grace_s: float) -> list[str]:
        """Wait up to ``grace_s`` for the running jobs, cancel the rest; their names."""
        self._stopping = True
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
        _, stuck = await asyncio.wait(late, timeout=_CANCEL_WAIT_S)
        if stuck:
            log.error("job(s) ignoring cancellation, their readings are lost: %s",
                      ", ".join(sorted(t.get_name() for t in stuck)))
            for task in stuck:  # whatever they end with once the spool is closed: not raised
                task.add_done_callback(_ended_after_shutdown)
        return names


def _ended_after_shutdown(task: asyncio.Task[object]) -> None:
    if not task.cancelled() and (err := task.exception()) is not None:
        log.debug("%s ended after shutdown: %s: %s", task.get_name(), type(err).__name__, err)


def schedule(app: App, scheduler: AsyncIOScheduler, jobs: InFlight) -> None:
    start = datetime.now(UTC) + timedelta(seconds=1)
    for source in app.sources:
        for job in source.jobs():
            _add(scheduler, jobs, app, source, job, start)
    # gap healing: device-side history on start and after a source comes back (heal.py)
    for source, job in Healer(app).jobs():
        _add(scheduler, jobs, app, source, job, start)
    scheduler.add_job(
        _spool_metrics, "interval", args=[app], seconds=SELF_METRICS_INTERVAL_S,
        id="collector:spool", coalesce=True, max_instances=1, next_run_time=start,
        misfire_grace_time=int(SELF_METRICS_INTERVAL_S),
    )


def _add(scheduler: AsyncIOScheduler, jobs: InFlight, app: App, source: Source, job: SourceJob,
         start: datetime) -> None:
    scheduler.add_job(
        jobs.run, "interval", args=[app, source, job], seconds=job.interval_s,
        id=f"{source.label}:{job.name}", name=f"{source.label}:{job.name}",
        coalesce=True, max_instances=1, misfire_grace_time=max(1, int(job.interval_s / 2)),
        jitter=_jitter(job.interval_s), next_run_time=start,
    )


async def _spool_metrics(app: App) -> None:
    app.spool_readings(app.spool_metrics())


async def run(app: App, stop: asyncio.Event | None = None, *,
              job_grace_s: float = JOB_GRACE_S) -> None:
    """Run until SIGTERM/SIGINT (or ``stop``); then stop jobs, flush the spool, close."""
    with tuned_gc():
        await _run(app, stop or asyncio.Event(), job_grace_s)


async def _run(app: App, stop: asyncio.Event, job_grace_s: float) -> None:
    return_large_blocks_to_the_os()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    scheduler = AsyncIOScheduler(timezone="UTC")
    jobs = InFlight()
    schedule(app, scheduler, jobs)
    delivery = asyncio.create_task(app.deliverer.run(stop), name="delivery")
    trimming = asyncio.create_task(_trim_heap_every(HEAP_TRIM_INTERVAL_S), name="heap trim")
    scheduler.start()
    log.info("collector running: %d source(s), store %s, spool %s",
             len(app.sources), app.store.name, app.spool.path)
    try:
        await stop.wait()
    finally:
        log.info("stopping: waiting for running jobs, then flushing the spool")
        scheduler.pause()  # no new runs; the running ones finish or are cancelled
        await jobs.stop(job_grace_s)
        scheduler.shutdown(wait=False)
        trimming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await trimming
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await delivery
        flushed = await app.deliverer.drain(deadline_s=SHUTDOWN_FLUSH_S)
        if not flushed:
            log.warning("%d lines stay in the spool %s and will be delivered at the next start",
                        app.spool.pending, app.spool.path)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await app.aclose()
