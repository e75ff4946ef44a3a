"""collector.outputs.analysis: the same numbers as the Energy dashboard's InfluxQL, from
either store, on the 23- and 25-hour days of Europe/Berlin; load() alike from both stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.config import Config, InfluxConfig, StoreConfig
from collector.lineprotocol import encode_many
from collector.model import Reading, make_tags
from collector.outputs import analysis
from collector.stores.setup import setup_store
from collector.stores.setup_v1 import fill_v1
from collector.stores.sqlite import SqliteStore
from tests.influxd import Influxd
from tests.outputs.test_dashboards_grafana import Grafana, load, values

BERLIN = ZoneInfo("Europe/Berlin")
RATES = {"Meter A": 100.0, "Meter B": 250.0}


def meters(first: datetime, hours: int, reset_at: int) -> list[Reading]:
    """Both meters every hour at :10; Meter B is reset to 0 at hour ``reset_at``. Daily totals
    at local midnight; a per-tariff index and a FRITZ! group that the days must leave out."""
    out: list[Reading] = []
    for device, rate in RATES.items():
        dev_id = device[-1].lower()
        base = 10_000.0
        for h in range(hours + 1):
            if device == "Meter B" and h == reset_at:
                base = -rate * h  # the meter starts again from 0
            out.append(Reading("energy_wh", base + rate * h, first + timedelta(hours=h, minutes=10),
                               "fritzbox", "home", dev_id, device, make_tags(room="Cellar")))
        day = first.astimezone(BERLIN).replace(hour=0, minute=0)
        while day < first + timedelta(hours=hours):
            after = (day + timedelta(days=1, hours=3)).replace(hour=0)
            length_h = (after.astimezone(UTC) - day.astimezone(UTC)).total_seconds() / 3600
            out.append(Reading("energy_period_wh", rate * length_h, day.astimezone(UTC),
                               "fritzbox", "home", dev_id, device, make_tags(period="day")))
            day = after
    for h in range(hours + 1):
        when = first + timedelta(hours=h, minutes=40)
        out.append(Reading("energy_wh", 500.0 + 40 * h, when, "overkiz", "home", "a", "Meter A",
                           make_tags(tariff="1")))
        out.append(Reading("energy_wh", 20_000.0 + 350 * h, when, "fritzbox", "home", "grp",
                           "Both", make_tags(scope="group")))
    return out


CASES = [
    # spring: 2024-03-31 has 23 hours; Meter B reset on 2024-03-30
    pytest.param(datetime(2024, 3, 27, tzinfo=UTC), datetime(2024, 3, 29, tzinfo=UTC),
                 datetime(2024, 4, 1, 21, 59, 59, tzinfo=UTC),
                 {"2024-03-29": 24, "2024-03-30": 24, "2024-03-31": 23, "2024-04-01": 24},
                 id="spring"),
    # autumn: 2024-10-27 has 25 hours
    pytest.param(datetime(2024, 10, 23, tzinfo=UTC), datetime(2024, 10, 25, tzinfo=UTC),
                 datetime(2024, 10, 28, 22, 59, 59, tzinfo=UTC),
                 {"2024-10-25": 24, "2024-10-26": 24, "2024-10-27": 25, "2024-10-28": 24},
                 id="autumn"),
]
HOURS = 7 * 24
RESET = 3 * 24 + 5  # in the third local day after the first


def _stores(tmp_path: Path, influxd: Influxd, db: str, readings: list[Reading]
            ) -> tuple[Config, Config]:
    lines = encode_many(readings)
    assert influxd.write(db, "\n".join(lines)).status_code == 204
    store = SqliteStore(tmp_path / "collector.sqlite3")
    store.write_sync(lines)
    store.close()
    influx = Config(store=StoreConfig(kind="influxdb"),
                    influxdb=InfluxConfig(url=influxd.url, api="v1", database=db))
    # the daily panels read the hourly rollups: computed as the continuous queries do
    setup_store(influx)
    assert influx.influxdb is not None
    times = [int(r.time.timestamp()) * 10**9 for r in readings]
    fill_v1(influx.influxdb, min(times), max(times) + 1)
    return (Config(store=StoreConfig(kind="sqlite", path=tmp_path / "collector.sqlite3")),
            influx)


def _panel(influxd: Influxd, db: str, title: str, start: datetime, end: datetime
           ) -> list[dict[str, object]]:
    board = load("energy.json")
    variables = board["templating"]["list"]
    panel = next(p for p in board["panels"] if p["title"] == title)
    grafana = Grafana(start=start, end=end, text={"timezone": "Europe/Berlin"})
    grafana.resolve(influxd, db, variables)
    series, _ = values(influxd.query(grafana.interpolate(panel["targets"][0]["query"],
                                                         variables, panel), db))
    return series


def _day(ts: pd.Timestamp | int) -> str:
    local = (pd.Timestamp(ts, unit="ns", tz=UTC) if isinstance(ts, int) else ts).tz_convert(
        BERLIN)
    assert (local.hour, local.minute) == (0, 0)
    return str(local.date())


@pytest.mark.parametrize(("first", "start", "end", "per_day"), CASES)
def test_energy_per_day_agrees_with_the_dashboard(
    tmp_path: Path, influxd: Influxd, influx_db: str, first: datetime, start: datetime,
    end: datetime, per_day: dict[str, int],
) -> None:
    stores = _stores(tmp_path, influxd, influx_db, meters(first, HOURS, RESET))
    dashboard = {(s["tags"]["device"], _day(t)): v  # type: ignore[index]
                 for s in _panel(influxd, influx_db, "Energy per day (meter)", start, end)
                 for t, v in s["values"]}  # type: ignore[attr-defined]
    # by hand: the rate times the hours of the local day; Meter B's reset day has no value
    reset_day = (first + timedelta(hours=RESET, minutes=10)).astimezone(BERLIN).date().isoformat()
    want = {(d, day): RATES[d] * h for d in RATES for day, h in per_day.items()
            if (d, day) != ("Meter B", reset_day)}
    assert dashboard == want
    for config in stores:
        table = analysis.energy_per_day(start, end, tz="Europe/Berlin", config=config)
        got = {(str(d), _day(t)): v for d in table.columns
               for t, v in table[d].dropna().items()}
        assert got == want
        assert str(table.index.tz) == "Europe/Berlin"


@pytest.mark.parametrize(("first", "start", "end", "per_day"), CASES)
def test_statistics_per_day_and_cost_agree_with_the_dashboard(
    tmp_path: Path, influxd: Influxd, influx_db: str, first: datetime, start: datetime,
    end: datetime, per_day: dict[str, int],
) -> None:
    stores = _stores(tmp_path, influxd, influx_db, meters(first, HOURS, RESET))
    (only,) = _panel(influxd, influx_db, "Energy per day (device statistics)", start, end)
    dashboard = {_day(t): v for t, v in only["values"]}  # type: ignore[attr-defined]
    inside = dict(list(per_day.items())[1:])  # the first total is stamped before the range
    assert dashboard == {day: 350.0 * h for day, h in inside.items()}
    for config in stores:
        table = analysis.energy_per_day(start, end, tz="Europe/Berlin", source="statistics",
                                        config=config)
        # the start's own day counts here (its total is stamped at its midnight)
        total = {_day(t): v for t, v in table.sum(axis=1).items()}
        assert {d: v for d, v in total.items() if d in dashboard} == dashboard
        assert set(total) == set(per_day)
        euros = analysis.cost(0.30, table.sum(axis=1))
        assert {_day(t): round(v, 6) for t, v in euros.items()} == {
            day: round(350.0 * h / 1000 * 0.30, 6) for day, h in per_day.items()}


def test_energy_per_month_from_the_meter(tmp_path: Path, influxd: Influxd,
                                         influx_db: str) -> None:
    # 2024-03-29 .. 2024-04-04: March's last reading vs April's last (no reset)
    first = datetime(2024, 3, 29, tzinfo=UTC)
    stores = _stores(tmp_path, influxd, influx_db, meters(first, 6 * 24, 10_000))
    for config in stores:
        table = analysis.energy_per_month(None, None, tz="Europe/Berlin", config=config)
        # March's last reading: 2024-03-31 21:10 UTC (23:10 CEST), hour 69; April's: hour 144
        assert table.to_dict() == {"Meter A": {pd.Timestamp("2024-04-01", tz=BERLIN): 7500.0},
                                   "Meter B": {pd.Timestamp("2024-04-01", tz=BERLIN): 18750.0}}


def test_load_gives_the_same_frame_from_both_stores(tmp_path: Path, influxd: Influxd,
                                                    influx_db: str) -> None:
    first = datetime(2024, 10, 26, tzinfo=UTC)
    sqlite, influx = _stores(tmp_path, influxd, influx_db, meters(first, 30, 10_000))
    a = analysis.load("energy_wh", "2024-10-26T12:00:00Z", first + timedelta(hours=20),
                      config=sqlite, tz="Europe/Berlin")
    b = analysis.load("energy_wh", "2024-10-26T12:00:00Z", first + timedelta(hours=20),
                      config=influx, tz="Europe/Berlin")
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 8 * 4
    assert str(a.index.tz) == "Europe/Berlin" and a.index.name == "time"
    assert a.index[0] == pd.Timestamp("2024-10-26T12:10:00Z")
    assert a["value"].dtype == "float64" and set(a["unit"]) == {"Wh"}
    meter_a = a[(a["device"] == "Meter A") & a["tariff"].isna()]
    assert meter_a["value"].iloc[0] == 10_000.0 + 100.0 * 12
    assert list(meter_a["room"].unique()) == ["Cellar"]


def test_temperature_vs_setpoint_per_room(tmp_path: Path) -> None:
    t0 = datetime(2026, 1, 10, 8, tzinfo=UTC)

    def r(measurement: str, value: float, minutes: int, room: str | None, **tags: str
          ) -> Reading:
        return Reading(measurement, value, t0 + timedelta(minutes=minutes), "thinknx", "villa",
                       f"{room}-{measurement}", "T", make_tags(room=room, **tags))

    path = tmp_path / "c.sqlite3"
    store = SqliteStore(path)
    store.write_sync(encode_many([
        r("temperature_c", 20.0, 0, "Living"), r("temperature_c", 21.0, 30, "Living"),
        r("temperature_c", 22.0, 60, "Living"), r("temperature_c", 18.0, 0, "Bath"),
        r("temperature_c", 30.0, 0, None),  # no room: cannot be joined
        r("setpoint_c", 21.0, 0, "Living", kind="target"),
        r("setpoint_c", 23.0, 0, "Living", kind="comfort"),
        r("setpoint_c", 22.0, 5, "Bath", kind="target"),
    ]))
    store.close()
    config = Config(store=StoreConfig(path=path))
    both = analysis.temperature_vs_setpoint(config=config)
    rows = [(str(t), room, temp, sp) for t, room, temp, sp, _ in both.itertuples()]
    assert rows[:2] == [("2026-01-10 08:00:00+00:00", "Bath", 18.0, 22.0),
                        ("2026-01-10 08:00:00+00:00", "Living", 20.5, 21.0)]
    assert rows[2][:3] == ("2026-01-10 09:00:00+00:00", "Living", 22.0)
    assert pd.isna(rows[2][3])
    assert both["delta_c"].iloc[:2].tolist() == [-4.0, -0.5]
    living = analysis.temperature_vs_setpoint(room="Living", config=config)
    assert set(living["room"]) == {"Living"} and len(living) == 2


def test_an_unknown_measurement_is_named(tmp_path: Path) -> None:
    from collector.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown measurement 'power_kw'; known: "):
        analysis.load("power_kw", config=Config(store=StoreConfig(path=tmp_path / "x")))


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(60, 20 * 3600), st.floats(0, 5000)), min_size=2,
                      max_size=60),
       start=st.datetimes(datetime(2024, 3, 25), datetime(2024, 11, 1)))
def test_days_add_up_to_the_meter_difference(steps: list[tuple[int, float]],
                                             start: datetime) -> None:
    """Without resets, the days sum to the last reading minus the first day's last reading,
    and each day is the growth between the last readings of two local days."""
    t, value = start.replace(tzinfo=UTC), 1000.0
    times, values = [], []
    for gap, growth in steps:
        t, value = t + timedelta(seconds=gap), value + growth
        times.append(t)
        values.append(value)
    df = pd.DataFrame({"device": "M", "value": values},
                      index=pd.DatetimeIndex(times, name="time"))
    table = analysis.energy_table(df, "1D", BERLIN, "meter")
    local_days = pd.Series(values, index=pd.DatetimeIndex(times).tz_convert(BERLIN))
    last_per_day = local_days.groupby(local_days.index.date).last()
    if len(last_per_day) < 2:
        assert table.empty
        return
    assert table["M"].sum() == pytest.approx(values[-1] - last_per_day.iloc[0], rel=1e-9,
                                             abs=1e-6)
    assert [str(d.date()) for d in table.index] == [str(d) for d in last_per_day.index[1:]]
    assert all(d.hour == 0 and d.minute == 0 for d in table.index)
