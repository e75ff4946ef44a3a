"""The soak benchmark: its figures, and the count of readings lost it rests on."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.bench.soak import main, slope_per_hour
from collector.bench.soak_lost import (
    Expected,
    KnxServed,
    OverkizServed,
    count,
    fritzbox_expected,
    overkiz_expected,
    stored_points,
    thinknx_expected,
)
from collector.lineprotocol import Encoder
from collector.simulators.fritzbox import FritzboxSimulator
from collector.simulators.overkiz_model import KWH, Device, State
from collector.simulators.thinknx_project import Kind, KnxObject
from collector.sources.fritzbox.parse import parse_devicelist
from collector.stores.sqlite import SqliteStore

T0 = datetime(2026, 11, 2, 12, tzinfo=UTC).timestamp()  # 13:00 in Berlin

@pytest.mark.skipif(not Path("/proc/self/stat").exists() or sys.platform != "linux",
                    reason="the soak reads /proc")
def test_soak_prints_its_figures_and_loses_no_reading(capsys: pytest.CaptureFixture[str]) -> None:
    figures = main(15.0)
    out = capsys.readouterr().out
    for key in ("soak_rss_mb", "soak_rss_growth_mb_per_h", "soak_cpu_ms_per_poll_cycle",
                "soak_readings_lost"):
        assert f"{key}: " in out
    assert figures["soak_readings_lost"] == 0.0
    assert figures["soak_readings_wrong"] == 0.0
    # 15 s at a 2 s interval: several polls of 60 devices were served and counted
    assert figures["soak_poll_cycles"] >= 4
    assert figures["soak_readings_counted"] >= 100
    # and so were the KNX objects' status answers and the Overkiz events: none lost
    for source in ("fritzbox", "thinknx", "overkiz"):
        assert figures[f"soak_readings_lost_{source}"] == 0.0
        assert figures[f"soak_readings_wrong_{source}"] == 0.0
        assert f"soak: {source}: " in out
    assert figures["soak_readings_counted_thinknx"] >= 25
    assert figures["soak_readings_counted_overkiz"] > 0
    assert figures["soak_readings_counted"] == sum(
        figures[f"soak_readings_counted_{s}"] for s in ("fritzbox", "thinknx", "overkiz"))
    assert figures["soak_rss_mb"] > 0
    assert figures["soak_cpu_ms_per_poll_cycle"] > 0



def _ns(t: float) -> int:
    return round(t * 1_000_000) * 1000


def _store(path: Path, lines: list[str]) -> None:
    store = SqliteStore(path)
    try:
        store.write_sync(lines)
    finally:
        store.close()


# ---- FRITZ!Box: the house at the time of each device list ----------------------------------

def _fritz_store(path: Path, box: FritzboxSimulator, polls: list[tuple[float, float]],
                 change: dict[tuple[str, str], float] | None = None,
                 drop: str | None = None) -> None:
    """What the collector stores for the device lists of ``polls`` (served, stamped), from
    the served XML through the collector's parser: the side under test. ``change`` adds to
    the value of the last point of a (measurement, device_id) (a setpoint: the target),
    ``drop`` leaves out one point of a measurement."""
    readings = []
    for served, polled in polls:
        xml = box.devicelist_xml(served).encode()
        readings += parse_devicelist(xml, site="home",
                                     time=datetime.fromtimestamp(polled, UTC)).readings
    for (measurement, device_id), delta in (change or {}).items():
        i = max(i for i, r in enumerate(readings) if r.measurement == measurement
                and r.device_id == device_id and r.tag("kind") in (None, "target"))
        readings[i] = readings[i]._replace(value=readings[i].value + delta)
    if drop is not None:
        readings.remove(next(r for r in readings if r.measurement == drop))
    _store(path, Encoder().encode_many(readings))


#: readings of one device list of the default house at T0 (13:00 in Berlin), by hand: three
#: plugs (power, energy, voltage, temperature), the group (power, energy), the thermostats
#: (temperature, battery, comfort and eco setpoints; a target in the comfort period but not
#: switched off), the climate sensor (temperature, humidity, battery), the repeater's
#: temperature; the plug that is not connected and the HAN-FUN devices give none.
PER_LIST = 3 * 4 + 2 + (5 + 4 + 5) + 3 + 1


PLUG, HKR = "116570272633", "099950421775"


@pytest.mark.parametrize(("change", "wrong"), [
    ({}, 0),
    ({("temperature_c", HKR): 10.0}, 1),
    ({("power_w", PLUG): 0.001}, 1),  # one milliwatt off
    ({("setpoint_c", HKR): 0.5}, 1),
    ({("voltage_v", PLUG): 0.001, ("energy_wh", PLUG): 1.0}, 2),
    ({("energy_wh", "grp303E4F-3F7D9D5B3"): 1.0}, 1),
])
def test_a_fritzbox_reading_is_found_or_wrong_against_the_house(
    tmp_path: Path, change: dict[tuple[str, str], float], wrong: int
) -> None:
    box = FritzboxSimulator(devices=14, clock=lambda: T0)
    # the second list (served at T0 + 2, polled at T0 + 1.2) is the one counted
    _fritz_store(tmp_path / "s.sqlite3", box, [(T0, T0 - 0.5), (T0 + 2, T0 + 1.2)], change)
    expected = fritzbox_expected(box.house, [T0, T0 + 2], T0 + 1, T0 + 5)
    got = count(expected, stored_points(tmp_path / "s.sqlite3", "fritzbox"))
    assert (got.counted, got.lost, got.wrong) == (PER_LIST, 0, wrong)


def test_a_fritzbox_reading_missing_from_the_store_is_lost(tmp_path: Path) -> None:
    box = FritzboxSimulator(devices=14, clock=lambda: T0)
    _fritz_store(tmp_path / "s.sqlite3", box, [(T0 + 2, T0 + 1.2)], drop="humidity_pct")
    got = count(fritzbox_expected(box.house, [T0, T0 + 2], T0 + 1, T0 + 5),
                stored_points(tmp_path / "s.sqlite3", "fritzbox"))
    assert (got.counted, got.lost, got.wrong) == (PER_LIST, 1, 0)
    (want, found), = got.examples
    assert (want.measurement, want.device_id, found) == ("humidity_pct", "130960007308", ())


def test_a_fritzbox_reading_stamped_outside_its_answers_span_is_lost(tmp_path: Path) -> None:
    box = FritzboxSimulator(devices=14, clock=lambda: T0)
    # polled after the list was served: no poll stamps its readings after the answer
    _fritz_store(tmp_path / "s.sqlite3", box, [(T0 + 2, T0 + 2.5)])
    got = count(fritzbox_expected(box.house, [T0, T0 + 2], T0 + 1, T0 + 5),
                stored_points(tmp_path / "s.sqlite3", "fritzbox"))
    assert (got.counted, got.lost, got.wrong) == (PER_LIST, PER_LIST, 0)


def test_fritzbox_lists_outside_the_counting_span_are_not_counted() -> None:
    box = FritzboxSimulator(devices=14, clock=lambda: T0)
    assert count(fritzbox_expected(box.house, [T0, T0 + 2], T0 + 10, T0 + 20), {}).counted == 0


# ---- Thinknx: the project's values, written here by hand ------------------------------------

THERMOSTAT = KnxObject("guid-th", Kind.THERMOSTAT, "Termostato", "Soggiorno", 100)
POWER = KnxObject("guid-kw", Kind.ANALOG, "Consumo", "Quadro", 200, "power", "kW")
ENERGY = KnxObject("guid-kwh", Kind.ANALOG, "Energia", "Quadro", 300, "energy", "kWh")
BLIND = KnxObject("guid-bl", Kind.BLIND, "Tapparella", "Camera", 400)
KNX_SERVED = [
    KnxServed(T0, THERMOSTAT, "actualtemp", 21.5),
    KnxServed(T0 + 2, THERMOSTAT, "actualtemp", 21.6),
    KnxServed(T0 + 2, THERMOSTAT, "setpointstatus", 22.0),
    KnxServed(T0 + 2, THERMOSTAT, "tempmodestatus", 1.0),  # a state: not counted
    KnxServed(T0 + 2, POWER, "getvalue", 1.234),
    KnxServed(T0 + 2, ENERGY, "getvalue", 15234.567),
    KnxServed(T0 + 2, BLIND, "heightlevelstatus", 40.0),
]
KNX = "source=thinknx,site=villa"
#: what the collector should store for the answers at T0 + 2, polled at T0 + 1.5
KNX_STORED = [
    f"temperature_c,{KNX},device_id=guid-th,device=Termostato value=21.6 {_ns(T0 + 1.5)}",
    f"setpoint_c,{KNX},device_id=guid-th,device=Termostato,kind=target value=22 "
    f"{_ns(T0 + 1.5)}",
    f"power_w,{KNX},device_id=guid-kw,device=Consumo value=1234 {_ns(T0 + 1.5)}",
    f"energy_wh,{KNX},device_id=guid-kwh,device=Energia value=15234567 {_ns(T0 + 1.5)}",
    f"level_pct,{KNX},device_id=guid-bl,device=Tapparella,kind=blind value=40 "
    f"{_ns(T0 + 1.5)}",
]


@pytest.mark.parametrize(("replace", "lost", "wrong"), [
    ({}, 0, 0),
    ({0: f"temperature_c,{KNX},device_id=guid-th,device=Termostato value=31.6 "
         f"{_ns(T0 + 1.5)}"}, 0, 1),  # 10 °C too high
    ({2: f"power_w,{KNX},device_id=guid-kw,device=Consumo value=1.234 {_ns(T0 + 1.5)}"},
     0, 1),  # kW taken for W
    ({3: f"energy_wh,{KNX},device_id=guid-kwh,device=Energia value=15234567 "
         f"{_ns(T0 + 2.5)}"}, 1, 0),  # stamped after the answer
    ({4: f"level_pct,{KNX},device_id=guid-bl,device=Tapparella,kind=slats value=40 "
         f"{_ns(T0 + 1.5)}"}, 1, 0),  # the slats, not the height
])
def test_a_thinknx_reading_is_found_lost_or_wrong(tmp_path: Path, replace: dict[int, str],
                                                  lost: int, wrong: int) -> None:
    lines = [replace.get(i, line) for i, line in enumerate(KNX_STORED)]
    _store(tmp_path / "s.sqlite3", lines)
    got = count(thinknx_expected(KNX_SERVED, T0 + 1, T0 + 3),
                stored_points(tmp_path / "s.sqlite3", "thinknx"))
    # the thermostat's temperature and setpoint, the power, the energy, the blind
    assert (got.counted, got.lost, got.wrong) == (5, lost, wrong)


# ---- Overkiz: served JSON, units from the house's devices ------------------------------------

METER = Device("io://1/2", "Meter", "io:Meter", "Meter", "ElectricityMeter", "p", 2, [
    State("core:ElectricEnergyConsumptionState", 2, lambda t: 0.0, unit=KWH),
    State("core:TemperatureState", 2, lambda t: 0.0)])
T_MS = int(T0 * 1000)
OVERKIZ_SERVED = [
    # a cloud event: values as text, at the event's own time
    OverkizServed(T0 + 0.5, "events", "", (
        '[{"timestamp": T_MS, "deviceURL": "io://1/2", "name": "DeviceStateChangedEvent", '
        '"deviceStates": [{"name": "core:ElectricEnergyConsumptionState", "type": 2, '
        '"value": "1234.5"}, {"name": "core:TemperatureState", "type": 2, '
        '"value": "20.5"}]}]').replace("T_MS", str(T_MS)).encode()),
    # a state read: each state at its lastUpdateTime
    OverkizServed(T0 + 30, "states", "io://1/2", (
        '[{"name": "core:ElectricEnergyConsumptionState", "type": 2, "value": 1234.6, '
        '"lastUpdateTime": T_MS}, {"name": "core:TemperatureState", "type": 2, "value": 21.0, '
        '"lastUpdateTime": LATER}]').replace("T_MS", str(T_MS)).replace(
            "LATER", str(T_MS + 20_000)).encode()),
]
OVERKIZ = "source=overkiz,site=tahoma,device_id=io://1/2,device=Meter"


@pytest.mark.parametrize(("lines", "lost", "wrong"), [
    ([f"energy_wh,{OVERKIZ} value=1234500 {_ns(T0)}",
      f"temperature_c,{OVERKIZ} value=20.5 {_ns(T0)}",
      f"temperature_c,{OVERKIZ} value=21 {_ns(T0 + 20)}"], 0, 0),
    # the read gave the same instant another value: either is as good
    ([f"energy_wh,{OVERKIZ} value=1234600 {_ns(T0)}",
      f"temperature_c,{OVERKIZ} value=20.5 {_ns(T0)}",
      f"temperature_c,{OVERKIZ} value=21 {_ns(T0 + 20)}"], 0, 0),
    ([f"energy_wh,{OVERKIZ} value=1234.5 {_ns(T0)}",  # kWh taken for Wh
      f"temperature_c,{OVERKIZ} value=20.5 {_ns(T0)}",
      f"temperature_c,{OVERKIZ} value=21 {_ns(T0 + 30)}"], 1, 1),  # stamped at the read
])
def test_an_overkiz_reading_is_found_lost_or_wrong(tmp_path: Path, lines: list[str],
                                                   lost: int, wrong: int) -> None:
    _store(tmp_path / "s.sqlite3", lines)
    got = count(overkiz_expected(OVERKIZ_SERVED, {METER.url: METER}, T0, T0 + 60),
                stored_points(tmp_path / "s.sqlite3", "overkiz"))
    assert (got.counted, got.lost, got.wrong) == (3, lost, wrong)


def test_only_overkiz_answers_inside_the_counting_span_are_counted() -> None:
    expected = overkiz_expected(OVERKIZ_SERVED, {METER.url: METER}, T0 + 10, T0 + 60)
    # the state read's two states; the energy keeps the event's value as well
    assert sorted((w.measurement, w.values) for w in expected.wants.values()) == [
        ("energy_wh", (1234500.0, 1234600.0)), ("temperature_c", (21.0,))]
    assert count(Expected(), {}).counted == 0


@given(st.floats(-100, 100), st.floats(-50, 50),
       st.lists(st.floats(0, 3600), min_size=2, max_size=50, unique=True))
def test_slope_of_a_line_is_its_gradient_per_hour(base: float, per_s: float,
                                                  ts: list[float]) -> None:
    if max(ts) - min(ts) < 1:
        return
    samples = [(t, base + per_s * t) for t in ts]
    assert slope_per_hour(samples) == pytest.approx(per_s * 3600, rel=1e-6, abs=1e-6)


def test_slope_of_too_few_samples_is_zero() -> None:
    assert slope_per_hour([]) == 0.0
    assert slope_per_hour([(1.0, 50.0)]) == 0.0
    assert slope_per_hour([(1.0, 50.0), (1.0, 60.0)]) == 0.0
