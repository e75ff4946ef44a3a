"""``collector run``: all scheduling lives here.

Every source job becomes one APScheduler interval job with ``coalesce`` (a backlog of
missed runs collapses into one), one run at a time (a slow device never overlaps with
itself; an overrun is logged once, inflight.py), a misfire grace of half the interval and a
small jitter so that many sources do not hit the network at the same instant. Delivery to
the store runs as its own task.

systemd learns when the daemon is ready and when it stops, and its watchdog is fed only
while the daemon works: the event loop runs, no job is stuck (inflight.py), the spool's
thread is not stuck in one transaction and delivery runs; a heartbeat file tells the same to
a container's health check (supervisor.py). A stuck state is an error in the log, once.

SIGTERM/SIGINT stop the scheduler, wait up to 30 s for running jobs (a job still running
then is cancelled: it spools what it has, counts as failed and is named in the log), flush
the spool for up to 20 s and exit 0. Nothing of a job runs after the spool is closed. The
signals are received by a thread of their own, so a stop is seen even while the event loop
hangs, and the process ends ``STOP_DEADLINE_S`` after the signal whatever state it is in:
what was committed to the spool stays there (as after a kill -9) and is counted in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import faulthandler
import functools
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from collector.pipeline.app import App
from collector.pipeline.heal import Healer
from collector.pipeline.inflight import CANCEL_WAIT_S, STUCK_MIN_S, InFlight
from collector.pipeline.supervisor import (
    HEARTBEAT_S,
    Heartbeat,
    Notifier,
    heartbeat_path,
    watchdog_interval_s,
)
from collector.sources.base import Source, SourceJob

log = logging.getLogger(__name__)

SELF_METRICS_INTERVAL_S = 60.0
SHUTDOWN_FLUSH_S = 20.0
#: How long shutdown waits for running jobs before cancelling them.
JOB_GRACE_S = 30.0
#: How long shutdown waits for the batches under way to the store before the last flush.
DELIVERY_STOP_S = 10.0
#: How long closing the sources, the store and the spool may take.
CLOSE_S = 5.0
#: The process ends this long after SIGTERM/SIGINT whatever it is doing: after the job
#: grace, their cancellation, the batches under way, the flush and the closing (70 s at
#: most), within systemd's TimeoutStopSec (90 s in deploy/collector.service).
STOP_DEADLINE_S = 80.0
#: The exit status when the deadline ended the process.
EXIT_STOP_DEADLINE = 1
#: The spool's thread counts as stuck after this long in one transaction.
SPOOL_STUCK_S = 120.0
#: glibc's mallopt parameter M_MMAP_THRESHOLD (<malloc.h>) and its documented default.
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 128 * 1024
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
    # a C library without it (e.g. musl): nothing to tune
    return libc if hasattr(libc, "mallopt") else None


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


def _jitter(interval_s: float) -> int:
    return int(min(5.0, interval_s * 0.05))


def schedule(app: App, scheduler: AsyncIOScheduler, jobs: InFlight) -> None:
    start = datetime.now(UTC) + timedelta(seconds=1)
    for source in app.sources:
        for job in source.jobs():
            _add(scheduler, jobs, app, source, job, start)
    # gap healing: device-side history on start and after a source comes back (heal.py)
    for source, job in Healer(app).jobs():
        _add(scheduler, jobs, app, source, job, start)
    scheduler.add_job(
        app.spool_metrics_async, "interval", seconds=SELF_METRICS_INTERVAL_S,
        id="collector:spool", coalesce=True, max_instances=1, next_run_time=start,
        misfire_grace_time=int(SELF_METRICS_INTERVAL_S),
    )


def _add(scheduler: AsyncIOScheduler, jobs: InFlight, app: App, source: Source, job: SourceJob,
         start: datetime) -> None:
    key = f"{source.label}:{job.name}"
    jitter = _jitter(job.interval_s)
    jobs.add(key, job, starts_in_s=(start - datetime.now(UTC)).total_seconds() + jitter)
    scheduler.add_job(
        jobs.run, "interval", args=[app, source, job], seconds=job.interval_s,
        id=key, name=key, coalesce=True, max_instances=1,
        misfire_grace_time=max(1, int(job.interval_s / 2)),
        jitter=jitter, next_run_time=start,
    )


class Signals:
    """SIGTERM and SIGINT, received by a thread of their own: Python's signal handler only
    marks them in a file descriptor (``signal.set_wakeup_fd``), which this thread reads, so
    a stop is seen even while the event loop is blocked."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, on_signal: Callable[[int], None]) -> None:
        self._on_signal = on_signal
        self._read, self._write = socket.socketpair()
        self._write.setblocking(False)
        self._old_fd = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        self._old = {sig: signal.signal(sig, _noted) for sig in self.SIGNALS}
        self._thread = threading.Thread(target=self._watch, name="signals", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while data := self._read.recv(64):
            for number in data:
                if number in self.SIGNALS:
                    self._on_signal(number)

    def close(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        signal.set_wakeup_fd(self._old_fd)
        self._write.shutdown(socket.SHUT_RDWR)  # ends the thread's recv
        self._thread.join(1.0)
        self._write.close()
        self._read.close()


def _noted(signum: int, frame: object) -> None:
    """The Python-level handler: nothing to do, the wakeup descriptor carries the signal."""


def _exit_after(app: App, seconds: float) -> threading.Timer:
    """End the process ``seconds`` from now unless it has ended by then."""

    def deadline() -> None:
        lost = sum(app.spool.health.lost().values())
        log.error("still stopping %.0f s after the signal: exiting now; %d lines stay in the "
                  "spool %s for the next start%s", seconds, app.spool.pending, app.spool.path,
                  f", {lost} lines could not be spooled and are lost" if lost else "")
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        os._exit(EXIT_STOP_DEADLINE)

    timer = threading.Timer(seconds, deadline)
    timer.daemon = True
    timer.name = "stop deadline"
    timer.start()
    return timer


class Liveness:
    """Whether the daemon works, for systemd's watchdog and the heartbeat file."""

    def __init__(self, app: App, jobs: InFlight, delivery: asyncio.Task[None],
                 spool_stuck_s: float = SPOOL_STUCK_S) -> None:  # fmt: skip
        self._app = app
        self._jobs = jobs
        self._delivery = delivery
        self._spool_stuck_s = spool_stuck_s

    def problems(self) -> list[tuple[str, str]]:
        """What keeps the daemon from working: (what, text) pairs; empty while it works."""
        out = [(key, f"{key} has been running for {age:.0f} s" if running
                else f"{key} has not run for {age:.0f} s")
               for key, age, running in self._jobs.stuck()]
        busy = self._app.spool.busy_for()
        if busy > self._spool_stuck_s:
            out.append(("spool", f"the spool's thread has been in one transaction for "
                                 f"{busy:.0f} s ({self._app.spool.path})"))
        if self._delivery.done():
            out.append(("delivery", "delivery to the store has ended"))
        return out


async def _feed_watchdog(liveness: Liveness, notifier: Notifier, heartbeat: Heartbeat,
                         interval_s: float) -> None:  # fmt: skip
    """Every ``interval_s``: feed systemd's watchdog and touch the heartbeat while the
    daemon works; say once what stops it from working, and once when it works again."""
    said: frozenset[str] = frozenset()
    while True:
        problems = liveness.problems()
        what = frozenset(key for key, _ in problems)
        if not problems:
            notifier.notify("WATCHDOG=1")
            heartbeat.beat()
            if said:
                log.warning("the collector works again: the watchdog is fed again")
        elif what != said:
            log.error("the collector does not work: %s; the watchdog is no longer fed, a "
                      "supervisor will restart it", "; ".join(text for _, text in problems))
        said = what
        await asyncio.sleep(interval_s)


async def run(app: App, stop: asyncio.Event | None = None, *,
              job_grace_s: float = JOB_GRACE_S, stuck_min_s: float = STUCK_MIN_S,
              spool_stuck_s: float = SPOOL_STUCK_S) -> None:  # fmt: skip
    """Run until SIGTERM/SIGINT (or ``stop``); then stop jobs, flush the spool, close."""
    await _run(app, stop or asyncio.Event(), job_grace_s, stuck_min_s, spool_stuck_s)


async def _run(app: App, stop: asyncio.Event, job_grace_s: float, stuck_min_s: float,
               spool_stuck_s: float) -> None:  # fmt: skip
    return_large_blocks_to_the_os()
    if not faulthandler.is_enabled():  # a watchdog's SIGABRT shows where it hung
        faulthandler.enable()
    loop = asyncio.get_running_loop()
    deadline: list[threading.Timer] = []

    def on_signal(signum: int) -> None:  # on the signals' thread
        if not deadline:
            deadline.append(_exit_after(app, STOP_DEADLINE_S))
        with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to stop
            loop.call_soon_threadsafe(stop.set)

    signals = Signals(on_signal)
    notifier = Notifier()
    heartbeat = Heartbeat(heartbeat_path(app.config))
    scheduler = AsyncIOScheduler(timezone="UTC")
    jobs = InFlight(stuck_min_s=stuck_min_s, cancel_wait_s=CANCEL_WAIT_S)
    schedule(app, scheduler, jobs)
    delivery = asyncio.create_task(app.deliverer.run(stop), name="delivery")
    watchdog = watchdog_interval_s()
    feeding = asyncio.create_task(_feed_watchdog(
        Liveness(app, jobs, delivery, spool_stuck_s), notifier, heartbeat,
        watchdog / 3 if watchdog else HEARTBEAT_S), name="watchdog")
    scheduler.start()
    notifier.notify("READY=1", "STATUS=collecting")
    log.info("collector running: %d source(s), store %s, spool %s",
             len(app.sources), app.store.name, app.spool.path)
    try:
        await stop.wait()
    finally:
        # the watchdog is fed no more: the stop is bounded by STOP_DEADLINE_S, which is
        # shorter than WatchdogSec
        feeding.cancel()
        notifier.notify("STOPPING=1", "STATUS=stopping")
        log.info("stopping: waiting for running jobs, then flushing the spool")
        started = time.monotonic()
        scheduler.pause()  # no new runs; the running ones finish or are cancelled
        await jobs.stop(job_grace_s)
        scheduler.shutdown(wait=False)
        with contextlib.suppress(asyncio.CancelledError):
            await feeding
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            # the deliverer gives the batches under way DELIVERY_STOP_S itself
            await asyncio.wait_for(delivery, DELIVERY_STOP_S + CLOSE_S)
        flushed = await app.deliverer.drain(deadline_s=SHUTDOWN_FLUSH_S)
        if not flushed:
            log.warning("%d lines stay in the spool %s and will be delivered at the next start",
                        app.spool.pending, app.spool.path)
        if lost := app.spool.health.lost():
            log.error("%d lines could not be spooled and are lost (%s)", sum(lost.values()),
                      ", ".join(f"{reason}: {n}" for reason, n in sorted(lost.items())))
        signals.close()
        heartbeat.remove()
        try:
            await asyncio.wait_for(app.aclose(), CLOSE_S)
        except TimeoutError:
            log.error("closing took longer than %.0f s: left to the end of the process", CLOSE_S)
        notifier.close()
        log.info("stopped after %.1f s", time.monotonic() - started)
