"""The dashboards give the same numbers from the hourly rollups as from the raw readings.

Hand-written points go into a real InfluxDB, their rollups are computed as the continuous
queries compute them; then each panel that reads the rollups is asked over 60 days
(Grafana's interval: 1 hour, where the rollups answer) with the variable ``rollups`` on and
off. Either way exactly one half of its queries answers, with the numbers worked out by
hand below: the same hourly means, daily energy, newest readings and states.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from collector.config import Config, InfluxConfig, StoreConfig
from collector.stores.setup import setup_store
from collector.stores.setup_v1 import fill_v1
from tests.influxd import Influxd
from tests.outputs.test_dashboards_grafana import Grafana, load
from tests.outputs.test_dashboards_pinned import POINTS, shown

END = datetime(2025, 3, 2, tzinfo=UTC)
#: 60 days: $__interval is 1h; 120 days: 2h, whose means weigh each reading, not each hour
START = {60: datetime(2025, 1, 1, tzinfo=UTC), 120: datetime(2024, 11, 2, tzinfo=UTC)}

FRIDGE = "source=fritzbox,site=home,device_id=116570272633,device=Kühlschrank,room=Küche"
TV = "source=fritzbox,site=home,device_id=116570272641,device=Fernseher,room=Wohnzimmer"
HKR = "source=fritzbox,site=home,device_id=099950421775,device=Heizung\\ Wohnzimmer,room=Wohnzimmer"
LINES = (
    # the fridge's 10:00 hour: 100, 200 and 600 W (mean 300); its 11:00 hour: 50 W
    ("power_w", FRIDGE, "value=100", "2025-02-10T10:00:00Z"),
    ("power_w", FRIDGE, "value=200", "2025-02-10T10:20:00Z"),
    ("power_w", FRIDGE, "value=600", "2025-02-10T10:40:00Z"),
    ("power_w", FRIDGE, "value=50", "2025-02-10T11:30:00Z"),
    ("power_w", TV, "value=1000", "2025-02-10T10:05:00Z"),
    # meter: last reading of Berlin's 9, 10 and 11 February: 1000, 1850, 2000 Wh (the 20:00
    # hour's last, not its first)
    ("energy_wh", FRIDGE, "value=1000", "2025-02-09T12:00:00Z"),
    ("energy_wh", FRIDGE, "value=1500", "2025-02-10T09:00:00Z"),
    ("energy_wh", FRIDGE, "value=1800", "2025-02-10T20:00:00Z"),
    ("energy_wh", FRIDGE, "value=1850", "2025-02-10T20:30:00Z"),
    ("energy_wh", FRIDGE, "value=2000", "2025-02-11T08:00:00Z"),
    # 08:00 hour: 20, 21, 22 °C (mean 21); 09:00 hour: 19 °C; setpoints 20 and 22 (21)
    ("temperature_c", HKR, "value=20", "2025-02-10T08:00:00Z"),
    ("temperature_c", HKR, "value=21", "2025-02-10T08:30:00Z"),
    ("temperature_c", HKR, "value=22", "2025-02-10T08:45:00Z"),
    ("temperature_c", HKR, "value=19", "2025-02-10T09:10:00Z"),
    ("setpoint_c", HKR + ",kind=target", "value=20", "2025-02-10T08:00:00Z"),
    ("setpoint_c", HKR + ",kind=target", "value=22", "2025-02-10T08:50:00Z"),
    # the mode of the 06:00 hour is its last, 1 (on); 0 (off) from the 07:00 hour on
    ("state", HKR + ",name=thermostat_mode", 'value=2,label="setpoint"', "2025-02-10T06:00:00Z"),
    ("state", HKR + ",name=thermostat_mode", 'value=1,label="on"', "2025-02-10T06:40:00Z"),
    ("state", HKR + ",name=thermostat_mode", 'value=0,label="off"', "2025-02-10T07:10:00Z"),
)
#: fill(previous) hours from 2025-02-10T07:00 to the range's end, 2025-03-02T00:00 (included)
HOURS_TO_END = 17 + 24 * 19 + 1

#: (board, panel, days) -> {series: rows} of the queries that answer, in order.
EXPECTED: dict[tuple[str, str, int], list[dict[str, list[tuple[str, Any]]]]] = {
    ("energy.json", "Power over time", 60): [{
        "Kühlschrank": [("2025-02-10T10:00:00Z", 300.0), ("2025-02-10T11:00:00Z", 50.0)],
        "Fernseher": [("2025-02-10T10:00:00Z", 1000.0)],
    }],
    # (100 + 200 + 600 + 50) / 4, not the mean of the hours' means (300 + 50) / 2
    ("energy.json", "Power over time", 120): [{
        "Kühlschrank": [("2025-02-10T10:00:00Z", 237.5)],
        "Fernseher": [("2025-02-10T10:00:00Z", 1000.0)],
    }],
    ("energy.json", "Energy per day (meter)", 60): [{
        "Kühlschrank": [("2025-02-09T23:00:00Z", 850.0), ("2025-02-10T23:00:00Z", 150.0)],
    }],
    ("climate.json", "Temperature and setpoint per room", 60): [
        {"Wohnzimmer | Heizung Wohnzimmer | fritzbox": [("2025-02-10T08:00:00Z", 21.0),
                                                        ("2025-02-10T09:00:00Z", 19.0)]},
        {"Wohnzimmer | Heizung Wohnzimmer | fritzbox": [("2025-02-10T08:00:00Z", 21.0)]},
    ],
    # (20 + 21 + 22 + 19) / 4
    ("climate.json", "Temperature and setpoint per room", 120): [
        {"Wohnzimmer | Heizung Wohnzimmer | fritzbox": [("2025-02-10T08:00:00Z", 20.5)]},
        {"Wohnzimmer | Heizung Wohnzimmer | fritzbox": [("2025-02-10T08:00:00Z", 21.0)]},
    ],
    ("climate.json", "Thermostat modes", 60): [
        {"Heizung Wohnzimmer": [("2025-02-10T06:00:00Z", 1.0), ("2025-02-10T07:00:00Z", 0.0)]
         + [("…", 0.0)] * (HOURS_TO_END - 1)},
        {},
        {},
    ],
}


def _ns(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()) * 10**9


@pytest.fixture(scope="module")
def rolled_db(influxd: Influxd) -> Iterator[str]:
    db = "rolled"
    influxd.create_db(db)
    body = "\n".join(f"{m},{tags} {fields} {_ns(t)}" for m, tags, fields, t in LINES)
    assert influxd.write(db, body).status_code == 204
    config = Config(store=StoreConfig(kind="influxdb"),
                    influxdb=InfluxConfig(url=influxd.url, api="v1", database=db))
    setup_store(config)
    assert config.influxdb is not None
    fill_v1(config.influxdb, _ns("2025-01-01T00:00:00Z"), _ns("2025-03-02T00:00:00Z"))
    yield db


def answers(influxd: Influxd, db: str, board: str, title: str, rollups: str,
            start: datetime = START[60], end: datetime = END) -> list[dict[str, Any]]:
    """Every query's answer, shown as series -> rows (state timelines whole)."""
    model = load(board)
    variables = model["templating"]["list"]
    panel = next(p for p in model["panels"] if p["title"] == title)
    value = {"on": "rollup_1h", "off": "autogen"}[rollups]  # the variable's values
    grafana = Grafana(start=start, end=end, text={"timezone": "Europe/Berlin",
                                                  "price_kwh": "0.30", "rollups": value})
    grafana.resolve(influxd, db, variables)
    out = []
    for target in panel["targets"]:
        query = grafana.interpolate(target["query"], variables, panel)
        group = []
        if " GROUP BY " in query:
            part = query.split(" GROUP BY ", 1)[1].split(" fill(")[0].split(" tz(")[0]
            group = [g.strip().strip('"') for g in part.split(",") if "time(" not in g]
        out.append(shown(influxd.query(query, db), group, False))
    return out


def _halves(got: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    half = len(got) // 2
    return got[:half], got[half:]


def _masked(rows: list[dict[str, Any]], keep: int) -> list[dict[str, Any]]:
    """Rows after the first ``keep`` of each series shown as "…" (a long fill(previous))."""
    return [{name: [(t if i < keep else "…", v) for i, (t, v) in enumerate(series)]
             for name, series in answer.items()} for answer in rows]


@pytest.mark.parametrize(("board", "title", "days"), list(EXPECTED))
def test_rollups_and_raw_readings_give_the_numbers_worked_out_by_hand(
        influxd: Influxd, rolled_db: str, board: str, title: str, days: int) -> None:
    expected = EXPECTED[(board, title, days)]
    on_raw, on_rolled = _halves(answers(influxd, rolled_db, board, title, "on", START[days]))
    off_raw, off_rolled = _halves(answers(influxd, rolled_db, board, title, "off",
                                          START[days]))
    daily = title == "Energy per day (meter)"  # rollups first, then raw readings
    rolled, raw = (on_raw, off_rolled) if daily else (on_rolled, off_raw)
    silent = (on_rolled, off_raw) if daily else (on_raw, off_rolled)
    assert all(answer == {} for half in silent for answer in half)
    assert _masked(rolled, 2) == expected
    assert _masked(raw, 2) == expected
    assert rolled == raw  # every hour of the state timeline too


def test_the_newest_reading_is_the_same_from_the_rollups(influxd: Influxd,
                                                          rolled_db: str) -> None:
    # the rollup's row is stamped at its hour, the raw reading at its own time: the panel
    # (a bar gauge) shows the value
    title = "Current power per device"
    on = _halves(answers(influxd, rolled_db, "energy.json", title, "on"))[1]
    off = _halves(answers(influxd, rolled_db, "energy.json", title, "off"))[0]
    for got in (on, off):
        assert [{name: [v for _, v in rows] for name, rows in a.items()} for a in got] == [
            {"Kühlschrank": [50.0], "Fernseher": [1000.0]}]


def test_the_daily_panels_give_the_pinned_numbers_from_raw_readings_too(
        influxd: Influxd) -> None:
    """The hand-pinned week (tests/test_dashboards_pinned.py) read with the rollups off:
    the raw queries of the daily and monthly panels answer what their rollup queries do."""
    from tests.outputs.test_dashboards_pinned import END as P_END
    from tests.outputs.test_dashboards_pinned import EXPECTED as PINNED
    from tests.outputs.test_dashboards_pinned import START as P_START

    db = "pinned_raw"
    influxd.create_db(db)
    body = "\n".join(f"{m},{tags} {fields} {_ns(t)}" for m, tags, fields, t in POINTS)
    assert influxd.write(db, body).status_code == 204  # no rollups at all
    for title in ("Energy per day (meter)", "Energy per day (device statistics)",
                  "Energy per month", "Cost per day", "Cost in range", "Top consumers"):
        rolled, raw = _halves(answers(influxd, db, "energy.json", title, "off",
                                      P_START, P_END))
        assert rolled == [{}]
        assert _round(raw) == _round([PINNED[("energy.json", title)][1]["A"]]), title


def _round(answers_: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def one(v: Any) -> Any:
        if isinstance(v, tuple):
            return tuple(one(x) for x in v)
        return round(float(v), 9) if isinstance(v, int | float) else v
    return [{n: [(t, one(v)) for t, v in rows] for n, rows in a.items()} for a in answers_]
