"""An interrupted ``collector backfill`` resumes where it stopped.

The command runs as users run it (a subprocess with a config file) against the Overkiz and
FRITZ!Box simulators on loopback, into the embedded store. The simulators answer slowly (their
latency fault) so that the test can wait until the state file shows the first series done,
then send SIGINT (Ctrl-C) or SIGKILL. Every interrupted and resumed run is compared with an
uninterrupted one against the same simulated house: the same points (series, times, values),
and no history window fetched twice except the one in flight when the process stopped.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest

from collector.app import App
from collector.backfill import (
    MAX_RETRY_AFTER_S,
    RETRIES,
    BackfillOutcome,
    Watermarks,
    run_backfill,
)
from collector.config import Config, SpoolConfig, StoreConfig
from collector.delivery import Deliverer
from collector.errors import TransientError
from collector.model import Reading
from collector.simulators.fritzbox import FritzboxSimulator
from collector.simulators.overkiz import MovableClock, OverkizSimulator
from collector.sources.base import HistorySink, Source
from collector.sources.overkiz.history import WINDOW_MS
from collector.sources.overkiz.readings import RULES
from collector.spool import Spool
from collector.stores.sqlite import SqliteStore

CMD = [sys.executable, "-m", "collector", "backfill"]
RAW = "GET /setup/devices/{deviceURL}/states/{name}/history/{from}/{to}"
OVERKIZ = "overkiz:house"
FRITZ = "fritzbox:home"
#: The simulated FRITZ!Box's frozen clock (2024-06-10 14:13:20 UTC).
FRITZ_NOW = 1718028800.0
#: Enough for a backfill against a slow simulator to reach a series or to end.
WAIT_S = 60.0

#: (measurement, tags, time in ns, value): one stored point.
Point = tuple[str, tuple[tuple[str, str], ...], int, float]


def stored_points(directory: Path) -> set[Point]:
    """Every point of the embedded store in ``directory`` (the collector's own metrics
    aside); the store keeps one point per series and time."""
    store = SqliteStore(directory / "store.sqlite3")
    try:
        return {(name, tuple(sorted(tags.items())), t, value)
                for name, _ in store.measurements() if name != "collector"
                for t, tags, value, _ in store.query(name, None, None, None)}
    finally:
        store.close()


def same_points(got: set[Point], want: set[Point]) -> None:
    """The same series at the same times with the same values; only the energy of the
    running day and month (the newest point of each such series) may have grown since, as
    the simulated meters go on counting."""
    assert {p[:3] for p in got} == {p[:3] for p in want}
    assert settled(got) == settled(want)


def settled(points: set[Point]) -> set[Point]:
    newest: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
    for name, tags, t, _ in points:
        if name == "energy_period_wh":
            newest[name, tags] = max(t, newest.get((name, tags), t))
    return {p for p in points if newest.get(p[:2]) != p[2]}


def marks(directory: Path, source: str) -> dict[str, datetime]:
    """The watermarks of ``source``; the state file must parse whenever it exists."""
    path = directory / "spool.sqlite3.backfill.json"
    if not path.exists():
        return {}
    data = json.loads(path.read_text())  # a torn file would raise here
    assert data["version"] == 2
    return {series: datetime.fromisoformat(at)
            for series, at in data["watermarks"].get(source, {}).items()}


def deliver_spool(directory: Path) -> None:
    """Hand what waits in the spool to the store, as the next run of the collector does."""

    async def go() -> None:
        spool = Spool(directory / "spool.sqlite3")
        store = SqliteStore(directory / "store.sqlite3")
        try:
            assert await Deliverer(spool, store).drain()
        finally:
            await store.aclose()
            spool.close()

    asyncio.run(go())


def start(directory: Path, config: str, *args: str) -> subprocess.Popen[str]:
    directory.mkdir(exist_ok=True)
    (directory / "collector.toml").write_text(
        f'[store]\nkind = "sqlite"\npath = "{directory / "store.sqlite3"}"\n'
        f'[spool]\npath = "{directory / "spool.sqlite3"}"\n{config}')
    env = {k: v for k, v in os.environ.items() if k != "COLLECTOR_CONFIG"}
    env["COLUMNS"] = "200"
    return subprocess.Popen([*CMD, "--config", str(directory / "collector.toml"), *args],
                            cwd=directory, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=WAIT_S)
    assert "Traceback" not in err, err
    return proc.returncode, out, err


def stop_after(proc: subprocess.Popen[str], directory: Path, source: str, series: int,
               sig: signal.Signals) -> dict[str, datetime]:
    """Send ``sig`` once the state file shows at least ``series`` series of ``source``
    done; return the watermarks seen then."""
    deadline = time.monotonic() + WAIT_S
    while len(seen := marks(directory, source)) < series:
        if proc.poll() is not None or time.monotonic() > deadline:
            out, err = proc.communicate()
            pytest.fail(f"the backfill ended before {series} series were done:\n{out}{err}")
        time.sleep(0.01)
    proc.send_signal(sig)
    return seen


def table_row(stdout: str, source: str) -> list[str]:
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.replace("\u2503", "\u2502").split("\u2502")]
        if source in cells:
            return cells[cells.index(source):-1]
    raise AssertionError(f"no row {source!r} in:\n{stdout}")


# ---- Overkiz: state history in windows of at most 3 days, per device and state -----------


@dataclass
class Reference:
    """An uninterrupted backfill of the simulated Overkiz account."""

    sim: OverkizSimulator
    config: str
    since: str
    points: set[Point]
    requests: Counter[str]
    marks: dict[str, datetime]


def requests_of(sim: OverkizSimulator, before: Counter[str]) -> Counter[str]:
    return sim.endpoint_requests - before


def raw_windows(sim: OverkizSimulator, before: Counter[str]) -> dict[str, list[tuple[int, int]]]:
    """The raw history windows asked since ``before`` (``sim.requests``), per series
    ("deviceURL state", as the watermarks name them): (from, to) in epoch ms."""
    out: dict[str, list[tuple[int, int]]] = {}
    for path, n in (sim.requests - before).items():
        parts = path.split("/")
        if len(parts) < 4 or parts[-3] != "history" or parts[-5] != "states":
            continue
        key = f"{unquote(parts[-6])} {unquote(parts[-4])}"
        out.setdefault(key, []).extend([(int(parts[-2]), int(parts[-1]))] * n)
    return {key: sorted(found) for key, found in out.items()}


def ms(moment: datetime | str) -> int:
    moment = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return round(moment.timestamp() * 1000)


@pytest.fixture(scope="module")
def overkiz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reference]:
    # The house records a history point every full hour: the simulated clock starts at the
    # last full hour, so every run of this module sees the same history.
    hour = time.time() // 3600 * 3600
    since = datetime.fromtimestamp(hour, UTC) - timedelta(days=5, minutes=-30)
    with OverkizSimulator(seed=11, clock=MovableClock(hour)) as sim:
        config = (f'[[overkiz]]\nname = "house"\nurl = "{sim.url}"\n'
                  f'username = "{sim.username}"\npassword = "{sim.password}"\n')
        directory = tmp_path_factory.mktemp("uninterrupted")
        before = sim.endpoint_requests.copy()
        code, out, err = finish(start(directory, config, "--since", since.isoformat()))
        assert code == 0, out + err
        yield Reference(sim, config, since.isoformat(), stored_points(directory),
                        requests_of(sim, before), marks(directory, OVERKIZ))


def series_points(reference: set[Point], done: dict[str, datetime]) -> set[Point]:
    """The points of ``reference`` that the windows below each series' watermark hold."""
    out = set()
    for key, until in done.items():
        url, _, state = key.partition(" ")
        rule = RULES.get(state)
        if rule is None:  # a meter's energy per day or month
            continue
        limit_ns = int(until.timestamp() * 1e9)
        for point in reference:
            name, tags, t, _ = point
            tag = dict(tags)
            if (name == rule.measurement and tag["device_id"] == url and t < limit_ns
                    and tag.get("kind") == rule.kind and tag.get("tariff") == rule.tariff):
                out.add(point)
    return out


def assert_resumed(asked: dict[str, list[tuple[int, int]]], done: dict[str, datetime],
                   reference: Reference) -> None:
    """A rerun asks every series from its watermark (--since for those without one) on, in
    windows that follow one another without a gap or an overlap."""
    states = {k for k in reference.marks if k.partition(" ")[2] in RULES}
    assert set(asked) == states
    for key, windows in asked.items():
        begin = ms(done[key]) if key in done else ms(reference.since)
        assert windows[0][0] == begin, key
        for (_, to), (after, _) in itertools.pairwise(windows):
            assert after == to + 1, key


def test_the_uninterrupted_reference_is_a_real_backfill(overkiz: Reference) -> None:
    states = [k for k in overkiz.marks if k.partition(" ")[2] in RULES]
    assert len(states) >= 10
    # 5 days in windows of at most 3 days: two windows per series, every one asked once
    assert overkiz.requests[RAW] == 2 * len(states)
    assert overkiz.requests["GET /setup"] == 1
    by_measurement = Counter(p[0] for p in overkiz.points)
    assert by_measurement["temperature_c"] >= 5 * 24
    assert by_measurement["energy_period_wh"] > 0
    assert overkiz.sim.violation_count == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])  # Ctrl-C, kill
def test_ctrl_c_stops_promptly_and_a_rerun_fetches_only_the_rest(
        overkiz: Reference, tmp_path: Path, sig: signal.Signals) -> None:
    sim = overkiz.sim
    before = sim.endpoint_requests.copy()
    sim.faults.latency_s = 0.05
    try:
        proc = start(tmp_path, overkiz.config, "--since", overkiz.since)
        seen = stop_after(proc, tmp_path, OVERKIZ, 3, sig)
        at_signal = sim.calls(RAW)
        code, out, err = finish(proc)
    finally:
        sim.faults.latency_s = 0.0
    assert code == 128 + sig, out + err  # 130 for SIGINT, 143 for SIGTERM
    # it stops at once: at most the request under way when the signal came is answered
    assert sim.calls(RAW) - at_signal <= 1
    assert "interrupted;" in err and "run `collector backfill` again" in err
    _, series, windows, points, result = table_row(out, OVERKIZ)
    assert result == "interrupted"
    done = marks(tmp_path, OVERKIZ)
    assert len(seen) <= len(done) == int(series)
    assert int(windows.split("/")[0]) < int(windows.split("/")[1])
    # what the interrupted run stored is in the store, exactly the windows its watermarks
    # cover, and the count it printed
    interrupted = stored_points(tmp_path)
    assert interrupted == series_points(overkiz.points, done)
    assert len(interrupted) == int(points) > 0
    first = requests_of(sim, before)

    before, paths = sim.endpoint_requests.copy(), sim.requests.copy()
    code, out, err = finish(start(tmp_path, overkiz.config, "--since", overkiz.since))
    assert code == 0, out + err
    resumed_series = table_row(out, OVERKIZ)[1]
    assert resumed_series.endswith(f"({len(done)} resumed)")
    second = requests_of(sim, before)
    assert_resumed(raw_windows(sim, paths), done, overkiz)
    # Only the window in flight at Ctrl-C is asked twice, and each series that was done
    # asks once for what the house recorded since; the setup comes from the cache.
    finished = sum(1 for at in done.values() if ms(at) > ms(overkiz.since) + WINDOW_MS + 1)
    assert overkiz.requests[RAW] <= first[RAW] + second[RAW]
    assert first[RAW] + second[RAW] <= overkiz.requests[RAW] + 1 + finished
    assert second["GET /setup"] == 0
    same_points(stored_points(tmp_path), overkiz.points)
    assert sim.violation_count == 0, sim.violations


def test_kill_9_loses_nothing_stored_and_never_tears_the_state(
        overkiz: Reference, tmp_path: Path) -> None:
    sim = overkiz.sim
    before = sim.endpoint_requests.copy()
    sim.faults.latency_s = 0.05
    kills = 0
    try:
        for series in (2, 7, 12):  # three runs killed at later and later points
            proc = start(tmp_path, overkiz.config, "--since", overkiz.since)
            stop_after(proc, tmp_path, OVERKIZ, series, signal.SIGKILL)
            assert proc.wait(timeout=WAIT_S) == -signal.SIGKILL
            kills += 1
            done = marks(tmp_path, OVERKIZ)  # parses: never torn
            assert len(done) >= series
            # every window a watermark covers was spooled before the watermark moved
            deliver_spool(tmp_path)
            assert series_points(overkiz.points, done) <= stored_points(tmp_path)
            assert settled(stored_points(tmp_path)) <= overkiz.points
    finally:
        sim.faults.latency_s = 0.0
    paths = sim.requests.copy()
    code, out, err = finish(start(tmp_path, overkiz.config, "--since", overkiz.since))
    assert code == 0, out + err
    assert_resumed(raw_windows(sim, paths), done, overkiz)
    requests = requests_of(sim, before)
    # per kill: the window in flight, and per series done then, what was recorded since
    finished = sum(1 for at in done.values() if ms(at) > ms(overkiz.since) + WINDOW_MS + 1)
    assert overkiz.requests[RAW] <= requests[RAW]
    assert requests[RAW] <= overkiz.requests[RAW] + kills * (1 + finished)
    assert requests["GET /setup"] == 1  # once, then from the cache of the first run
    same_points(stored_points(tmp_path), overkiz.points)
    assert Spool(tmp_path / "spool.sqlite3").pending == 0
    assert not list(tmp_path.glob(".*.tmp"))  # nothing a killed writer left stays behind
    assert sim.violation_count == 0, sim.violations


def test_a_refusal_for_rate_is_waited_out_and_resumed(
        overkiz: Reference, tmp_path: Path) -> None:
    sim = overkiz.sim
    before, paths = sim.endpoint_requests.copy(), sim.requests.copy()
    sim.faults.rate_limit = 8.0  # then 503 with Retry-After: 1
    try:
        code, out, err = finish(start(tmp_path, overkiz.config, "--since", overkiz.since))
    finally:
        sim.faults.rate_limit = None
    # every request arrives (sim.requests); those refused never reach the account
    refused = (sim.requests - paths).total() - requests_of(sim, before).total()
    assert code == 0, out + err
    assert refused > 0
    # each refusal was waited out: a request sent before Retry-After is refused again, and
    # every refusal costs one wait
    result = table_row(out, OVERKIZ)[-1]
    assert result == f"ok; waited {refused}x as the source asked"
    # every window served once: a refused request never reaches the house, and a series
    # done before a refusal is not asked again
    assert requests_of(sim, before)[RAW] == overkiz.requests[RAW]
    same_points(stored_points(tmp_path), overkiz.points)
    assert sim.violation_count == 0, sim.violations


# ---- FRITZ!Box: one statistics request per device; a series per device --------------------


def fritz_config(sim: FritzboxSimulator) -> str:
    return (f'[[fritzbox]]\nname = "home"\nurl = "{sim.url}"\ntr064_url = "{sim.tr064_url}"\n'
            f'username = "{sim.username}"\npassword = "{sim.password}"\n'
            'timezone = "Europe/Berlin"\n')


def test_fritzbox_ctrl_c_and_rerun_store_what_one_backfill_stores(tmp_path: Path) -> None:
    since = datetime.fromtimestamp(FRITZ_NOW - 86400, UTC).isoformat()
    with FritzboxSimulator(clock=lambda: FRITZ_NOW) as sim:
        config = fritz_config(sim)
        code, out, err = finish(start(tmp_path / "whole", config, "--since", since))
        assert code == 0, out + err
        reference = stored_points(tmp_path / "whole")
        devices = len(marks(tmp_path / "whole", FRITZ))
        asked = sim.commands["getbasicdevicestats"]
        assert asked == devices > 4

        sim.faults.latency_s = 0.3  # four devices at a time: the first four end together
        proc = start(tmp_path / "cut", config, "--since", since)
        stop_after(proc, tmp_path / "cut", FRITZ, 1, signal.SIGINT)
        code, out, err = finish(proc)
        sim.faults.latency_s = 0.0
        assert code == 130, out + err
        assert "interrupted;" in err
        done = marks(tmp_path / "cut", FRITZ)
        assert 1 <= len(done) < devices
        cut = stored_points(tmp_path / "cut")
        ids = {key.removeprefix("stats:") for key in done}
        assert cut == {p for p in reference if dict(p[1])["device_id"] in ids}

        code, out, err = finish(start(tmp_path / "cut", config, "--since", since))
        assert code == 0, out + err
        assert table_row(out, FRITZ)[1] == f"{devices} ({len(done)} resumed)"
    assert stored_points(tmp_path / "cut") == reference


# ---- the retry rule itself, in process ------------------------------------------------------


class Refusing(Source):
    """Two series in windows of an hour up to the present (the last one shorter), as a
    cloud's history; the request numbers in ``refuse`` are answered "too many requests"
    with ``retry_after``."""

    kind = "overkiz"

    def __init__(self, *, refuse: set[int], retry_after: float | None = 0.0,
                 hands_over_empty: bool = False) -> None:
        super().__init__("home", 60.0)
        self.refuse, self.retry_after = refuse, retry_after
        #: Like the FRITZ!Box: a series with nothing to ask is still handed over, empty,
        #: up to the present.
        self.hands_over_empty = hands_over_empty
        self.asked: list[tuple[str, datetime]] = []
        self.ends: list[datetime] = []

    async def poll(self) -> Sequence[Reading]:
        return ()

    async def history(self, since: datetime, sink: HistorySink) -> None:
        end = datetime.now(UTC)
        self.ends.append(end)
        plan: dict[str, list[tuple[datetime, datetime]]] = {}
        for series in ("a", "b"):
            at, plan[series] = sink.start(series), []
            while at < end:
                plan[series].append((at, min(at + HOUR, end)))
                at += HOUR
        sink.total(sum(len(w) for w in plan.values()))
        for series, windows in plan.items():
            if not windows and self.hands_over_empty:
                sink.put(series, [], until=end)
            for begin, until in windows:
                self.asked.append((series, begin))
                if len(self.asked) in self.refuse:
                    raise TransientError("HTTP 429", retry_after=self.retry_after)
                sink.put(series, [Reading("temperature_c", float(begin.minute), begin,
                                          "overkiz", "home", series, series.upper())],
                         until=until)


class Bars:
    """A ``Progress`` that keeps what a progress bar would show."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0

    def begin(self, source: str) -> None:
        pass

    def expect(self, source: str, windows: int) -> None:
        self.total += windows

    def advance(self, source: str, points: int) -> None:
        self.done += 1


def backfill_in_process(tmp_path: Path, source: Source, since: datetime,
                        progress: Bars | None = None) -> BackfillOutcome:
    config = Config(store=StoreConfig(path=tmp_path / "store.sqlite3"),
                    spool=SpoolConfig(path=tmp_path / "spool.sqlite3"))

    async def go() -> BackfillOutcome:
        app = App(config, sources=[source])
        try:
            (outcome,) = await run_backfill(app, since, progress=progress)
            return outcome
        finally:
            await app.aclose()

    return asyncio.run(go())


HOUR = timedelta(hours=1)


@pytest.mark.parametrize("hands_over_empty", [False, True])
def test_a_refused_source_goes_on_from_its_watermarks_and_asks_no_window_twice(
        tmp_path: Path, hands_over_empty: bool) -> None:
    since = datetime.now(UTC) - 2.5 * HOUR
    # refused at a's second window, then at b's first one (twice in a row)
    source = Refusing(refuse={2, 5, 6}, hands_over_empty=hands_over_empty)
    bars = Bars()
    outcome = backfill_in_process(tmp_path, source, since, bars)
    assert outcome.errors == [] and outcome.retries == 3
    assert source.asked == [
        ("a", since), ("a", since + HOUR),  # refused
        ("a", since + HOUR), ("a", since + 2 * HOUR), ("b", since),  # refused
        ("b", since),  # refused again; a, done up to the run's start, is not asked again
        ("b", since), ("b", since + HOUR), ("b", since + 2 * HOUR),
    ]
    empty = 2 if hands_over_empty else 0  # a, handed over empty in the last two attempts
    assert (outcome.windows, outcome.points) == (6 + empty, 6)
    assert (bars.done, bars.total) == (6 + empty, outcome.expected)  # not counted twice
    assert outcome.resumed == set()  # nothing came from an earlier run
    # a's watermark stays where its last window ended: what was recorded since is left to
    # the next run, whatever the source handed over for it after that
    marks = Watermarks(tmp_path / "spool.sqlite3.backfill.json")
    assert marks.get("overkiz:home", "a") == source.ends[1]
    assert marks.get("overkiz:home", "b") == source.ends[3]


@pytest.mark.parametrize(("retry_after", "refuse", "asked"), [
    (0.0, {1, 2, 3, 4, 5}, RETRIES + 1),  # RETRIES waits in a row without a stored window
    (None, {1}, 1),  # no Retry-After: no wait
    (MAX_RETRY_AFTER_S + 1, {1}, 1),  # too long to wait for: run again later
])
def test_refusals_are_waited_out_a_bounded_number_of_times(
        tmp_path: Path, retry_after: float | None, refuse: set[int], asked: int) -> None:
    source = Refusing(refuse=refuse, retry_after=retry_after)
    outcome = backfill_in_process(tmp_path, source, datetime.now(UTC) - 2.5 * HOUR)
    assert len(source.asked) == asked
    assert outcome.retries == asked - 1
    assert outcome.errors == ["TransientError: HTTP 429"]
    assert outcome.windows == 0


# ---- the state file shared by two processes -----------------------------------------------


def test_two_writers_keep_each_others_watermarks(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3.backfill.json"
    at = datetime(2026, 11, 20, tzinfo=UTC)
    # a writer killed between writing its temporary file and renaming it left this
    (tmp_path / f".{path.name}.4242.tmp").write_text('{"version": 2, "watermarks": {')
    backfill, daemon = Watermarks(path), Watermarks(path)  # both read the file at start
    backfill.set("overkiz:home", "a", at)
    daemon.set("overkiz:home", "b", at + HOUR)  # its copy has no "a"
    backfill.set("fritzbox:home", "stats:1", at + 2 * HOUR)  # its copy has no "b"
    again = Watermarks(path)
    assert [again.get("overkiz:home", "a"), again.get("overkiz:home", "b"),
            again.get("fritzbox:home", "stats:1")] == [at, at + HOUR, at + 2 * HOUR]
    assert (tmp_path / f".{path.name}.lock").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".{path.name}.lock", path.name]


def _set_many(path: Path, source: str, n: int) -> None:
    marks = Watermarks(path)
    at = datetime(2026, 11, 20, tzinfo=UTC)
    for i in range(n):
        marks.set(source, f"s{i}", at + i * HOUR)


def test_two_processes_writing_at_once_lose_no_watermark(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3.backfill.json"
    fork = multiprocessing.get_context("fork")
    writers = [fork.Process(target=_set_many, args=(path, source, 40))
               for source in ("overkiz:home", "fritzbox:home")]
    for w in writers:
        w.start()
    for w in writers:
        w.join(WAIT_S)
        assert w.exitcode == 0
    data = json.loads(path.read_text())
    assert {source: len(series) for source, series in data["watermarks"].items()} == {
        "overkiz:home": 40, "fritzbox:home": 40}
