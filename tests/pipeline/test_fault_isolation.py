"""Fault isolation: one daemon, the three simulators, one faulty source at a time.

A single ``collector run`` (in-process, stopped through its stop event) polls a FRITZ!Box,
a Thinknx server and an Overkiz account on short intervals into the embedded store. One
after the other, each fault kind is applied to one source for a few of its polls and then
cleared: a hang (an answer later than the source's request timeout), HTTP 500, a garbage
body, 429 with a Retry-After that counts down (and says so in its text) and sessions that
end before they can be used. The run is recorded once (module fixture); each test then
looks at one fault of one source in the store and the log:

* the other sources' polls stay on schedule (every gap between their runs at most the
  interval plus a generous tolerance, none missing) and succeed;
* the faulty source's runs during the fault end as counted errors in the ``collector``
  measurement (``metric`` = ``errors`` > 0), its runs before and after have 0;
* the fault is logged once when it starts and once when it ends, even where its text
  changes from poll to poll;
* the daemon keeps running and the faulty source's readings come back.

The times compared are the ``collector`` points of every run (the end of the run, to the
millisecond). A refused session starts the clients' credential back-off (a minute and
more, collector/sources/backoff.py); the FRITZ!Box and Thinknx sources are handed a clock
the test moves past it once the fault is cleared, as a user would wait it out.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from collector.config import (
    Config,
    FritzboxConfig,
    OverkizConfig,
    SpoolConfig,
    StoreConfig,
    ThinknxConfig,
)
from collector.errors import AuthError, PartialFailure, TransientError
from collector.lineprotocol import parse_line
from collector.model import Reading
from collector.pipeline.app import App, JobOutcome
from collector.pipeline.daemon import InFlight, run
from collector.pipeline.job_errors import error_kind, error_kinds
from collector.simulators._http import BaseSimulator
from collector.simulators.fritzbox import FritzboxSimulator
from collector.simulators.overkiz import OverkizSimulator
from collector.simulators.thinknx import ThinknxSimulator
from collector.sources.backoff import AUTH_BACKOFF_MAX_S
from collector.sources.base import Source, SourceJob
from collector.sources.fritzbox.source import FritzboxSource
from collector.sources.overkiz.source import OverkizSource
from collector.sources.thinknx.source import ThinknxSource

#: The recording (about 2.5 min) is made in the setup of the first test that needs it.
pytestmark = pytest.mark.timeout(600)

#: Poll interval per source (s). A Thinknx poll under a hang takes two timeouts (the server
#: status first, then the objects), so it gets a longer interval to stay idle between runs.
INTERVAL_S = {"fritzbox": 2.0, "thinknx": 3.0, "overkiz": 2.0}
TIMEOUT_S = 1.0
#: The hang: every answer this late, well past the request timeout.
HANG_S = 2.5
#: A gap between two runs of a job may exceed its interval by this much (a loaded machine).
TOLERANCE_S = 1.5
#: How many runs of the faulty source's jobs see the fault.
FAULT_RUNS = 2
#: How long a source may take to work again after its fault is cleared.
RECOVERY_S = 30.0
SOURCES = ("fritzbox", "thinknx", "overkiz")
KINDS = ("hang", "http500", "garbage", "rate_limited", "session")
#: The jobs looked at per source (the FRITZ!Box statistics run once an hour).
JOBS = {"fritzbox": ("poll",), "thinknx": ("poll",), "overkiz": ("events", "states", "periods")}
SITE = {"fritzbox": "fb", "thinknx": "knx", "overkiz": "tahoma"}
#: The jobs that store readings on every run (the event listener only when something changed).
READINGS_EVERY_RUN = ("poll", "states", "periods")
#: Failures that follow a fault once it is cleared, each a state of its own: the event
#: listener ended with the session it belonged to and is registered anew.
AFTERMATH = {("session", "overkiz:tahoma:events"): "OverkizListenerLost"}


def job_keys(source: str) -> list[str]:
    return [f"{source}:{SITE[source]}:{job}" for job in JOBS[source]]


class SkipClock:
    """A monotonic clock the test can move on (past a credential back-off)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


@dataclass
class Phase:
    kind: str
    source: str
    start: float = 0.0  # the fault applied (wall clock, s)
    cleared: float = 0.0
    recovered: float | None = None  # every job of the source succeeded again
    end: float = 0.0
    daemon_alive: bool = False


@dataclass
class Recording:
    phases: dict[tuple[str, str], Phase]
    #: job key -> [(end of run, errors, points, error text)]
    runs: dict[str, list[tuple[float, float, float, str | None]]]
    #: (time, level, message) of every collector.pipeline.app record
    log: list[tuple[float, int, str]]
    store: Path
    begun: float
    finished: float = field(default=0.0)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[float, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.created, record.levelno, record.getMessage()))


def _apply(kind: str, sim: BaseSimulator) -> None:
    faults = sim.faults
    if kind == "hang":
        faults.latency_s = HANG_S
    elif kind == "http500":
        faults.fail_next(10**6, 500)
    elif kind == "garbage":
        faults.malformed_next(10**6)
    elif kind == "rate_limited":
        # longer than any client waits inline (Thinknx: 30 s): each poll fails with it
        faults.limited_until = sim._servers[0].clock() + 60.0
    elif kind == "session":
        faults.end_sessions = True
    else:  # pragma: no cover
        raise AssertionError(kind)


async def _until(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def _snapshot(app: App, keys: list[str]) -> dict[str, JobOutcome | None]:
    return {k: app.outcomes.get(k) for k in keys}


async def _next_runs(app: App, keys: list[str], *, ok: bool = False,
                     timeout_s: float = RECOVERY_S) -> bool:
    """Until every job of ``keys`` ended a new run (``ok``: a successful one), all of them
    of the same tick: right after, none of them is running."""
    before = _snapshot(app, keys)
    ended: dict[str, tuple[JobOutcome | None, float]] = {k: (before[k], 0.0) for k in keys}

    def done() -> bool:
        now = time.monotonic()
        for k, outcome in _snapshot(app, keys).items():
            if outcome is not ended[k][0]:
                ended[k] = (outcome, now)
        for outcome, _ in ended.values():
            if outcome is None or any(outcome is b for b in before.values()) or (
                    ok and not outcome.ok):
                return False
        times = [t for _, t in ended.values()]
        return max(times) - min(times) < 0.5

    return await _until(done, timeout_s)


async def _phase(app: App, sim: BaseSimulator, phase: Phase, clocks: list[SkipClock],
                 daemon: asyncio.Task[None]) -> None:
    keys = job_keys(phase.source)
    # start and end the fault right after a run of the source: between its runs, so
    # that no run sees half a fault
    await _next_runs(app, keys, ok=True)
    phase.start = time.time()
    _apply(phase.kind, sim)
    for _ in range(FAULT_RUNS):
        await _next_runs(app, keys)
    phase.cleared = time.time()
    sim.faults.clear()
    for clock in clocks:  # what a user does after refused credentials: wait
        clock.offset += AUTH_BACKOFF_MAX_S + 60.0
    if await _next_runs(app, keys, ok=True):
        phase.recovered = time.time()
        await _next_runs(app, keys)  # one more run after it works again
    phase.end = time.time()
    phase.daemon_alive = not daemon.done()


def _config(tmp: Path, fritz: FritzboxSimulator, knx: ThinknxSimulator,
            overkiz: OverkizSimulator) -> Config:
    return Config(
        store=StoreConfig(kind="sqlite", path=tmp / "collector.sqlite3"),
        spool=SpoolConfig(path=tmp / "spool.sqlite3", flush_interval=0.5),
        fritzbox=[FritzboxConfig(
            name=SITE["fritzbox"], url=fritz.url, username=fritz.username,
            password=SecretStr(fritz.password), interval=INTERVAL_S["fritzbox"],
            timeout=TIMEOUT_S, stats_interval=3600.0, voip=False)],
        thinknx=[ThinknxConfig.model_validate(
            knx.config_dict(name=SITE["thinknx"])
            | {"interval": INTERVAL_S["thinknx"], "timeout": TIMEOUT_S})],
        overkiz=[OverkizConfig(
            name=SITE["overkiz"], url=overkiz.url, username=overkiz.username,
            password=SecretStr(overkiz.password), interval=INTERVAL_S["overkiz"],
            events_interval=INTERVAL_S["overkiz"], timeout=TIMEOUT_S, heal_days=0)],
    )


def _runs(store: Path) -> dict[str, list[tuple[float, float, float, str | None]]]:
    db = sqlite3.connect(store)
    try:
        rows = db.execute(
            "SELECT time_ns, json_extract(tags, '$.device'), json_extract(tags, '$.metric'), "
            "value, label FROM points WHERE measurement = 'collector' ORDER BY time_ns"
        ).fetchall()
    finally:
        db.close()
    by_run: dict[tuple[str, int], dict[str, tuple[float, str | None]]] = {}
    for time_ns, device, metric, value, label in rows:
        by_run.setdefault((device, time_ns), {})[metric] = (value, label)
    runs: dict[str, list[tuple[float, float, float, str | None]]] = {}
    for (device, time_ns), metrics in sorted(by_run.items(), key=lambda kv: kv[0][1]):
        if "errors" in metrics:
            errors, text = metrics["errors"]
            runs.setdefault(device, []).append(
                (time_ns / 1e9, errors, metrics.get("points", (0.0, None))[0], text))
    return runs


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recording]:
    tmp = tmp_path_factory.mktemp("faults")
    handler = _Records()
    app_log = logging.getLogger("collector.pipeline.app")
    level = app_log.level
    app_log.addHandler(handler)
    app_log.setLevel(logging.DEBUG)
    fritz_clock, knx_clock = SkipClock(), SkipClock()
    try:
        with FritzboxSimulator(devices=4) as fritz, ThinknxSimulator(count=4) as knx, \
                OverkizSimulator() as overkiz:
            sims: dict[str, BaseSimulator] = {"fritzbox": fritz, "thinknx": knx,
                                              "overkiz": overkiz}
            config = _config(tmp, fritz, knx, overkiz)
            app = App(config, sources=[
                FritzboxSource(config.fritzbox[0], clock=fritz_clock),
                ThinknxSource(config.thinknx[0], clock=knx_clock),
                OverkizSource(config.overkiz[0], state_dir=tmp),
            ])
            phases = {(k, s): Phase(k, s) for k in KINDS for s in SOURCES}
            begun = time.time()

            async def go() -> None:
                stop = asyncio.Event()
                daemon = asyncio.create_task(run(app, stop))
                every = [k for s in SOURCES for k in job_keys(s)]
                assert await _next_runs(app, every, ok=True), app.outcomes
                for phase in phases.values():
                    await _phase(app, sims[phase.source], phase, [fritz_clock, knx_clock],
                                 daemon)
                stop.set()
                await daemon

            asyncio.run(go())
            yield Recording(phases, _runs(config.store.path), handler.records,
                            config.store.path, begun, time.time())
    finally:
        app_log.removeHandler(handler)
        app_log.setLevel(level)


CASES = [pytest.param(k, s, id=f"{k}-{s}") for k in KINDS for s in SOURCES]


def _in(runs: list[tuple[float, float, float, str | None]], start: float, end: float
        ) -> list[tuple[float, float, float, str | None]]:
    return [r for r in runs if start < r[0] <= end]


@pytest.mark.parametrize(("kind", "source"), CASES)
def test_the_other_sources_stay_on_schedule(recording: Recording, kind: str,
                                            source: str) -> None:
    phase = recording.phases[(kind, source)]
    for other in SOURCES:
        if other == source:
            continue
        interval = INTERVAL_S[other]
        for key in job_keys(other):
            # the last run before the fault, every run during it, the first one after
            runs = recording.runs[key]
            window = _in(runs, phase.start - interval - TOLERANCE_S,
                         phase.cleared + interval + TOLERANCE_S)
            times = [t for t, _, _, _ in window]
            assert times, key
            assert times[0] <= phase.start and times[-1] >= phase.cleared, (key, times)
            gaps = [b - a for a, b in pairwise(times)]
            assert max(gaps) <= interval + TOLERANCE_S, (key, gaps)
            assert min(gaps) >= interval - TOLERANCE_S, (key, gaps)  # no run twice
            assert all(errors == 0 for _, errors, _, _ in window), (key, window)
            if key.endswith(READINGS_EVERY_RUN):
                assert all(points > 0 for _, _, points, _ in window), (key, window)


@pytest.mark.parametrize(("kind", "source"), CASES)
def test_the_faulty_source_counts_errors_only_while_the_fault_lasts(
        recording: Recording, kind: str, source: str) -> None:
    phase = recording.phases[(kind, source)]
    assert phase.recovered is not None, "the source did not work again"
    interval = INTERVAL_S[source]
    for key in job_keys(source):
        runs = recording.runs[key]
        before = _in(runs, phase.start - 2 * interval - TOLERANCE_S, phase.start)
        during = _in(runs, phase.start, phase.cleared)
        after = _in(runs, phase.recovered - 0.5, phase.end)
        assert before and len(during) >= FAULT_RUNS and after, key
        assert [e for _, e, _, _ in before] == [0.0] * len(before), (key, before)
        assert all(e > 0 for _, e, _, _ in during), (key, during)
        assert all(text for _, _, _, text in during), (key, during)  # the error text
        assert [e for _, e, _, _ in after] == [0.0] * len(after), (key, after)
        if key.endswith(READINGS_EVERY_RUN):
            assert all(points > 0 for _, _, points, _ in after), (key, after)
        assert all(text is None for _, _, _, text in before + after)


@pytest.mark.parametrize(("kind", "source"), CASES)
def test_a_fault_is_logged_once_when_it_starts_and_once_when_it_ends(
        recording: Recording, kind: str, source: str) -> None:
    phase = recording.phases[(kind, source)]
    assert phase.recovered is not None
    in_phase = [r for r in recording.log if phase.start <= r[0] <= phase.end]
    for key in job_keys(source):
        warnings = [m for _, level, m in in_phase
                    if level == logging.WARNING and m.startswith(f"{key} ")]
        failed = [m for t, level, m in in_phase if level == logging.WARNING
                  and m.startswith(f"{key} failed: ") and t <= phase.cleared]
        again = [m for m in warnings if m == f"{key} works again"]
        aftermath = AFTERMATH.get((kind, key))
        later = [m for m in warnings[1:] if m != again[0]] if again else []
        assert len(failed) == 1, warnings
        assert warnings[0] == failed[0] and warnings[-1] == f"{key} works again", warnings
        assert len(again) == 1, warnings
        assert all(aftermath and aftermath in m for m in later), warnings
        # every failed run during the fault was of that kind; later texts at DEBUG at most
        during = [text for t, e, _, text in _in(recording.runs[key], phase.start,
                                                 phase.cleared) if e]
        assert len({error_kinds([text or ""]) for text in during}) == 1, during
    for other in SOURCES:
        if other != source:
            for key in job_keys(other):
                assert not [m for _, level, m in in_phase
                            if level >= logging.WARNING and m.startswith(f"{key} ")]


def test_a_retry_after_counting_down_is_no_new_failure(recording: Recording) -> None:
    """Overkiz words the 429 with the wait: the texts differ from poll to poll, the warning
    is logged once, the changed texts at DEBUG."""
    phase = recording.phases[("rate_limited", "overkiz")]
    key = job_keys("overkiz")[0]
    texts = {text for t, e, _, text in _in(recording.runs[key], phase.start, phase.cleared)}
    assert len(texts) >= 2, texts
    assert all(text and "try again in" in text for text in texts)
    debug = [m for t, level, m in recording.log
             if level == logging.DEBUG and phase.start <= t <= phase.cleared + 1
             and m.startswith(f"{key} still failing: ")]
    assert debug


@pytest.mark.parametrize(("kind", "source"), CASES)
def test_the_daemon_keeps_running_and_the_readings_come_back(
        recording: Recording, kind: str, source: str) -> None:
    phase = recording.phases[(kind, source)]
    assert phase.daemon_alive
    assert phase.recovered is not None
    db = sqlite3.connect(recording.store)
    try:
        (count,) = db.execute(
            "SELECT count(*) FROM points WHERE measurement != 'collector' AND time_ns > ? "
            "AND time_ns <= ? AND json_extract(tags, '$.source') = ?",
            (int((phase.cleared - 1) * 1e9), int(phase.end * 1e9), source)).fetchone()
    finally:
        db.close()
    assert count > 0


# --- once per state change, whatever the numbers in the text -----------------------------------


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.floats(0, 1e4), st.floats(0, 1e4))
def test_numbers_and_times_in_a_text_are_not_its_kind(a: int, b: int, x: float,
                                                      y: float) -> None:
    def text(n: int, wait: float) -> str:
        return (f"OverkizRateLimited: next call allowed in {wait:.1f} s (attempt {n}, "
                f"2026-11-29T08:{n % 60:02d}:00Z); ain=08761 0000434, io://1234-5678/12#1 "
                "(HTTP 429)")

    assert error_kind(text(a, x)) == error_kind(text(b, y))
    assert "ain=08761 0000434" in error_kind(text(a, x))
    assert "io://1234-5678/12#1" in error_kind(text(a, x))
    assert "(HTTP 429)" in error_kind(text(a, x))


def test_what_failed_is_part_of_the_kind() -> None:
    assert error_kind("TransientError: ain=08761 0000434: HTTP 500") != error_kind(
        "TransientError: ain=08761 0000435: HTTP 500")
    assert error_kind("x: the box is busy (HTTP 503)") != error_kind("x: (HTTP 500)")
    assert error_kind("TransientError: x") != error_kind("ParseError: x")
    assert error_kinds(["b: 3 s", "a", "b: 4 s"]) == ("a", "b: #")


class Scripted(Source):
    """A source whose runs end as the test says: an exception, or readings."""

    kind = "thinknx"

    def __init__(self, script: list[Exception | None]) -> None:
        super().__init__("villa", 1.0)
        self.script = script

    async def run(self) -> Sequence[Reading]:
        step = self.script.pop(0)
        if step is not None:
            raise step
        return [Reading("power_w", 5.0, datetime.now(UTC), "thinknx", "villa", "g1", "Plug")]

    def jobs(self) -> Sequence[SourceJob]:
        return (SourceJob("poll", 1.0, self.run),)


def test_a_failure_is_logged_once_and_its_end_once(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    script: list[Exception | None] = [
        None,
        TransientError("rate limited, try again in 59 s"),
        TransientError("rate limited, try again in 57 s"),
        TransientError("rate limited, try again in 55 s"),
        AuthError("refused (HTTP 401)"),  # another kind: a new state
        PartialFailure([], ["object:g1: TransientError: timed out after 1.0 s"]),
        PartialFailure([], ["object:g1: TransientError: timed out after 1.5 s"]),
        None,
        None,
    ]
    source = Scripted(script)
    config = Config(store=StoreConfig(kind="sqlite", path=tmp_path / "store.sqlite3"),
                    spool=SpoolConfig(path=tmp_path / "spool.sqlite3"))

    async def go() -> list[str]:
        app = App(config, sources=[source])
        try:
            (job,) = source.jobs()
            for _ in range(len(script)):
                await app.run_job(source, job)
            return app.spool.lines()
        finally:
            await app.aclose()

    with caplog.at_level(logging.DEBUG, logger="collector.pipeline.app"):
        lines = asyncio.run(go())
    logged = [(r.levelname, r.getMessage()) for r in caplog.records
              if r.name == "collector.pipeline.app"]
    key = "thinknx:villa:poll"
    assert logged == [
        ("WARNING", f"{key} failed: TransientError: rate limited, try again in 59 s"),
        ("DEBUG", f"{key} still failing: TransientError: rate limited, try again in 57 s"),
        ("DEBUG", f"{key} still failing: TransientError: rate limited, try again in 55 s"),
        ("WARNING", f"{key} failed: AuthError: refused (HTTP 401)"),
        ("WARNING", f"{key} failed: object:g1: TransientError: timed out after 1.0 s"),
        ("DEBUG", f"{key} still failing: object:g1: TransientError: timed out after 1.5 s"),
        ("WARNING", f"{key} works again"),
    ]
    # each run's errors point: its count, and the text of a failed run as its label
    errors = [parse_line(line) for line in lines if ",metric=errors" in line]
    assert [(p.field("value"), p.field("label")) for p in errors] == [
        (0.0, None),
        (1.0, "TransientError: rate limited, try again in 59 s"),
        (1.0, "TransientError: rate limited, try again in 57 s"),
        (1.0, "TransientError: rate limited, try again in 55 s"),
        (1.0, "AuthError: refused (HTTP 401)"),
        (1.0, "object:g1: TransientError: timed out after 1.0 s"),
        (1.0, "object:g1: TransientError: timed out after 1.5 s"),
        (0.0, None),
        (0.0, None),
    ]
    times = [p.time_ns for p in errors]
    assert times == sorted(times) and all(t % 1_000_000 == 0 for t in times)  # to the ms


def test_a_run_handed_over_once_shutdown_began_does_not_start(tmp_path: Path) -> None:
    """The scheduler may hand over a run just before it is paused; once shutdown waits for
    the running jobs, such a run must not start (it would outlive the spool)."""
    source = Scripted([None, None])
    config = Config(store=StoreConfig(kind="sqlite", path=tmp_path / "store.sqlite3"),
                    spool=SpoolConfig(path=tmp_path / "spool.sqlite3"))

    async def go() -> dict[str, JobOutcome]:
        app = App(config, sources=[source])
        jobs = InFlight()
        (job,) = source.jobs()
        try:
            await jobs.run(app, source, job)  # before shutdown: runs
            assert await jobs.stop(1.0) == []
            await jobs.run(app, source, job)  # after: returns at once
            await asyncio.sleep(0.05)
            return dict(app.outcomes)
        finally:
            await app.aclose()

    outcomes = asyncio.run(go())
    assert list(outcomes) == ["thinknx:villa:poll"] and outcomes["thinknx:villa:poll"].ok
    assert source.script == [None]  # the second run never started
