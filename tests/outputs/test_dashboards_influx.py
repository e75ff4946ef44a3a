"""Every panel query of every dashboard, run against a real InfluxDB filled by the simulators.

The FRITZ!Box, Thinknx and Overkiz simulators are polled once by the collector's own
pipeline (App -> spool -> InfluxDB v1 store) and their device history is backfilled; then
each query is interpolated as Grafana does it (tests/test_dashboards_grafana.py) and must
answer with data in the panel's unit, at times inside the panel's range.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from collector.config import (
    Config,
    FritzboxConfig,
    InfluxConfig,
    OverkizConfig,
    SpoolConfig,
    StoreConfig,
    ThinknxConfig,
)
from collector.pipeline.app import App
from collector.pipeline.backfill import run_backfill
from collector.schema import STATE_BY_NAME
from collector.simulators.fritzbox import FritzboxSimulator
from collector.simulators.overkiz import OverkizSimulator
from collector.simulators.thinknx import ThinknxSimulator
from collector.stores.setup import setup_store
from collector.stores.setup_v1 import fill_v1
from tests.influxd import Influxd
from tests.outputs.test_dashboards_grafana import Grafana, load, values

BOARDS = ("energy.json", "climate.json", "devices.json")
BERLIN = ZoneInfo("Europe/Berlin")
#: Grafana unit -> the range every value of a panel in that unit must lie in
RANGES: dict[str, tuple[float, float]] = {
    "celsius": (-30.0, 50.0),
    "percent": (0.0, 100.0),
    "watt": (0.0, 50_000.0),
    "watth": (0.0, 10_000_000.0),
    "volt": (100.0, 300.0),
    "lux": (0.0, 150_000.0),
    "ppm": (250.0, 10_000.0),
    "s": (0.0, 10 * 365 * 86400.0),
    "short": (0.0, 10_000_000.0),
    "currencyEUR": (0.0, 1_000_000.0),
    # Unix milliseconds from 2000 to 2100
    "dateTimeAsIso": (946_684_800_000.0, 4_102_444_800_000.0),
}


@pytest.fixture(scope="module")
def filled(influxd: Influxd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database filled once by the collector from all three simulators."""
    db, tmp = "dashboards", tmp_path_factory.mktemp("dashboards")
    influxd.create_db(db)
    with FritzboxSimulator() as fritz, ThinknxSimulator() as knx, \
            OverkizSimulator(seed=11) as overkiz:
        config = Config(
            store=StoreConfig(kind="influxdb"),
            influxdb=InfluxConfig(url=influxd.url, api="v1", database=db),
            spool=SpoolConfig(path=tmp / "spool.sqlite3"),
            fritzbox=[FritzboxConfig(name="home", url=fritz.url, username=fritz.username,
                                     password=SecretStr(fritz.password),
                                     tr064_url=fritz.tr064_url, timezone="Europe/Berlin")],
            thinknx=[ThinknxConfig.model_validate(knx.config_dict(name="villa"))],
            overkiz=[OverkizConfig(name="tahoma", url=overkiz.url, username=overkiz.username,
                                   password=SecretStr(overkiz.password),
                                   timezone="Europe/Paris")],
        )

        async def collect() -> None:
            app = App(config)
            try:
                outcomes = await app.once()
                assert all(o.ok for o in outcomes), [o.errors for o in outcomes]
                done = await run_backfill(app, datetime.now(UTC) - timedelta(days=3))
                assert all(not o.errors for o in done), [o.errors for o in done]
            finally:
                await app.aclose()

        asyncio.run(collect())
        # the hourly rollups of everything collected, as the continuous queries compute them
        setup_store(config)
        assert config.influxdb is not None
        now_ns = int(datetime.now(UTC).timestamp()) * 10**9
        fill_v1(config.influxdb, now_ns - 400 * 86_400 * 10**9, now_ns + 3600 * 10**9)
    yield db


def _panels() -> list[tuple[str, dict[str, Any]]]:
    return [(name, panel) for name in BOARDS for panel in load(name)["panels"]]



@pytest.mark.parametrize(("board", "panel"), _panels(),
                         ids=[f"{b}:{p['title']}" for b, p in _panels()])
def test_every_panel_query_returns_data_in_its_unit(
    influxd: Influxd, filled: str, board: str, panel: dict[str, Any]
) -> None:
    variables = load(board)["templating"]["list"]
    now = datetime.now(UTC) + timedelta(seconds=5)
    unit = panel["fieldConfig"]["defaults"]["unit"]
    for target in panel["targets"]:
        # each query where it answers: the hourly rollups from a 1-hour interval on (60
        # days), the raw queries of the daily panels with the rollups off
        days = 60 if "$__interval_ms >= 3600000" in target["query"] else 7
        off = "'$rollups' != 'rollup_1h'" in target["query"] and " OR " not in target["query"]
        grafana = Grafana(start=now - timedelta(days=days), end=now,
                          text={"rollups": "autogen"} if off else {})
        grafana.resolve(influxd, filled, variables)
        start_ms, end_ms = grafana.window(panel)
        query = grafana.interpolate(target["query"], variables, panel)
        series, pairs = values(influxd.query(query, filled))
        assert series and pairs, (panel["title"], target["refId"], query)
        if unit == "none":  # a state: every value is one of the codes of its name
            named = re.findall(r"\"name\" = '(\w+)'", target["query"])
            for s in series:
                state = named[0] if named else s["tags"]["name"]
                codes = {code for code, _ in STATE_BY_NAME[state].codes}
                labels = {label for _, label in STATE_BY_NAME[state].codes}
                _, found = values({"results": [{"series": [s]}]})
                assert {v for _, v in found} <= codes, (state, found)
                if "label" in s["columns"]:  # the table shows the label the device wrote
                    column = s["columns"].index("label")
                    assert {row[column] for row in s["values"]} <= labels, state
        else:
            low, high = RANGES[unit]
            assert all(low <= v <= high for _, v in pairs), (panel["title"], unit, pairs)
        grouped = "GROUP BY time(" in query
        if grouped or not re.search(r"SELECT \w+\(", query):  # points or buckets: times
            slack = 86_400_000 if grouped else 0  # a bucket may start before the range
            times = [t // 1_000_000 for t, _ in pairs]
            assert all(start_ms - slack <= t <= end_ms for t in times), panel["title"]
        if "tz('$timezone')" in target["query"]:  # calendar days of the dashboard's zone
            for t, _ in pairs:
                local = datetime.fromtimestamp(t / 1e9, BERLIN)
                assert (local.hour, local.minute) == (0, 0), (panel["title"], local)


def test_the_variables_list_sites_rooms_and_devices_of_the_devices(
    influxd: Influxd, filled: str
) -> None:
    variables = load("climate.json")["templating"]["list"]
    now = datetime.now(UTC)
    grafana = Grafana(start=now - timedelta(days=7), end=now + timedelta(seconds=5))
    grafana.resolve(influxd, filled, variables)
    # the collector's own series are no site and no device
    assert grafana.options["site"] == ["home", "tahoma", "villa"]
    assert {"Kitchen", "Soggiorno"} <= set(grafana.options["room"])
    assert "spool" not in grafana.options["device"]
    assert not any(":" in d and d.split(":")[0] in ("fritzbox", "thinknx", "overkiz")
                   for d in grafana.options["device"])
    # rooms of one site only
    grafana.selected["site"] = ["villa"]
    grafana.resolve(influxd, filled, variables[:2])
    villa_rooms = grafana.options["room"]
    assert villa_rooms and "Kitchen" not in villa_rooms  # an Overkiz place


def test_selected_values_narrow_the_panels_in_their_regex_form(
    influxd: Influxd, filled: str
) -> None:
    variables = load("climate.json")["templating"]["list"]
    panel = next(p for p in load("climate.json")["panels"]
                 if p["title"] == "Temperature and setpoint per room")
    now = datetime.now(UTC) + timedelta(seconds=5)
    grafana = Grafana(start=now - timedelta(days=7), end=now)
    grafana.resolve(influxd, filled, variables)
    # two sites: (home|villa); every room (.*: devices without a room included)
    grafana.selected["site"] = ["home", "villa"]
    query = grafana.interpolate(panel["targets"][0]["query"], variables, panel)
    assert '"site" =~ /^(home|villa)$/' in query and '"room" =~ /^.*$/' in query
    series, _ = values(influxd.query(query, filled))
    assert {s["tags"]["source"] for s in series} == {"fritzbox", "thinknx"}
    assert any(s["tags"]["room"] == "" for s in series)  # FRITZ! devices without a room
    # one device whose name holds regex characters matches itself only
    special = [d for d in grafana.options["device"] if re.search(r"[^\w ]", d)]
    assert special, grafana.options["device"]
    for device in special:
        grafana.selected["device"] = [device]
        query = grafana.interpolate(
            "SELECT count(\"value\") FROM /.*/ WHERE $timeFilter AND "
            "\"device\" =~ /^$device$/ GROUP BY \"device\"", variables)
        series, _ = values(influxd.query(query, filled))
        assert {s["tags"]["device"] for s in series} == {device}, query




def _panel(board: str, title: str) -> dict[str, Any]:
    return next(p for p in load(board)["panels"] if p["title"] == title)


def _all_selected(influxd: Influxd, db: str, board: str, days: int) -> Grafana:
    now = datetime.now(UTC) + timedelta(seconds=5)
    grafana = Grafana(start=now - timedelta(days=days), end=now)
    grafana.resolve(influxd, db, load(board)["templating"]["list"])
    return grafana


def test_temperatures_of_all_three_systems_share_one_panel(influxd: Influxd,
                                                           filled: str) -> None:
    grafana = _all_selected(influxd, filled, "climate.json", 7)
    panel = _panel("climate.json", "Temperature and setpoint per room")
    variables = load("climate.json")["templating"]["list"]
    raw = panel["targets"][:2]  # over a week: the raw queries (C and D: the rollups)
    for target in raw:
        query = grafana.interpolate(target["query"], variables, panel)
        series, _ = values(influxd.query(query, filled))
        assert {s["tags"]["source"] for s in series} == {"fritzbox", "thinknx", "overkiz"}


def test_power_panels_leave_out_fritz_groups(influxd: Influxd, filled: str) -> None:
    groups = {r["value"] for r in influxd.rows(
        "SHOW TAG VALUES FROM \"power_w\" WITH KEY = \"device\" WHERE \"scope\" = 'group'",
        filled)}
    assert groups  # the simulated box has a group of plugs
    grafana = _all_selected(influxd, filled, "energy.json", 7)
    variables = load("energy.json")["templating"]["list"]
    for title in ("Current power per device", "Power over time"):
        panel = _panel("energy.json", title)
        query = grafana.interpolate(panel["targets"][0]["query"], variables, panel)
        series, _ = values(influxd.query(query, filled))
        devices = {s["tags"]["device"] for s in series}
        assert devices and not devices & groups, title


def test_daily_meter_energy_is_the_difference_of_the_meter_totals(
    influxd: Influxd, filled: str
) -> None:
    """Each day of the panel equals the last total reading of that Berlin day minus the last
    of the day before, computed here from the raw points: per-tariff indexes of the same
    meter (tag ``tariff``) do not mix in."""
    grafana = _all_selected(influxd, filled, "energy.json", 30)
    panel = _panel("energy.json", "Energy per day (meter)")
    query = grafana.interpolate(panel["targets"][0]["query"],
                                load("energy.json")["templating"]["list"], panel)
    series, _ = values(influxd.query(query, filled))
    checked = 0
    for s in series:
        device = s["tags"]["device"]
        raw = influxd.rows(f"SELECT \"value\", \"tariff\" FROM \"energy_wh\" WHERE "
                           f"\"device\" = '{device}'", filled)
        last: dict[str, float] = {}
        for row in sorted(raw, key=lambda r: r["time"]):
            if not row.get("tariff"):
                day = datetime.fromtimestamp(row["time"] / 1e9, BERLIN).date().isoformat()
                last[day] = row["value"]
        days = sorted(last)
        expected = {d: last[d] - last[p] for p, d in pairwise(days)}
        for t, value in s["values"]:
            day = datetime.fromtimestamp(t / 1e9, BERLIN).date().isoformat()
            if day in expected:
                assert value == pytest.approx(expected[day]), (device, day)
                checked += 1
    assert checked >= 4  # the Overkiz meters' backfilled days
    tariffs = influxd.rows("SELECT count(\"value\") FROM \"energy_wh\" WHERE \"tariff\" != ''",
                           filled)
    assert tariffs and tariffs[0]["count"] > 0  # there were tariff indexes to leave out
