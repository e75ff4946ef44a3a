"""``collector run``: all scheduling lives here.

Every source job becomes one APScheduler interval job with ``coalesce`` (a backlog of
missed runs collapses into one), ``max_instances=1`` (a slow device never overlaps with
itself), a misfire grace of half the interval and a small jitter so that many sources do
not hit the network at the same instant. Delivery to the store runs as its own task.
SIGTERM/SIGINT stop the scheduler, wait for running jobs, flush the spool and exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
import sys
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from collector.app import App
from collector.sources.base import Source, SourceJob

log = logging.getLogger(__name__)

SELF_METRICS_INTERVAL_S = 60.0
SHUTDOWN_FLUSH_S = 20.0
#: glibc's mallopt parameter M_MMAP_THRESHOLD (<malloc.h>) and its documented default.
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 128 * 1024


def return_large_blocks_to_the_os() -> None:
    """Keep glibc from holding on to the large buffers of a statistics round.

    glibc gives blocks above its mmap threshold (128 KiB) their own mappings, which go back
    to the system when freed; but the first such block freed raises the threshold to its
    own size (up to 32 MiB). After the first statistics round (a spool chunk of several MB
    and the UTF-8 copy SQLite gets of it) later large buffers come from the heap instead,
    which rarely shrinks: with 100 devices about 9 MB of resident memory kept for good.
    Setting the threshold explicitly turns that adjustment off.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # a C library without mallopt: nothing to tune
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)


def _jitter(interval_s: float) -> int:
    return int(min(5.0, interval_s * 0.05))


def schedule(app: App, scheduler: AsyncIOScheduler) -> None:
    start = datetime.now(UTC) + timedelta(seconds=1)
    for source in app.sources:
        for job in source.jobs():
            _add(app, scheduler, source, job, start)
    scheduler.add_job(
        _spool_metrics, "interval", args=[app], seconds=SELF_METRICS_INTERVAL_S,
        id="collector:spool", coalesce=True, max_instances=1, next_run_time=start,
        misfire_grace_time=int(SELF_METRICS_INTERVAL_S),
    )


def _add(app: App, scheduler: AsyncIOScheduler, source: Source, job: SourceJob,
         start: datetime) -> None:
    scheduler.add_job(
        _tracked, "interval", args=[app, source, job], seconds=job.interval_s,
        id=f"{source.label}:{job.name}", name=f"{source.label}:{job.name}",
        coalesce=True, max_instances=1, misfire_grace_time=max(1, int(job.interval_s / 2)),
        jitter=_jitter(job.interval_s), next_run_time=start,
    )


_running: set[asyncio.Task[object]] = set()


async def _tracked(app: App, source: Source, job: SourceJob) -> None:
    task = asyncio.current_task()
    if task is not None:
        _running.add(task)
    try:
        await app.run_job(source, job)
    finally:
        if task is not None:
            _running.discard(task)


async def _spool_metrics(app: App) -> None:
    app.spool_readings(app.spool_metrics())


async def run(app: App, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or ``stop``); then stop jobs, flush the spool, close."""
    stop = stop or asyncio.Event()
    return_large_blocks_to_the_os()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    scheduler = AsyncIOScheduler(timezone="UTC")
    schedule(app, scheduler)
    delivery = asyncio.create_task(app.deliverer.run(stop), name="delivery")
    scheduler.start()
    log.info("collector running: %d source(s), store %s, spool %s",
             len(app.sources), app.store.name, app.spool.path)
    try:
        await stop.wait()
    finally:
        log.info("stopping: waiting for running jobs, then flushing the spool")
        scheduler.shutdown(wait=False)
        await _wait_running_jobs()
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


async def _wait_running_jobs(timeout_s: float = 30.0) -> None:
    tasks = [t for t in _running if not t.done()]
    if tasks:
        await asyncio.wait(tasks, timeout=timeout_s)
