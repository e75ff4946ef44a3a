"""``report.html`` and the numbers behind it: the Grafana panels' aggregations on SQLite."""

from __future__ import annotations

import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.lineprotocol import encode_many
from collector.model import Reading, make_tags
from collector.outputs import report_data as data
from collector.outputs.report import write_report
from collector.stores.sqlite import SqliteStore

BERLIN = ZoneInfo("Europe/Berlin")
# 2026-10-25 is the day summer time ends in Berlin: a 25-hour day
T = datetime(2026, 10, 24, 8, 0, tzinfo=UTC)
NASTY = "</script><b>Plug"


def _r(measurement: str, value: float, when: datetime, source: str = "fritzbox",
       device: str = "Plug", label: str | None = None, **tags: str) -> Reading:
    return Reading(measurement, value, when, source, "site", device.lower(), device,
                   make_tags(**tags), label)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


HOUSE = [
    # a meter: the last readings of Berlin days 24, 25 (00:30 local is 22:30 UTC the day
    # before) and 26, where it was reset
    _r("energy_wh", 1000.0, _utc("2026-10-24T08:00")),
    _r("energy_wh", 1500.0, _utc("2026-10-24T21:00")),
    _r("energy_wh", 1550.0, _utc("2026-10-24T22:30")),
    _r("energy_wh", 2700.0, _utc("2026-10-25T22:00")),
    _r("energy_wh", 100.0, _utc("2026-10-26T22:00")),
    # a tariff index and a group: not in the daily totals
    _r("energy_wh", 5.0, _utc("2026-10-24T08:00"), tariff="1"),
    _r("energy_wh", 9.0e6, _utc("2026-10-25T22:00"), tariff="1"),
    _r("energy_wh", 0.0, _utc("2026-10-24T08:00"), device="Group", scope="group"),
    _r("energy_wh", 9.0e6, _utc("2026-10-25T22:00"), device="Group", scope="group"),
    # the devices' own daily totals (at the start of the local day), a month, a group
    _r("energy_period_wh", 300.0, _utc("2026-10-24T22:00"), period="day"),
    _r("energy_period_wh", 250.0, _utc("2026-10-23T22:00"), period="day"),
    _r("energy_period_wh", 9000.0, _utc("2026-09-30T22:00"), period="month"),
    _r("energy_period_wh", 77.0, _utc("2026-10-24T22:00"), device="Group", period="day",
       scope="group"),
    # power of two devices and a group
    _r("power_w", 10.0, T), _r("power_w", 20.0, T + timedelta(seconds=1)),
    _r("power_w", 40.0, T + timedelta(minutes=30)),
    _r("power_w", 1500.0, T, source="overkiz", device="Heater"),
    _r("power_w", 99.0, T, device="Group", scope="group"),
    # one room, three systems; a comfort setpoint and a reading without room left out
    _r("temperature_c", 21.0, T, room="Living room"),
    _r("temperature_c", 22.0, T + timedelta(milliseconds=400), room="Living room"),
    _r("temperature_c", 20.5, T, source="thinknx", device="Termostato", room="Living room"),
    _r("temperature_c", 19.0, T, source="overkiz", device=NASTY, room="Living room"),
    _r("setpoint_c", 21.5, T, source="thinknx", device="Termostato", room="Living room",
       kind="target"),
    _r("setpoint_c", 23.0, T, source="thinknx", device="Termostato", room="Living room",
       kind="comfort"),
    _r("temperature_c", 4.0, T, device="Outside"),
    # a state that changes, one that does not, one not on any timeline
    _r("state", 1.0, T, label="on", name="thermostat_mode"),
    _r("state", 1.0, T + timedelta(minutes=5), label="on", name="thermostat_mode"),
    _r("state", 0.0, T + timedelta(minutes=9), label="off", name="thermostat_mode"),
    _r("state", 1.0, T, device="FRITZ!Box", label="registered", name="voip_status"),
    _r("state", 1.0, T + timedelta(minutes=9), device="FRITZ!Box", label="registered",
       name="voip_status"),
    _r("state", 1.0, T, label="yes", name="lock"),
]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "collector.sqlite3"
    sq = SqliteStore(path)
    sq.write_sync(encode_many(HOUSE))
    sq.close()
    return path


def _by_name(series: list[data.Series]) -> dict[str, list[tuple[datetime, float]]]:
    return {s.name: list(zip(s.times, s.values, strict=True)) for s in series}


def test_energy_per_day_from_the_meter_follows_local_days_and_skips_resets(store: Path) -> None:
    with data.connect(store) as db:
        berlin = _by_name(data.energy_meter_per_day(db, BERLIN))
        utc = _by_name(data.energy_meter_per_day(db, UTC))
    # day 25 (25 hours long) from the last reading of day 24 (1500 Wh) to its own (2700);
    # day 26 ends below day 25 (a reset): no value, as non_negative_difference gives none
    assert berlin == {"Plug (fritzbox)": [(datetime(2026, 10, 25, tzinfo=BERLIN), 1200.0)]}
    # in UTC, 22:30 on the 24th is still the 24th: another number, as the dashboard's $timezone
    assert utc == {"Plug (fritzbox)": [(datetime(2026, 10, 25, tzinfo=UTC), 1150.0)]}


def test_energy_per_day_from_statistics_sums_day_totals_without_groups(store: Path) -> None:
    with data.connect(store) as db:
        got = _by_name(data.energy_stats_per_day(db, BERLIN))
    assert got == {"Plug (fritzbox)": [(datetime(2026, 10, 24, tzinfo=BERLIN), 250.0),
                                       (datetime(2026, 10, 25, tzinfo=BERLIN), 300.0)]}


def test_power_is_the_mean_per_interval_per_device_without_groups(store: Path) -> None:
    with data.connect(store) as db:
        got = _by_name(data.power(db))
    # 30 minutes of data: intervals of 5 s keep it under MAX_POINTS
    assert data.interval_s(0, 1800 * 10**9) == 5
    assert got == {"Heater (overkiz)": [(T, 1500.0)],
                   "Plug (fritzbox)": [(T, 15.0), (T + timedelta(minutes=30), 40.0)]}


def test_climate_joins_a_room_across_systems_with_the_target_setpoint_only(store: Path) -> None:
    with data.connect(store) as db:
        series = data.climate(db)
    assert {s.group for s in series} == {"Living room"}
    assert _by_name(series) == {
        f"Living room · temperature · {NASTY} (overkiz)": [(T, 19.0)],
        "Living room · temperature · Plug (fritzbox)": [(T, 21.5)],  # mean of 21 and 22
        "Living room · temperature · Termostato (thinknx)": [(T, 20.5)],
        "Living room · setpoint · Termostato (thinknx)": [(T, 21.5)],
    }


def test_a_setpoint_set_long_before_the_temperatures_holds_from_the_plots_start(
    tmp_path: Path
) -> None:
    """An Overkiz setpoint is written at its last change (its lastUpdateTime), possibly years
    before the temperatures: it is drawn from the plot's start, and the plot keeps the
    temperatures' fine intervals instead of spanning the years."""
    old = _utc("2023-01-01T00:00")
    path = tmp_path / "s.sqlite3"
    sq = SqliteStore(path)
    sq.write_sync(encode_many([
        _r("setpoint_c", 19.0, old - timedelta(days=9), source="overkiz", device="Heater",
           room="Hall", kind="target"),
        _r("setpoint_c", 20.0, old, source="overkiz", device="Heater", room="Hall",
           kind="target"),
        _r("temperature_c", 18.0, T, source="overkiz", device="Probe", room="Hall"),
        _r("temperature_c", 18.5, T + timedelta(minutes=30), source="overkiz", device="Probe",
           room="Hall"),
        _r("setpoint_c", 21.0, T + timedelta(minutes=10), source="overkiz", device="Heater",
           room="Hall", kind="target"),
    ]))
    sq.close()
    with data.connect(path) as db:
        got = _by_name(data.climate(db))
    assert got == {  # 30 minutes: 5-s intervals
        "Hall · temperature · Probe (overkiz)": [(T, 18.0), (T + timedelta(minutes=30), 18.5)],
        "Hall · setpoint · Heater (overkiz)": [(T, 20.0), (T + timedelta(minutes=10), 21.0)],
    }


def test_timelines_are_segments_from_change_to_change(store: Path) -> None:
    with data.connect(store) as db:
        got = data.timelines(db)
    nine = T + timedelta(minutes=9)
    assert got == [
        data.Segment("FRITZ!Box · voip_status (fritzbox)", "registered", T, nine),
        data.Segment("Plug · thermostat_mode (fritzbox)", "on", T, nine),
        data.Segment("Plug · thermostat_mode (fritzbox)", "off", nine,
                     nine + timedelta(seconds=1)),
    ]


@given(first=st.integers(0, 2**50), span=st.integers(0, 400 * 86400))
def test_the_interval_keeps_every_plot_under_max_points(first: int, span: int) -> None:
    step = data.interval_s(first * 10**9, (first + span) * 10**9)
    assert step in data._STEPS_S
    assert span / step <= data.MAX_POINTS or step == data._STEPS_S[-1]
    smaller = [s for s in data._STEPS_S if s < step]
    assert not smaller or span / smaller[-1] > data.MAX_POINTS


def test_counts_and_devices_per_source(store: Path) -> None:
    with data.connect(store) as db:
        counts = {(c.source, c.measurement): (c.points, c.devices) for c in data.counts(db)}
        devices = data.devices(db)
    assert counts[("fritzbox", "energy_wh")] == (9, 2)
    assert counts[("overkiz", "power_w")] == (1, 1)
    assert devices == {"fritzbox": 4, "overkiz": 2, "thinknx": 1}


def test_the_page_is_one_private_file_with_everything_inlined(store: Path,
                                                              tmp_path: Path) -> None:
    out = write_report(store, tmp_path / "report.html", tz=BERLIN, title="House & garden")
    page = out.read_text(encoding="utf-8")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "<title>House &amp; garden</title>" in page
    # no file or script from elsewhere: plotly.js is in the page itself
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)
    assert "Plotly.newPlot('plot4'" in page and "Plotly.newPlot('plot5'" not in page
    # a device name is text: it cannot end the script it is embedded in
    assert "<b>Plug" not in page
    assert page.count("</script>") == page.count("<script>")
    # ... nor markup in the legend: plotly shows the entities as the characters
    assert "&lt;\\u002fscript&gt;&lt;b&gt;Plug (overkiz)" in page
    # times on the plots are Berlin's wall clock
    assert '"2026-10-24 10:00:00"' in page


def test_a_store_without_readings_gives_a_page_saying_so(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "empty.sqlite3").close()
    page = write_report(tmp_path / "empty.sqlite3", tmp_path / "r.html").read_text()
    assert page.count("Nothing collected for this plot.") == 5
    assert "Plotly.newPlot" not in page
