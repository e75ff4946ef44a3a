"""Thinknx simulator -> collector -> real InfluxDB and the embedded store, value by value.

The simulator runs on a frozen clock, so every status it serves during the poll is known
beforehand; each is checked in the store with its schema unit (W from kW, Wh from kWh),
as a float, with the label of its state.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.config import (
    Config,
    InfluxConfig,
    SpoolConfig,
    StoreConfig,
    ThinknxConfig,
    parse_config,
)
from collector.pipeline.app import App
from collector.schema import STATE_BY_NAME
from collector.simulators.thinknx import ThinknxSimulator
from collector.simulators.thinknx_project import Kind
from collector.sources.thinknx.source import ThinknxSource
from collector.stores.sqlite import SqliteStore
from tests.influxd import Influxd
from tests.simulators.test_thinknx_sim import LACKING

# 2024-06-10 12:00:00 UTC: daytime, thermostats in comfort, the sun on the panels
START = 1718020800.0
#: "2 days 1 hour 3 min" and "23 days 4 hours 12 min" (minutes: the resolution of the text)
PROCESS_UPTIME_S = 2 * 86400 + 3600 + 3 * 60
SERVER_UPTIME_S = 23 * 86400 + 4 * 3600 + 12 * 60

# labels of the codes, as the document names them (spellings may differ in case and joins)
TEMP_MODE = {0: "standby", 1: "comfort", 2: "night|econom", 3: "frost|protection"}
HVAC_MODE = {0: "cool", 1: "heat", 2: "dry", 3: "fan", 4: "auto"}
FAN = {0: "auto", 1: "min|low", 2: "average|medium|mid", 3: "max|high"}
ON_OFF = {0: "off", 1: "on"}
CHRONO = {0: "disabled|off", 1: "enabled|on"}
#: analog quantity -> (measurement, factor from the device unit to the schema unit)
ANALOG = {
    "power": ("power_w", 1000.0),  # kW -> W
    "energy": ("energy_wh", 1000.0),  # kWh -> Wh
    "luminance": ("luminance_lx", 1.0),
    "temperature": ("temperature_c", 1.0),
    "humidity": ("humidity_pct", 1.0),
    "co2": ("co2_ppm", 1.0),
}


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Point:
    measurement: str
    tags: dict[str, str]
    value: float
    label: str | None


@dataclass
class Expected:
    """What one object must have produced: numbers per measurement and states."""

    numbers: dict[tuple[str, str | None], float] = field(default_factory=dict)  # by kind tag
    states: list[tuple[str, int, str]] = field(default_factory=list)  # name, code, label


@pytest.fixture
def sim() -> Iterator[ThinknxSimulator]:
    with ThinknxSimulator(clock=FakeClock(START)) as running:
        # a few manual changes so that both labels of a code occur
        with httpx.Client(base_url=running.url, timeout=10,
                          auth=httpx.DigestAuth(running.username, running.password)) as http:
            for controller, kind, cmd in (("power", Kind.LIGHT, "1"),
                                          ("hvacpower", Kind.HVAC, "1"),
                                          ("hvacfan", Kind.HVAC, "2")):
                guid = running.guids(kind)[0]
                answer = http.get(f"/api/V1/{controller}",
                                  params={"guid": guid, "cmd": cmd, "auth": "digest"})
                assert answer.status_code == 200, answer.text
        yield running


def expected(sim: ThinknxSimulator) -> dict[str, Expected]:
    """guid -> what the store must hold, computed from the simulator's own answers."""
    out: dict[str, Expected] = {}
    for obj in sim.objects:
        exp = out.setdefault(obj.guid, Expected())

        lacks = LACKING.get(obj.name, set())

        def value(controller: str, guid: str = obj.guid) -> float:
            return sim.status_value(guid, controller)

        def number(key: tuple[str, str | None], controller: str, exp: Expected = exp,
                   lacks: set[str] = lacks) -> None:
            if controller not in lacks:  # a capability the object lacks gives nothing
                exp.numbers[key] = value(controller)

        def state(controller: str, name: str, labels: dict[int, str],
                  exp: Expected = exp, lacks: set[str] = lacks) -> None:
            if controller not in lacks:
                code = int(value(controller))
                exp.states.append((name, code, labels[code]))

        if obj.kind is Kind.THERMOSTAT:
            number(("temperature_c", None), "actualtemp")
            number(("setpoint_c", "target"), "setpointstatus")
            state("tempmodestatus", "temp_mode", TEMP_MODE)
            state("chronoenstatus", "chrono", CHRONO)
        elif obj.kind is Kind.HVAC:
            number(("setpoint_c", "target"), "hvacsetpointstatus")
            state("hvacpowerstatus", "on_off", ON_OFF)
            state("hvacmodestatus", "hvac_mode", HVAC_MODE)
            state("hvacfanset", "fan_speed", FAN)
        elif obj.kind is Kind.LIGHT:
            state("powerstatus", "switch", ON_OFF)
        elif obj.kind is Kind.DIMMER:
            state("powerstatus", "switch", ON_OFF)
            number(("level_pct", "dimmer"), "powerlevelstatus")
        elif obj.kind is Kind.BLIND:
            number(("level_pct", "blind"), "heightlevelstatus")
            number(("level_pct", "slats"), "blindanglestatus")
        else:
            assert obj.quantity is not None
            measurement, factor = ANALOG[obj.quantity]
            exp.numbers[measurement, None] = value("getvalue") * factor
    return out


def check_points(points: list[Point], sim: ThinknxSimulator, failed: frozenset[str] = frozenset(),
                 ) -> None:
    """Every object's readings, value by value, and the server's; none for ``failed``."""
    ours = [p for p in points if p.tags.get("source") == "thinknx"]
    by_device: dict[str, list[Point]] = {}
    for p in ours:
        by_device.setdefault(p.tags["device_id"], []).append(p)
    objects = {o.guid: o for o in sim.objects}
    assert not failed & set(by_device)
    for guid, exp in expected(sim).items():
        if guid in failed:
            continue
        got = by_device.get(guid, [])
        obj = objects[guid]
        assert got, f"no readings for {obj.kind} {obj.name}"
        assert all(p.tags["device"] == obj.name for p in got), obj.name
        assert all(p.tags.get("room") == obj.room for p in got), obj.name
        assert all(p.tags.get("model") == str(obj.kind) for p in got), obj.name
        numbers = {(p.measurement, p.tags.get("kind")) for p in got if p.measurement != "state"}
        assert numbers == set(exp.numbers), obj.name  # nothing of a capability it lacks
        for (measurement, kind), number in exp.numbers.items():
            served = [p.value for p in got if p.measurement == measurement
                      and (kind is None or p.tags.get("kind") == kind)]
            # exactly one point, the value served, in the schema unit (W from kW, Wh from kWh)
            assert served == [pytest.approx(number, rel=1e-12, abs=1e-9)], (
                obj.name, measurement, kind, served)
        states = {p.tags.get("name"): p for p in got if p.measurement == "state"}
        assert set(states) == {name for name, _, _ in exp.states}, obj.name
        for name, code, pattern in exp.states:
            p = states[name]
            assert p.value == code, (obj.name, name)
            # the document's meaning of the code, and the schema table's label for it
            assert re.fullmatch(f"({pattern}).*", p.label or "", re.IGNORECASE), (obj.name, p)
            assert (code, p.label) in STATE_BY_NAME[name].codes, (obj.name, p)
    # the server itself: uptimes in seconds and the number of connected clients
    status = sim.server_status()
    uptimes = {p.tags.get("kind"): p.value for p in ours if p.measurement == "uptime_s"}
    assert uptimes == {"process": PROCESS_UPTIME_S, "server": SERVER_UPTIME_S}
    servers = {p.tags["device_id"] for p in ours if p.measurement == "uptime_s"}
    assert len(servers) == 1
    assert sim.cloud_key not in next(iter(servers))
    clients = [p.value for p in ours if p.measurement == "clients"]
    assert clients == [float(status["connected_clients"])]
    assert [p.value for p in ours if p.measurement == "pbx_users"] == [0.0]  # "" at START
    # "hh:mm:ss YYYY-MM-DD" on the server's clock in Rome, 12:54:48 on 2024-06-08 (+2):
    # 10:54:48 UTC
    assert status["config_time"] == "12:54:48 2024-06-08"
    config_time = [p.value for p in ours if p.measurement == "config_time_s"]
    assert config_time == [sim.configured] == [1717844088.0]


def influx_points(influxd: Influxd, db: str) -> list[Point]:
    rows = influxd.rows('SELECT * FROM /.*/ GROUP BY *', db)
    out = []
    for row in rows:
        tags = {k: v for k, v in row.items()
                if k not in ("time", "value", "label", "_measurement") and isinstance(v, str)
                and v != ""}
        out.append(Point(row["_measurement"], tags, row["value"], row.get("label")))
    return out


def test_once_writes_every_kind_into_influxdb_value_by_value(
    tmp_path: Path, sim: ThinknxSimulator, influxd: Influxd, influx_db: str
) -> None:
    challenged = sim.auth_failures  # the digest challenges of the fixture's own requests
    outcomes = once_into_influx(tmp_path, sim, influxd, influx_db)
    assert all(o.ok for o in outcomes), [o.errors for o in outcomes]
    check_points(influx_points(influxd, influx_db), sim)
    # `value` is a float field everywhere, whole numbers included (21, 0, 1)
    for row in influxd.rows("SHOW FIELD KEYS", influx_db):
        if row["fieldKey"] == "value":
            assert row["fieldType"] == "float", row
    # digest: a challenge per connection at most, never a refused answer per request
    assert sim.auth_failures - challenged <= 8


def test_failing_objects_cost_only_themselves(
    tmp_path: Path, sim: ThinknxSimulator, influxd: Influxd, influx_db: str
) -> None:
    gone, stuck = sim.guids(Kind.BLIND)[0], sim.guids(Kind.THERMOSTAT)[1]
    sim.fail_object(gone)  # 404 device not found
    sim.fail_object(stuck, "impossible to execute")  # 400
    sim.faults.fail_next(1, 500, path="/api/V1/getvalue")  # one analog object: 500
    outcomes = once_into_influx(tmp_path, sim, influxd, influx_db)
    (outcome,) = [o for o in outcomes if o.source.startswith("thinknx")]
    assert not outcome.ok
    errors = " ".join(outcome.errors)
    assert gone in errors and "Tapparella Soggiorno" in errors
    assert stuck in errors and "Termostato Camera" in errors
    failed_analog = {g for g in sim.guids(Kind.ANALOG) if g in errors}
    assert len(failed_analog) <= 1  # none if the client retried the 500
    check_points(influx_points(influxd, influx_db), sim,
                 failed=frozenset({gone, stuck, *failed_analog}))


def test_a_thermostat_without_a_sensor_stores_its_setpoint_and_mode_on_every_poll(
    tmp_path: Path, influxd: Influxd, influx_db: str
) -> None:
    clock = FakeClock(START)
    stored: list[dict[str, list[tuple[float, str | None, str | None]]]] = []
    results: list[bool] = []
    asked: list[int] = []  # actualtemp requests per poll, of every thermostat
    with ThinknxSimulator(clock=clock) as sim:
        guid = next(o.guid for o in sim.objects if o.name == "Termostato Ingresso")
        assert sim.project.by_guid[guid].kind is Kind.THERMOSTAT

        def of(measurement: str) -> list[tuple[float, str | None, str | None]]:
            rows = influxd.rows(f"SELECT * FROM {measurement} WHERE device_id = '{guid}'",
                                influx_db)
            return [(row["value"], row.get("label"), row.get("name")) for row in rows]

        def between(outcomes: list[Any]) -> None:
            (outcome,) = [o for o in outcomes if o.source.startswith("thinknx")]
            results.append(outcome.ok)
            stored.append({m: of(m) for m in ("setpoint_c", "state", "temperature_c")})
            # polls within one second share their timestamp: each poll is looked at alone
            influxd.query(f"DELETE WHERE device_id = '{guid}'", influx_db)
            clock.now += 60

        polls_into_influx(tmp_path, sim, influxd, influx_db, polls=3, between=between,
                          counted="actualtemp", counts=asked)
    assert results == [True, True, True]
    # every poll: the comfort setpoint (20.0 °C) and the mode; no temperature, no chrono
    assert stored == [{"setpoint_c": [(20.0, None, None)],
                       "state": [(1.0, "comfort", "temp_mode")],
                       "temperature_c": []}] * 3
    # the three thermostats with a sensor every time, this one only at the first poll
    assert asked == [4, 3, 3]


def test_italian_server_and_the_cloud_form_into_influxdb(
    tmp_path: Path, influxd: Influxd, influx_db: str
) -> None:
    """Uptimes in "X giorni X ore X min" (singulars: "1 ora") through the cloud path."""
    with ThinknxSimulator(clock=FakeClock(START), language="it") as sim:
        assert sim.server_status()["process_uptime"] == "2 giorni 1 ora 3 min"
        outcomes = once_into_influx(tmp_path, sim, influxd, influx_db, cloud=True)
        assert all(o.ok for o in outcomes), [o.errors for o in outcomes]
        check_points(influx_points(influxd, influx_db), sim)
        assert sim.auth_failures == 0
        assert sum(sim.served.values()) >= len(sim.objects)


def once_into_influx(tmp_path: Path, sim: ThinknxSimulator, influxd: Influxd,
                     db: str, *, cloud: bool = False) -> list[Any]:
    return polls_into_influx(tmp_path, sim, influxd, db, cloud=cloud)


def polls_into_influx(tmp_path: Path, sim: ThinknxSimulator, influxd: Influxd, db: str, *,
                      cloud: bool = False, polls: int = 1,
                      between: Callable[[list[Any]], None] | None = None,
                      counted: str | None = None, counts: list[int] | None = None
                      ) -> list[Any]:
    """``polls`` runs of ``collector once`` by one App; the outcomes of the last.
    ``between`` gets each run's outcomes; ``counts`` the requests of ``counted`` per run."""
    tc = ThinknxConfig.model_validate(sim.config_dict(name="villa", cloud=cloud))
    config = Config(
        store=StoreConfig(kind="influxdb"),
        influxdb=InfluxConfig(url=influxd.url, api="v1", database=db),
        spool=SpoolConfig(path=tmp_path / "spool.sqlite3"),
        thinknx=[tc],
    )
    app = App(config, sources=[ThinknxSource(tc)])

    async def go() -> list[Any]:
        outcomes: list[Any] = []
        try:
            for _ in range(polls):
                before = sim.served[counted] if counted else 0
                outcomes = list(await app.once())
                assert app.spool.pending == 0  # whatever was collected is stored
                if counted and counts is not None:
                    counts.append(sim.served[counted] - before)
                if between is not None:
                    between(outcomes)
            return outcomes
        finally:
            await app.aclose()

    return asyncio.run(go())


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLLECTOR_CONFIG"}
    return subprocess.run([sys.executable, "-m", "collector", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def _config_file(tmp_path: Path, sim: ThinknxSimulator, auth: str) -> Path:
    path = tmp_path / "collector.toml"
    path.write_text(
        f'[store]\nkind = "sqlite"\npath = "{tmp_path / "store.sqlite3"}"\n\n'
        f'[spool]\npath = "{tmp_path / "spool.sqlite3"}"\n\n'
        + sim.config_snippet(name="villa", auth=auth, cloud=auth == "cloud"),
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("auth", ["digest", "basic", "params", "cloud"])
def test_printed_snippet_collects_into_the_embedded_store(
    tmp_path: Path, sim: ThinknxSimulator, auth: str
) -> None:
    path = _config_file(tmp_path, sim, auth)
    result = _cli(["once", "--config", str(path)], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sim.password not in result.stdout + result.stderr
    assert sim.cloud_key not in result.stdout + result.stderr
    store = SqliteStore(tmp_path / "store.sqlite3")
    try:
        points = [Point(p.measurement, p.tags, p.value, p.label) for p in store.latest()]
    finally:
        store.close()
    check_points(points, sim)


def test_printed_snippet_passes_check(tmp_path: Path, sim: ThinknxSimulator) -> None:
    path = _config_file(tmp_path, sim, "digest")
    config = parse_config(path.read_text(encoding="utf-8"), path, env={})
    assert [o.guid for o in config.thinknx[0].objects] == sim.guids()
    result = _cli(["check", "--config", str(path)], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "thinknx" in result.stdout
    assert sim.password not in result.stdout + result.stderr
    # and a wrong password is a failed check, without the password in it
    wrong = path.read_text(encoding="utf-8").replace(sim.password, "not the password")
    path.write_text(wrong, encoding="utf-8")
    failed = _cli(["check", "--config", str(path)], tmp_path)
    assert failed.returncode != 0
    assert "not the password" not in failed.stdout + failed.stderr


def test_collector_simulate_prints_a_config_that_works_as_printed(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COLLECTOR_CONFIG"}
    proc = subprocess.Popen([sys.executable, "-m", "collector", "simulate", "thinknx"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        printed = []
        for line in proc.stdout:
            printed.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        text = "".join(printed)
        # everything from the section header on, the commented cloud form included
        snippet = text[text.index("[[thinknx]]"):text.index("Press Ctrl-C")]
        path = tmp_path / "collector.toml"
        path.write_text(f'[store]\nkind = "sqlite"\npath = "{tmp_path / "store.sqlite3"}"\n'
                        f'[spool]\npath = "{tmp_path / "spool.sqlite3"}"\n\n{snippet}',
                        encoding="utf-8")
        guids = [o.guid for o in parse_config(snippet, path, env={}).thinknx[0].objects]
        result = _cli(["once", "--config", str(path)], tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode == 0
    store = SqliteStore(tmp_path / "store.sqlite3")
    try:
        devices = {p.tags["device_id"] for p in store.latest() if p.tags["source"] == "thinknx"}
        measurements = {p.measurement for p in store.latest() if p.tags["source"] == "thinknx"}
    finally:
        store.close()
    assert set(guids) <= devices
    assert len(guids) >= 12
    assert {"temperature_c", "setpoint_c", "state", "level_pct", "power_w", "energy_wh",
            "luminance_lx", "uptime_s", "clients"} <= measurements
