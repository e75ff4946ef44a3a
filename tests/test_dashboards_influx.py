"""Every panel query of every dashboard, run against a real InfluxDB filled by the simulators.

The FRITZ!Box, Thinknx and Overkiz simulators are polled once by the collector's own
pipeline (App -> spool -> InfluxDB v1 store) and their device history is backfilled; then
each query is interpolated as Grafana does it (``$timeFilter``, ``$__interval``,
``$__interval_ms``, the variables in their regex form) and must answer with data in the
panel's unit. The daylight-saving case checks daily energy on the 23- and 25-hour days of
Europe/Berlin against totals computed by hand.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from collector.app import App
from collector.backfill import run_backfill
from collector.config import (
    Config,
    FritzboxConfig,
    InfluxConfig,
    OverkizConfig,
    SpoolConfig,
    StoreConfig,
    ThinknxConfig,
)
from collector.lineprotocol import Encoder
from collector.model import Reading, make_tags
from collector.schema import STATE_BY_NAME
from collector.simulators.fritzbox import FritzboxSimulator
from collector.simulators.overkiz import OverkizSimulator
from collector.simulators.thinknx import ThinknxSimulator
from tests.influxd import Influxd

ROOT = Path(__file__).resolve().parents[1]
BOARDS = ("energy.json", "climate.json", "devices.json")
BERLIN = ZoneInfo("Europe/Berlin")
#: what the panels' maxDataPoints come to on a common screen
MAX_DATA_POINTS = 1000
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
#: (upper bound in ms, Grafana's interval) of its interval rounding (kbn.roundInterval)
_ROUNDING: tuple[tuple[int, int], ...] = (
    (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000),
    (3500, 2000), (7500, 5000), (12500, 10_000), (17500, 15_000), (25000, 20_000),
    (45000, 30_000), (90000, 60_000), (210_000, 120_000), (450_000, 300_000),
    (1_050_000, 600_000), (2_100_000, 900_000), (4_500_000, 1_800_000),
    (9_000_000, 3_600_000), (17_280_000, 7_200_000), (34_560_000, 21_600_000),
    (64_800_000, 43_200_000), (604_800_000, 86_400_000), (1_814_400_000, 604_800_000),
    (3_628_800_000, 2_592_000_000),
)


def _load(name: str) -> dict[str, Any]:
    data = json.loads((ROOT / "dashboards" / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def interval_ms(range_ms: int, max_points: int = MAX_DATA_POINTS) -> int:
    raw = range_ms / max_points
    for bound, rounded in _ROUNDING:
        if raw < bound:
            return rounded
    return 365 * 86_400_000


def interval_text(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def regex_escape(value: str) -> str:
    """Grafana's regex escaping of a variable value (``/`` too: it ends an InfluxQL regex)."""
    return re.sub(r"[\\^$*+?.()|\[\]{}/]", lambda m: "\\" + m.group(0), value)


@dataclass
class Grafana:
    """The interpolation Grafana does before a query goes to InfluxDB."""

    start: datetime
    end: datetime
    #: query variables: the values selected (None: "All")
    selected: dict[str, list[str] | None] = field(default_factory=dict)
    #: query variables: every value their own query gave
    options: dict[str, list[str]] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)

    def window(self, panel: dict[str, Any] | None) -> tuple[int, int]:
        start = self.start
        if panel is not None and panel.get("timeFrom"):
            amount, unit = int(panel["timeFrom"][:-1]), panel["timeFrom"][-1]
            days = {"d": 1, "y": 365}[unit] * amount
            start = self.end - timedelta(days=days)
        return int(start.timestamp() * 1000), int(self.end.timestamp() * 1000)

    def value(self, var: dict[str, Any]) -> str:
        name = var["name"]
        if var["type"] == "textbox":
            return self.text.get(name, var["query"])
        chosen = self.selected.get(name)
        if chosen is None and var.get("allValue"):
            return str(var["allValue"])  # a custom "All" value goes in as it is
        values = self.options[name] if chosen is None else chosen
        escaped = [regex_escape(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"

    def interpolate(self, query: str, variables: Sequence[dict[str, Any]],
                    panel: dict[str, Any] | None = None) -> str:
        start_ms, end_ms = self.window(panel)
        step = interval_ms(end_ms - start_ms)
        out = query.replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")
        out = out.replace("$__interval_ms", str(step)).replace("$__interval",
                                                                interval_text(step))
        for var in sorted(variables, key=lambda v: -len(v["name"])):
            if var["name"] in self.options or var["type"] == "textbox":
                value = self.value(var)
                for form in (f"${{{var['name']}}}", f"[[{var['name']}]]", f"${var['name']}"):
                    out = out.replace(form, value)
        assert not re.search(r"(?<!\\)\$[{\w]|\[\[", out), out  # every reference replaced
        return out

    def resolve(self, influxd: Influxd, db: str, variables: Sequence[dict[str, Any]]) -> None:
        """Run the variable queries in order, as Grafana refreshes them on load."""
        for var in variables:
            if var["type"] != "query":
                continue
            rows = influxd.rows(self.interpolate(var["query"], variables), db)
            self.options[var["name"]] = sorted({r["value"] for r in rows})
            # none at all only where "All" has a value of its own (a site without rooms)
            assert self.options[var["name"]] or var.get("allValue"), var["name"]


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
    yield db


def _panels() -> list[tuple[str, dict[str, Any]]]:
    return [(name, panel) for name in BOARDS for panel in _load(name)["panels"]]


def _values(result: dict[str, Any]) -> tuple[list[dict[str, Any]], list[tuple[int, float]]]:
    """The series of an answer and its (time, number) pairs (every numeric column)."""
    (stmt,) = result["results"]
    assert "error" not in stmt, stmt
    series = stmt.get("series", [])
    pairs = []
    for s in series:
        for row in s["values"]:
            for col, cell in zip(s["columns"][1:], row[1:], strict=True):
                if isinstance(cell, int | float) and col != "label":
                    pairs.append((row[0], float(cell)))
    return series, pairs


@pytest.mark.parametrize(("board", "panel"), _panels(),
                         ids=[f"{b}:{p['title']}" for b, p in _panels()])
def test_every_panel_query_returns_data_in_its_unit(
    influxd: Influxd, filled: str, board: str, panel: dict[str, Any]
) -> None:
    variables = _load(board)["templating"]["list"]
    now = datetime.now(UTC) + timedelta(seconds=5)
    grafana = Grafana(start=now - timedelta(days=7), end=now)
    grafana.resolve(influxd, filled, variables)
    unit = panel["fieldConfig"]["defaults"]["unit"]
    start_ms, end_ms = grafana.window(panel)
    for target in panel["targets"]:
        query = grafana.interpolate(target["query"], variables, panel)
        series, pairs = _values(influxd.query(query, filled))
        assert series and pairs, (panel["title"], target["refId"], query)
        if unit == "none":  # a state: every value is one of the codes of its name
            named = re.findall(r"\"name\" = '(\w+)'", target["query"])
            for s in series:
                state = named[0] if named else s["tags"]["name"]
                codes = {code for code, _ in STATE_BY_NAME[state].codes}
                labels = {label for _, label in STATE_BY_NAME[state].codes}
                _, found = _values({"results": [{"series": [s]}]})
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
    variables = _load("climate.json")["templating"]["list"]
    now = datetime.now(UTC)
    grafana = Grafana(start=now - timedelta(days=7), end=now + timedelta(seconds=5))
    grafana.resolve(influxd, filled, variables)
    # the collector's own series are no site and no device
    assert grafana.options["site"] == ["home", "tahoma", "villa"]
    assert {"Ground floor", "Soggiorno"} <= set(grafana.options["room"])
    assert "spool" not in grafana.options["device"]
    assert not any(":" in d and d.split(":")[0] in ("fritzbox", "thinknx", "overkiz")
                   for d in grafana.options["device"])
    # rooms of one site only
    grafana.selected["site"] = ["villa"]
    grafana.resolve(influxd, filled, variables[:2])
    villa_rooms = grafana.options["room"]
    assert villa_rooms and "Ground floor" not in villa_rooms  # an Overkiz place


def test_selected_values_narrow_the_panels_in_their_regex_form(
    influxd: Influxd, filled: str
) -> None:
    variables = _load("climate.json")["templating"]["list"]
    panel = next(p for p in _load("climate.json")["panels"]
                 if p["title"] == "Temperature and setpoint per room")
    now = datetime.now(UTC) + timedelta(seconds=5)
    grafana = Grafana(start=now - timedelta(days=7), end=now)
    grafana.resolve(influxd, filled, variables)
    # two sites: (home|villa); every room (.*: devices without a room included)
    grafana.selected["site"] = ["home", "villa"]
    query = grafana.interpolate(panel["targets"][0]["query"], variables, panel)
    assert '"site" =~ /^(home|villa)$/' in query and '"room" =~ /^.*$/' in query
    series, _ = _values(influxd.query(query, filled))
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
        series, _ = _values(influxd.query(query, filled))
        assert {s["tags"]["device"] for s in series} == {device}, query


# --- daylight saving: daily energy on the 23- and 25-hour days of Europe/Berlin ------------

#: Wh per hour of the two simulated meters
RATES = {"Meter A": 100.0, "Meter B": 250.0}


def _hourly_meters(first: datetime, last: datetime) -> list[Reading]:
    """Both meters read on every full UTC hour; each hour adds its rate to the counter. Each
    device also reports its own daily total at local midnight (what FRITZ! statistics do)."""
    out: list[Reading] = []
    hours = int((last - first).total_seconds() // 3600)
    for device, rate in RATES.items():
        device_id = device.replace(" ", "-").lower()
        for h in range(hours + 1):
            out.append(Reading("energy_wh", 10_000.0 + rate * h, first + timedelta(hours=h),
                               "fritzbox", "dst", device_id, device))
        day = first.astimezone(BERLIN).replace(hour=0, minute=0)
        while day < last:
            after = (day + timedelta(days=1, hours=3)).replace(hour=0)
            # 23, 24 or 25 (in UTC: the difference of two Berlin times is wall-clock time)
            length_h = (after.astimezone(UTC) - day.astimezone(UTC)).total_seconds() / 3600
            out.append(Reading("energy_period_wh", rate * length_h, day.astimezone(UTC),
                               "fritzbox", "dst", device_id, device,
                               make_tags(period="day")))
            day = after
    return out


@pytest.mark.parametrize(("first", "start", "end", "per_day"), [
    # spring: 2024-03-31 has 23 hours (02:00 CET -> 03:00 CEST)
    (datetime(2024, 3, 28, tzinfo=UTC), datetime(2024, 3, 29, tzinfo=UTC),
     datetime(2024, 4, 1, 21, 59, 59, tzinfo=UTC),
     {"2024-03-29": 24, "2024-03-30": 24, "2024-03-31": 23, "2024-04-01": 24}),
    # autumn: 2024-10-27 has 25 hours (03:00 CEST -> 02:00 CET)
    (datetime(2024, 10, 24, tzinfo=UTC), datetime(2024, 10, 25, tzinfo=UTC),
     datetime(2024, 10, 28, 22, 59, 59, tzinfo=UTC),
     {"2024-10-25": 24, "2024-10-26": 24, "2024-10-27": 25, "2024-10-28": 24}),
])
def test_daily_energy_is_right_on_daylight_saving_days(
    influxd: Influxd, influx_db: str, first: datetime, start: datetime, end: datetime,
    per_day: dict[str, int],
) -> None:
    encoder = Encoder()
    body = "\n".join(encoder.encode(r) for r in _hourly_meters(first, end + timedelta(days=1)))
    assert influxd.write(influx_db, body).status_code == 204
    board = _load("energy.json")
    variables = board["templating"]["list"]
    panels = {p["title"]: p for p in board["panels"]}
    grafana = Grafana(start=start, end=end, text={"timezone": "Europe/Berlin"})
    grafana.resolve(influxd, influx_db, variables)
    assert grafana.options["device"] == ["Meter A", "Meter B"]

    # from the meter: the difference of the last readings of consecutive local days (the
    # first day of the range too: InfluxDB reads the bucket before the range for it)
    meter = panels["Energy per day (meter)"]
    query = grafana.interpolate(meter["targets"][0]["query"], variables, meter)
    series, _ = _values(influxd.query(query, influx_db))
    got = {(s["tags"]["device"], _local_day(t)): v for s in series for t, v in s["values"]}
    # hand-computed: 100 and 250 Wh for every hour the local day has
    assert got == {
        **{("Meter A", day): {23: 2300, 24: 2400, 25: 2500}[h] for day, h in per_day.items()},
        **{("Meter B", day): {23: 5750, 24: 6000, 25: 6250}[h] for day, h in per_day.items()},
    }
    # from the devices' daily totals: each lands in its own local day, A + B
    stats = panels["Energy per day (device statistics)"]
    query = grafana.interpolate(stats["targets"][0]["query"], variables, stats)
    (only,), _ = _values(influxd.query(query, influx_db))
    totals = {_local_day(t): v for t, v in only["values"]}
    # the first day's total is stamped at its midnight, before the range: not in it
    inside = dict(list(per_day.items())[1:])
    assert totals == {day: {23: 8050, 24: 8400, 25: 8750}[h] for day, h in inside.items()}
    # a cost of 0.30 per kWh: the same days times 0.3
    cost = panels["Cost per day"]
    query = grafana.interpolate(cost["targets"][0]["query"], variables, cost)
    (only,), _ = _values(influxd.query(query, influx_db))
    assert {_local_day(t): v for t, v in only["values"]} == pytest.approx(
        {day: {23: 2.415, 24: 2.52, 25: 2.625}[h] for day, h in inside.items()})


def _local_day(t_ns: int) -> str:
    local = datetime.fromtimestamp(t_ns / 1e9, BERLIN)
    assert (local.hour, local.minute) == (0, 0), local  # buckets start at local midnight
    return local.date().isoformat()


_NAMES = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=16)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=_NAMES, other=_NAMES)
def test_a_selected_device_matches_itself_whatever_its_name(
    influxd: Influxd, influx_db: str, name: str, other: str
) -> None:
    """A device name with regex or InfluxQL characters, in the regex form Grafana gives it,
    selects exactly that device. The names are taken back from SHOW TAG VALUES, as the
    variable does (line protocol cannot end a tag value with a backslash: the encoder
    changes it)."""
    when = datetime(2024, 6, 1, tzinfo=UTC)
    ids = [f"id{next(_ids)}" for _ in range(2)]
    lines = [Encoder().encode(Reading("power_w", 1.0, when, "fritzbox", "s", i, n))
             for i, n in zip(ids, (name, other), strict=True)]
    assert influxd.write(influx_db, "\n".join(lines)).status_code == 204
    stored = [influxd.rows(f'SHOW TAG VALUES FROM "power_w" WITH KEY = "device" '
                           f"WHERE \"device_id\" = '{i}'", influx_db)[0]["value"] for i in ids]
    variables = [{"name": "device", "type": "query", "multi": True, "includeAll": True}]
    grafana = Grafana(start=when - timedelta(hours=1), end=when + timedelta(hours=1),
                      selected={"device": stored[:1]}, options={"device": stored})
    query = grafana.interpolate('SELECT count("value") FROM "power_w" WHERE $timeFilter AND '
                                '"device" =~ /^$device$/ GROUP BY "device"', variables)
    series, _ = _values(influxd.query(query, influx_db))
    assert [s["tags"]["device"] for s in series] == stored[:1], query
    # both selected: (a|b)
    grafana.selected["device"] = stored
    query = grafana.interpolate('SELECT count("value") FROM "power_w" WHERE $timeFilter AND '
                                '"device" =~ /^$device$/ GROUP BY "device"', variables)
    series, _ = _values(influxd.query(query, influx_db))
    assert sorted(s["tags"]["device"] for s in series) == sorted(set(stored)), query


_ids = itertools.count()
