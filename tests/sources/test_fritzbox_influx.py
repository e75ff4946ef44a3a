"""FRITZ!Box simulator -> collector -> real InfluxDB: every quantity, unit and timestamp."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from collector.config import Config, FritzboxConfig, InfluxConfig, SpoolConfig, StoreConfig
from collector.pipeline.app import App
from collector.simulators.fritzbox import FritzboxSimulator
from collector.sources.fritzbox.source import FritzboxSource
from tests.influxd import Influxd

# 2024-06-10 14:13:20 UTC: on the 10 s and 900 s grids
START = 1718028800.0


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[FritzboxSimulator]:
    with FritzboxSimulator(clock=clock) as running:
        yield running


def _app(tmp_path: Path, sim: FritzboxSimulator, influxd: Influxd, db: str) -> App:
    fc = FritzboxConfig(name="home", url=sim.url, tr064_url=sim.tr064_url,
                        username=sim.username, password=SecretStr(sim.password),
                        timezone="Europe/Berlin")
    config = Config(
        store=StoreConfig(kind="influxdb"),
        influxdb=InfluxConfig(url=influxd.url, api="v1", database=db),
        spool=SpoolConfig(path=tmp_path / "spool.sqlite3"),
        fritzbox=[fc],
    )
    return App(config, sources=[FritzboxSource(fc)])


def _once(app: App) -> None:
    async def go() -> None:
        try:
            outcomes = await app.once()
            assert all(o.ok for o in outcomes), [o.errors for o in outcomes]
            assert app.spool.pending == 0
        finally:
            await app.aclose()

    asyncio.run(go())


def _series(influxd: Influxd, db: str, q: str) -> list[dict[str, Any]]:
    return influxd.rows(q, db)


def _expected_live(xml: str) -> dict[tuple[str, str], float]:
    """(measurement, AIN) -> value computed by hand from the box's own XML and the spec."""
    out: dict[tuple[str, str], float] = {}
    for dev in ET.fromstring(xml):
        if dev.tag != "device" or dev.findtext("present") != "1":
            continue
        ain = (dev.get("identifier") or "").replace(" ", "")
        power = dev.findtext("powermeter/power")
        if power:
            out[("power_w", ain)] = int(power) / 1000  # mW -> W
            out[("energy_wh", ain)] = float(dev.findtext("powermeter/energy") or "nan")
            out[("voltage_v", ain)] = int(dev.findtext("powermeter/voltage") or "0") / 1000
        celsius = dev.findtext("temperature/celsius")
        if celsius:
            out[("temperature_c", ain)] = int(celsius) / 10  # offset already applied
        humidity = dev.findtext("humidity/rel_humidity")
        if humidity:
            out[("humidity_pct", ain)] = float(humidity)
        tsoll = dev.findtext("hkr/tsoll")
        if tsoll and 16 <= int(tsoll) <= 56:
            out[("setpoint_c", ain)] = int(tsoll) / 2
    return out


def test_once_writes_every_quantity_with_units_and_timestamps(
    tmp_path: Path, sim: FritzboxSimulator, clock: FakeClock, influxd: Influxd, influx_db: str
) -> None:
    expected = _expected_live(sim.devicelist_xml(clock.now))
    before = int(datetime.now(UTC).timestamp()) * 10**9
    _once(_app(tmp_path, sim, influxd, influx_db))
    after = int(datetime.now(UTC).timestamp() + 1) * 10**9

    live_start = before - 10**9  # poll timestamps are the poll time, in whole seconds
    checked = 0
    for (measurement, ain), value in expected.items():
        where = f"\"device_id\" = '{ain}' AND time >= {live_start} AND time <= {after}"
        if measurement == "setpoint_c":
            where += " AND \"kind\" = 'target'"
        rows = _series(influxd, influx_db, f'SELECT "value" FROM "{measurement}" WHERE {where}')
        assert len(rows) == 1, (measurement, ain, rows)
        assert rows[0]["value"] == pytest.approx(value), (measurement, ain)
        assert rows[0]["time"] % 10**9 == 0
        checked += 1
    assert checked >= 20
    # thermostat OFF/ON are states, never temperatures
    states = _series(influxd, influx_db, "SELECT \"value\", \"label\" FROM \"state\" "
                     "WHERE \"name\" = 'thermostat_mode'")
    assert {r["label"] for r in states} >= {"off"}
    setpoints = _series(influxd, influx_db, 'SELECT "value" FROM "setpoint_c"')
    assert all(8.0 <= r["value"] <= 28.0 for r in setpoints)
    # statistics carry the box's own time: 2024, on their grid, newest = the live value
    for name, grid in (("power_w", 10), ("voltage_v", 10), ("temperature_c", 900)):
        rows = _series(influxd, influx_db,
                       f'SELECT "value" FROM "{name}" WHERE time < {before - 86400 * 10**9}')
        assert rows, name
        assert all(r["time"] % (grid * 10**9) == 0 for r in rows), name
        assert max(r["time"] for r in rows) <= int(START) * 10**9
    # energy per day/month at local midnight (Europe/Berlin, summer time: 22:00 UTC)
    periods = _series(influxd, influx_db,
                      'SELECT "value", "period" FROM "energy_period_wh" GROUP BY "period"')
    days = [r for r in periods if r["period"] == "day"]
    months = [r for r in periods if r["period"] == "month"]
    assert days and months
    assert all(datetime.fromtimestamp(r["time"] / 1e9, UTC).hour == 22 for r in days)
    newest_month = max(months, key=lambda r: r["time"])
    assert datetime.fromtimestamp(newest_month["time"] / 1e9, UTC) == datetime(
        2024, 5, 31, 22, tzinfo=UTC)
    # the number of VoIP clients and one status per account
    voip = _series(influxd, influx_db,
                   "SELECT \"value\", \"label\" FROM \"state\" WHERE \"name\" = 'voip_status'"
                   " GROUP BY \"device_id\"")
    assert {r["device_id"]: r["label"] for r in voip}["voip-2"] == "disabled"
    clients = _series(influxd, influx_db, 'SELECT "value" FROM "voip_clients"')
    assert [r["value"] for r in clients] == [2.0]
    # group readings are kept apart from the members'
    group = _series(influxd, influx_db,
                    "SELECT \"value\" FROM \"power_w\" WHERE \"scope\" = 'group' "
                    f"AND time >= {live_start}")
    members = _series(influxd, influx_db,
                      "SELECT sum(\"value\") FROM \"power_w\" WHERE \"scope\" != 'group' "
                      f"AND time >= {live_start}")
    assert len(group) == 1
    assert members[0]["sum"] == pytest.approx(
        sum(v for (m, _), v in expected.items() if m == "power_w"))


def test_polling_statistics_twice_writes_the_same_points(
    tmp_path: Path, sim: FritzboxSimulator, clock: FakeClock, influxd: Influxd, influx_db: str
) -> None:
    def counts() -> dict[str, int]:
        out = {}
        for name in ("power_w", "voltage_v", "temperature_c", "humidity_pct",
                     "energy_period_wh"):
            rows = _series(influxd, influx_db,
                           f'SELECT count("value") FROM "{name}" WHERE time < '
                           f"{int(START + 1) * 10**9}")
            out[name] = int(rows[0]["count"]) if rows else 0
        return out

    _once(_app(tmp_path, sim, influxd, influx_db))
    first = counts()
    assert first["power_w"] >= 360 * 3
    _once(_app(tmp_path, sim, influxd, influx_db))
    assert counts() == first  # same series, same timestamps: overwritten, not doubled


def test_an_outage_shorter_than_the_box_memory_leaves_no_gap(
    tmp_path: Path, sim: FritzboxSimulator, clock: FakeClock, influxd: Influxd, influx_db: str
) -> None:
    """Statistics polled before and after a 40-minute collector outage join up: the
    10-second power series (one hour of memory on the box) has every slot exactly once."""
    _once(_app(tmp_path, sim, influxd, influx_db))
    clock.now = START + 40 * 60  # the collector was down for 40 minutes
    _once(_app(tmp_path, sim, influxd, influx_db))

    plug = sim.ains()[0].replace(" ", "")
    rows = _series(influxd, influx_db,
                   f"SELECT \"value\" FROM \"power_w\" WHERE \"device_id\" = '{plug}' "
                   f"AND time <= {int(clock.now) * 10**9}")
    times = [r["time"] // 10**9 for r in rows]
    assert times == sorted(set(times))
    first, last = int(START) - 359 * 10, int(clock.now)
    assert times[0] == first
    assert times[-1] == last
    assert times == list(range(first, last + 1, 10))  # no gap, no duplicate
    # the newest statistic of each poll equals the live value the box showed then
    by_time = {r["time"] // 10**9: r["value"] for r in rows}
    dev = next(d for d in sim.house.devices if d.ain_compact == plug)
    for t in (START, clock.now):
        assert by_time[int(t)] == pytest.approx(round(sim.house.power_w(dev, t) * 100) / 100,
                                                abs=0.011)
