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
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest

from collector.pipeline.delivery import Deliverer
from collector.pipeline.spool import Spool
from collector.simulators.fritzbox import FritzboxSimulator
from collector.simulators.overkiz import MovableClock, OverkizSimulator
from collector.sources.overkiz.readings import RULES
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
        parts = path.split("?", 1)[0].split("/")
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
    # 5 days of hourly values fit one page of ``limit`` values: one request per series
    assert overkiz.requests[RAW] == len(states)
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
    # Only the page in flight at Ctrl-C is asked twice, and each series that was done
    # asks once for what the house recorded since; the setup comes from the cache.
    finished = sum(1 for key in done if key.partition(" ")[2] in RULES)
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
    # per kill: the page in flight, and per series done then, what was recorded since
    finished = sum(1 for key in done if key.partition(" ")[2] in RULES)
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


def test_a_429_midway_is_waited_out_and_resumed(overkiz: Reference, tmp_path: Path) -> None:
    sim = overkiz.sim
    before, paths = sim.endpoint_requests.copy(), sim.requests.copy()
    sim.faults.latency_s = 0.05
    try:
        proc = start(tmp_path, overkiz.config, "--since", overkiz.since)
        stop_after(proc, tmp_path, OVERKIZ, 3, signal.SIGCONT)  # a signal that changes nothing
        # every request is answered 429 with a Retry-After counting down for 2 s
        sim.faults.limited_until = sim.clock() + 2.0
        code, out, err = finish(proc)
    finally:
        sim.faults.clear()
    refused = (sim.requests - paths).total() - requests_of(sim, before).total()
    assert code == 0, out + err
    # one refusal: the Retry-After (whole seconds, rounded up) reaches past the limit, and
    # no request is sent inside the announced wait
    assert refused == 1
    assert table_row(out, OVERKIZ)[-1] == f"ok; waited {refused}x as the source asked"
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
