"""Overkiz simulator -> `collector once` and `collector backfill` (separate processes) -> stores.

The simulator runs in the test process on the real clock; the collector runs as users run it.
Checked: the setup is loaded once in total (cached on disk between the processes), no
documented rate limit is broken, history points sit at their own hourly timestamps with the
values and units the simulated house had then, and a second backfill adds no point.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collector.simulators.overkiz import OverkizSimulator
from collector.simulators.overkiz_house import HOUR_S
from collector.stores.sqlite import SqliteStore
from tests.influxd import Influxd

CMD = [sys.executable, "-m", "collector"]
ENERGY, POWER = "core:ElectricEnergyConsumptionState", "core:ElectricPowerConsumptionState"
PARIS = ZoneInfo("Europe/Paris")  # the simulated setup's location: the default time zone
#: (measurement, device_id, tag filter) -> [(epoch s, value)]; a tag given as "" must be absent
Points = Callable[[str, str, dict[str, str]], list[tuple[int, float]]]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLLECTOR_CONFIG"}
    env["COLUMNS"] = "200"
    return subprocess.run([*CMD, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.fixture
def sim() -> Iterator[OverkizSimulator]:
    with OverkizSimulator(seed=11) as running:
        yield running


def _config(tmp_path: Path, sim: OverkizSimulator, store: str) -> Path:
    cfg = tmp_path / "collector.toml"
    cfg.write_text(
        f'{store}\n[spool]\npath = "{tmp_path / "spool.sqlite3"}"\n[log]\nlevel = "INFO"\n'
        f'[[overkiz]]\nname = "house"\nurl = "{sim.url}"\nusername = "{sim.username}"\n'
        f'password = "{sim.password}"\n'
    )
    return cfg


def _influx_points(influxd: Influxd, db: str) -> Points:
    def points(measurement: str, device_id: str, tags: dict[str, str]) -> list[tuple[int, float]]:
        where = "".join(f' AND "{k}" = \'{v}\'' for k, v in tags.items())
        rows = influxd.rows(f'SELECT "value" FROM "{measurement}" '
                            f"WHERE \"device_id\" = '{device_id}'{where}", db)
        return [(r["time"] // 10**9, float(r["value"])) for r in rows]

    return points


def _sqlite_points(path: Path) -> Points:
    def points(measurement: str, device_id: str, tags: dict[str, str]) -> list[tuple[int, float]]:
        store = SqliteStore(path)
        try:
            return [(t // 10**9, v) for t, got, v, _ in store.query(measurement, None, None,
                                                                     device_id)
                    if got.get("device_id") == device_id
                    and all(got.get(k, "") == want for k, want in tags.items())]
        finally:
            store.close()

    return points


def _check_energy_periods(sim: OverkizSimulator, points: Points, main: str,
                          run: tuple[float, float], hourly: dict[int, float]) -> None:
    """Each whole local day inside the backfill: the daily energy equals the sum of the hour
    deltas of the meter's own history; finished months are what the meter counted in them;
    the running month is what it counted from its start to the time of the run."""
    started, ended = run
    days = dict(points("energy_period_wh", main, {"period": "day"}))
    months = dict(points("energy_period_wh", main, {"period": "month"}))
    today = datetime.fromtimestamp(started, PARIS).replace(hour=0, minute=0, second=0,
                                                           microsecond=0)
    assert len(days) == 31  # the day of --since, 29 whole days, today
    assert max(days) == int(today.timestamp())
    whole = 0
    for begin, value in sorted(days.items()):
        local = datetime.fromtimestamp(begin, PARIS)
        assert (local.hour, local.minute) == (0, 0)  # at the local midnight
        end = int((local + timedelta(days=1)).timestamp())
        if begin < min(hourly) or end > max(hourly):
            continue
        index = [hourly[t] for t in range(begin, end + 1, HOUR_S)]
        assert value == pytest.approx(sum(b - a for a, b in itertools.pairwise(index)),
                                      abs=0.001), local
        whole += 1
    assert whole >= 28
    state = sim.house.by_url[main].state(ENERGY)
    assert state is not None

    def counted(a: float, b: float) -> float:
        """What the meter counted from a to b, in Wh (its energy state counts kWh)."""
        return (float(state.value(b)) - float(state.value(a))) * 1000

    month_start = int(today.replace(day=1).timestamp())
    assert max(months) == month_start
    assert (counted(month_start, started) - 0.001 <= months[month_start]
            <= counted(month_start, ended) + 0.001)
    for begin, value in months.items():
        local = datetime.fromtimestamp(begin, PARIS)
        assert (local.day, local.hour) == (1, 0)
        if begin < month_start:
            after = (local.replace(day=28) + timedelta(days=4)).replace(day=1)
            assert value == pytest.approx(counted(begin, after.timestamp()), abs=0.001), local


def _once_then_backfill_twice(tmp_path: Path, sim: OverkizSimulator, cfg: Path,
                              points: Points) -> None:
    started = time.time()
    once = run(["once", "--config", str(cfg)], tmp_path)
    assert once.returncode == 0, once.stdout + once.stderr
    first = run(["backfill", "--config", str(cfg), "--since", "30d"], tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    ended = time.time()

    # the setup was loaded once in total, and no documented limit was broken
    assert sim.calls("GET /setup") + sim.calls("GET /setup/devices") == 1
    assert sim.violation_count == 0, sim.violations
    assert sim.calls("GET /setup/devices/{deviceURL}/states/{name}/history/{from}/{to}") > 0

    gw = sim.house.gateway
    main, kwh_meter = f"io://{gw}/2001#1", f"io://{gw}/1002#5"
    probe = f"io://{gw}/1001#2"
    state = sim.house.by_url

    def history(measurement: str, device: str) -> dict[int, float]:
        """The points on the hourly grid older than the run: those came from history."""
        return {t: v for t, v in points(measurement, device, {"tariff": ""})
                if t % HOUR_S == 0 and t < started - HOUR_S}

    energy = history("energy_wh", main)
    assert len(energy) >= 29 * 24  # 30 days of hourly values, the oldest day maybe cut
    assert min(energy) <= started - 29 * 86400
    main_energy, main_power = state[main].state(ENERGY), state[main].state(POWER)
    assert main_energy is not None and main_power is not None
    # the energy state counts kWh by its own attribute although the device's says Wh (and
    # the history answer's deviceUnit too): stored in Wh, at their own time
    for t, value in energy.items():
        assert value == pytest.approx(float(main_energy.value(t)) * 1000), t
    power = history("power_w", main)
    assert len(power) >= 29 * 24
    for t, value in power.items():  # W by the power state's own attribute, not Wh
        assert value == pytest.approx(float(main_power.value(t))), t
    kwh_state = state[kwh_meter].state(ENERGY)
    assert kwh_state is not None
    kwh = history("energy_wh", kwh_meter)
    assert len(kwh) >= 29 * 24
    for t, value in kwh.items():  # kWh -> Wh
        assert value == pytest.approx(float(kwh_state.value(t)) * 1000), t
    temp_state = state[probe].state("core:TemperatureState")
    assert temp_state is not None
    temperatures = history("temperature_c", probe)
    assert len(temperatures) >= 29 * 24
    for t, value in temperatures.items():
        assert value == pytest.approx(float(temp_state.value(t))), t
    assert all(started - 31 * 86400 <= t <= ended for t in energy)
    offpeak, peak = ({t: v for t, v in points("energy_wh", main, {"tariff": n})
                      if t % HOUR_S == 0 and t < started - HOUR_S} for n in ("1", "2"))
    assert set(offpeak) == set(energy) == set(peak)
    for t, value in energy.items():  # the two tariffs add up to the total, as the meter says
        assert abs(offpeak[t] + peak[t] - value) <= 1, t
    _check_energy_periods(sim, points, main, (started, ended), energy)

    # a second backfill adds no point (up to the end of the first: the simulated house
    # goes on, and a new hour may have been recorded since)
    def count(measurement: str, device: str) -> int:
        return sum(1 for t, _ in points(measurement, device, {}) if t <= ended)

    before = {(m, d): count(m, d) for m, d in (
        ("energy_wh", main), ("power_w", main), ("energy_wh", kwh_meter),
        ("temperature_c", probe), ("energy_period_wh", main), ("energy_period_wh", kwh_meter))}
    again = run(["backfill", "--config", str(cfg), "--since", "30d"], tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    after = {(m, d): count(m, d) for m, d in before}
    assert after == before
    assert sim.calls("GET /setup") + sim.calls("GET /setup/devices") == 1
    assert sim.violation_count == 0, sim.violations
    for text in (once.stdout, once.stderr, first.stdout, first.stderr):
        assert sim.password not in text


def test_once_then_backfill_into_influxdb(
    tmp_path: Path, sim: OverkizSimulator, influxd: Influxd, influx_db: str
) -> None:
    store = (f'[store]\nkind = "influxdb"\n[influxdb]\nurl = "{influxd.url}"\napi = "v1"\n'
             f'database = "{influx_db}"\n')
    cfg = _config(tmp_path, sim, store)
    _once_then_backfill_twice(tmp_path, sim, cfg, _influx_points(influxd, influx_db))


def test_once_then_backfill_into_the_embedded_store(
    tmp_path: Path, sim: OverkizSimulator
) -> None:
    path = tmp_path / "store.sqlite3"
    cfg = _config(tmp_path, sim, f'[store]\nkind = "sqlite"\npath = "{path}"\n')
    _once_then_backfill_twice(tmp_path, sim, cfg, _sqlite_points(path))
