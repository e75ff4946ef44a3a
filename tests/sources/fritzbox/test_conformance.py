"""Real captures from other projects (see ../shared/fixtures/SOURCES.md), read at test time."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from collector import schema
from collector.model import Reading
from collector.sources.fritzbox.normalise import HanFunUnitType
from collector.sources.fritzbox.parse import Stats, parse_devicelist, parse_devicestats
from tests.sources.fritzbox import rows

T = datetime(2024, 1, 7, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def capture(shared_dir: Path, name: str) -> bytes:
    return (shared_dir / "fixtures" / "fritzbox" / name).read_bytes()


def test_every_capture_parses(shared_dir: Path) -> None:
    folder = shared_dir / "fixtures" / "fritzbox"
    lists = sorted(folder.glob("devicelist*.xml"))
    stats = sorted(folder.glob("devicestats*.xml"))
    assert len(lists) == 2
    assert len(stats) == 1
    for path in lists:
        dl = parse_devicelist(path.read_bytes(), site="home", time=T)
        assert dl.problems == ()
        assert dl.readings
        _check_schema(dl.readings)
    for path in stats:
        readings = parse_devicestats(
            path.read_bytes(), site="home", device_id="x", device="x", fetched_at=T, tz=BERLIN
        )
        assert readings
        _check_schema(readings)


def _check_schema(readings: tuple[Reading, ...]) -> None:
    for r in readings:
        m = schema.BY_NAME[r.measurement]
        allowed = dict(m.tags)
        for key, value in r.tags:
            assert key in allowed or key in schema.OPTIONAL_TAGS, (r.measurement, key)
            if allowed.get(key):
                assert value in allowed[key], (r.measurement, key, value)
        assert (r.label is not None) == (m.kind is schema.Kind.STATE)
        assert type(r.value) is float


D200 = {"model": "FRITZ!DECT 200"}
REP = {"model": "FRITZ!DECT Repeater 100"}
COMET = {"model": "Comet DECT"}
HANFUN = {"model": "HAN-FUN"}
GROUP = {"scope": "group"}


def test_dect200_repeater_comet_hanfun_group(shared_dir: Path) -> None:
    xml = capture(shared_dir, "devicelist-dect200-repeater-comet-hanfun-group.xml")
    dl = parse_devicelist(xml, site="home", time=T)
    assert rows(dl.readings) == [
        ("087610000434", "Steckdose", "state", 1.0, "present", D200 | {"name": "present"}),
        ("087610000434", "Steckdose", "state", 1.0, "on", D200 | {"name": "switch"}),
        ("087610000434", "Steckdose", "state", 0.0, "unlocked", D200 | {"name": "lock"}),
        ("087610000434", "Steckdose", "state", 0.0, "unlocked", D200 | {"name": "device_lock"}),
        ("087610000434", "Steckdose", "state", 1.0, "auto", D200 | {"name": "switch_mode"}),
        ("087610000434", "Steckdose", "power_w", 0.0, None, D200),
        ("087610000434", "Steckdose", "energy_wh", 707.0, None, D200),
        ("087610000434", "Steckdose", "temperature_c", 28.5, None, D200),
        ("087611048079", "FRITZ!DECT Rep 100 #1", "state", 1.0, "present",
         REP | {"name": "present"}),
        ("087611048079", "FRITZ!DECT Rep 100 #1", "temperature_c", 28.8, None, REP),
        ("119590171328", "Badezimmer", "state", 1.0, "present", COMET | {"name": "present"}),
        # celsius 205 with offset -15: the box has applied the offset already
        ("119590171328", "Badezimmer", "temperature_c", 20.5, None, COMET),
        ("119590171328", "Badezimmer", "state", 0.0, "unlocked", COMET | {"name": "lock"}),
        ("119590171328", "Badezimmer", "state", 0.0, "unlocked",
         COMET | {"name": "device_lock"}),
        ("119590171328", "Badezimmer", "state", 0.0, "ok", COMET | {"name": "battery_low"}),
        ("119590171328", "Badezimmer", "state", 2.0, "setpoint",
         COMET | {"name": "thermostat_mode"}),
        ("119590171328", "Badezimmer", "setpoint_c", 18.0, None, COMET | {"kind": "target"}),
        ("119590171328", "Badezimmer", "setpoint_c", 21.0, None, COMET | {"kind": "comfort"}),
        ("119590171328", "Badezimmer", "setpoint_c", 18.0, None, COMET | {"kind": "eco"}),
        ("119590171328", "Badezimmer", "setpoint_c", 21.0, None, COMET | {"kind": "next"}),
        ("119590171328", "Badezimmer", "state", 0.0, "ok",
         COMET | {"name": "thermostat_error"}),
        ("053330077045-1", "Fenster", "state", 1.0, "present", HANFUN | {"name": "present"}),
        ("053330077045-1", "Fenster", "state", 1.0, "open", HANFUN | {"name": "alert"}),
        ("65:3A:18-900", "Gruppe", "state", 1.0, "present", GROUP | {"name": "present"}),
        ("65:3A:18-900", "Gruppe", "state", 1.0, "on", GROUP | {"name": "switch"}),
        ("65:3A:18-900", "Gruppe", "state", 1.0, "auto", GROUP | {"name": "switch_mode"}),
    ]  # fmt: skip
    assert {r.time for r in dl.readings} == {T}
    assert [(d.device_id, d.internal_id, d.is_group, d.stats) for d in dl.devices] == [
        ("087610000434", "17", False, Stats.TEMPERATURE | Stats.VOLTAGE | Stats.POWER
         | Stats.ENERGY),
        ("087611048079", "16", False, Stats.TEMPERATURE),
        ("119590171328", "16", False, Stats.TEMPERATURE),
        ("053330077045-1", "2000", False, Stats.NONE),
        ("65:3A:18-900", "900", True, Stats.NONE),
    ]  # fmt: skip
    assert dl.devices[3].unit_type is HanFunUnitType.WINDOW_OPEN_CLOSE_DETECTOR
    assert dl.devices[3].manufacturer == "0x0512"
    assert dl.devices[4].members == ("087610000434",)
    assert [d.fwversion for d in dl.devices] == ["03.33", "03.44", "03.54", "0.0", "1.0"]


D302 = {"model": "FRITZ!DECT 302"}


def test_dect302_with_boost_fritzos757(shared_dir: Path) -> None:
    xml = capture(shared_dir, "devicelist-dect302-boost-fritzos757.xml")
    dl = parse_devicelist(xml, site="home", time=T)
    w = ("123456789012", "Wohnzimmer")
    assert rows(dl.readings) == [
        (*w, "state", 1.0, "present", D302 | {"name": "present"}),
        (*w, "state", 0.0, "idle", D302 | {"name": "tx_busy"}),
        (*w, "state", 0.0, "ok", D302 | {"name": "battery_low"}),
        (*w, "battery_pct", 90.0, None, D302),  # once, though it is also inside <hkr>
        (*w, "temperature_c", 26.5, None, D302),  # <celsius>, not <tist> 53 (26.5 too)
        (*w, "state", 0.0, "closed", D302 | {"name": "window_open"}),
        (*w, "state", 1.0, "on", D302 | {"name": "boost"}),
        (*w, "state", 0.0, "off", D302 | {"name": "summer_mode"}),
        (*w, "state", 0.0, "off", D302 | {"name": "holiday_mode"}),
        (*w, "state", 1.0, "on", D302 | {"name": "adaptive_heating"}),
        (*w, "state", 0.0, "idle", D302 | {"name": "adaptive_heating_running"}),
        (*w, "state", 0.0, "unlocked", D302 | {"name": "lock"}),
        (*w, "state", 0.0, "unlocked", D302 | {"name": "device_lock"}),
        (*w, "state", 2.0, "setpoint", D302 | {"name": "thermostat_mode"}),
        (*w, "setpoint_c", 23.5, None, D302 | {"kind": "target"}),
        (*w, "setpoint_c", 22.0, None, D302 | {"kind": "comfort"}),
        (*w, "setpoint_c", 18.0, None, D302 | {"kind": "eco"}),
        (*w, "setpoint_c", 22.0, None, D302 | {"kind": "next"}),
        (*w, "state", 0.0, "ok", D302 | {"name": "thermostat_error"}),
    ]
    (device,) = dl.devices
    assert (device.product, device.fwversion, device.functionbitmask) == (
        "FRITZ!DECT 302",
        "05.13",
        320,
    )


def test_plug_statistics_with_datatime(shared_dir: Path) -> None:
    xml = capture(shared_dir, "devicestats-energy-plug-datatime.xml")
    readings = parse_devicestats(
        xml,
        site="home",
        device_id="087610000434",
        device="Steckdose",
        fetched_at=datetime(2023, 2, 27, 14, 0, 30, tzinfo=UTC),
        tz=BERLIN,
        tags=(("model", "FRITZ!DECT 200"),),
    )
    assert Counter((r.measurement, r.tag("period")) for r in readings) == {
        ("temperature_c", None): 96,
        ("voltage_v", None): 360,
        ("power_w", None): 360,
        ("energy_period_wh", "month"): 12,
        ("energy_period_wh", "day"): 31,
    }
    by = {
        key: [r for r in readings if (r.measurement, r.tag("period")) == key]
        for key in Counter((r.measurement, r.tag("period")) for r in readings)
    }
    newest = datetime(2023, 2, 27, 13, 59, 16, tzinfo=UTC)  # datatime="1677506356"
    temps = by["temperature_c", None]
    assert [(r.value, r.time) for r in temps[:3]] == [
        (19.0, newest),
        (19.0, newest - timedelta(seconds=900)),
        (19.0, newest - timedelta(seconds=1800)),
    ]
    assert [r.value for r in temps[26:32]] == [19.5, 20.0, 19.5, 20.5, 20.5, 21.0]
    assert temps[-1].time == newest - 95 * timedelta(seconds=900)
    volts = by["voltage_v", None]
    assert (volts[0].value, volts[0].time) == (236.541, newest)
    assert (volts[12].value, volts[12].time) == (236.459, newest - timedelta(seconds=120))
    assert (volts[-1].value, volts[-1].time) == (236.058, newest - timedelta(seconds=3590))
    power = by["power_w", None]
    assert {r.value for r in power} == {0.0}  # zeros are readings, never dropped
    assert power[-1].time == datetime(2023, 2, 27, 12, 59, 26, tzinfo=UTC)
    for series in (temps, volts, power):
        assert [r.time for r in series] == sorted((r.time for r in series), reverse=True)

    months = by["energy_period_wh", "month"]
    assert [(r.value, r.time.isoformat()) for r in months] == [
        (8301.0, "2023-01-31T23:00:00+00:00"),  # February 2023, the current month
        (3256.0, "2022-12-31T23:00:00+00:00"),
        (1455.0, "2022-11-30T23:00:00+00:00"),
        (0.0, "2022-10-31T23:00:00+00:00"),
        (0.0, "2022-09-30T22:00:00+00:00"),  # October starts in summer time
        (2.0, "2022-08-31T22:00:00+00:00"),
        (0.0, "2022-07-31T22:00:00+00:00"),
        (0.0, "2022-06-30T22:00:00+00:00"),
        (0.0, "2022-05-31T22:00:00+00:00"),
        (6.0, "2022-04-30T22:00:00+00:00"),
        (0.0, "2022-03-31T22:00:00+00:00"),
        (0.0, "2022-02-28T23:00:00+00:00"),  # March 2022
    ]
    days = by["energy_period_wh", "day"]
    assert days[0].time.isoformat() == "2023-02-26T23:00:00+00:00"  # 27 Feb, the current day
    assert days[26].time.isoformat() == "2023-01-31T23:00:00+00:00"  # 1 Feb
    assert days[-1].time.isoformat() == "2023-01-27T23:00:00+00:00"  # 28 Jan
    assert [r.value for r in days[:5]] == [343.0, 343.0, 347.0, 349.0, 348.0]
    assert [r.value for r in days[21:24]] == [0.0, 0.0, 0.0]
    # The alignment of the newest bucket: the month value is the sum of the days from
    # 1 February up to and including the day of datatime.
    february = [r.value for r in days if r.time >= months[0].time]
    assert len(february) == 27
    assert sum(february) == months[0].value
    assert {r.tags for r in days} == {(("model", "FRITZ!DECT 200"), ("period", "day"))}
    assert {schema.unit_of(r.measurement) for r in readings} == {"°C", "V", "W", "Wh"}
