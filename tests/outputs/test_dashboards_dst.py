"""Daily energy on the 23- and 25-hour days of Europe/Berlin (from the hourly rollups the
daily panels read), and device names of any spelling, through the dashboards' own queries
against a real InfluxDB."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.config import Config, InfluxConfig, StoreConfig
from collector.lineprotocol import Encoder
from collector.model import Reading, make_tags
from collector.stores.setup import setup_store
from collector.stores.setup_v1 import fill_v1
from tests.influxd import Influxd
from tests.outputs.test_dashboards_grafana import Grafana, load, values

BERLIN = ZoneInfo("Europe/Berlin")

#: Wh per hour of the two simulated meters
RATES = {"Meter A": 100.0, "Meter B": 250.0}


def _hourly_meters(first: datetime, last: datetime) -> list[Reading]:
    """Both meters read on every full UTC hour; each hour adds its rate to the counter. Each
    device also reports its own daily total at local midnight (what FRITZ! statistics do).
    Around them, readings the daily panels must leave out: a per-tariff index of Meter A
    read at half past (it would be the day's last reading) and a FRITZ! group of both
    meters (``scope = group``) with its own meter and daily totals."""
    out: list[Reading] = []
    hours = int((last - first).total_seconds() // 3600)
    meters = [(device, rate, ()) for device, rate in RATES.items()]
    meters.append(("Both meters", sum(RATES.values()), make_tags(scope="group")))
    for device, rate, extra in meters:
        device_id = device.replace(" ", "-").lower()
        for h in range(hours + 1):
            out.append(Reading("energy_wh", 10_000.0 + rate * h, first + timedelta(hours=h),
                               "fritzbox", "dst", device_id, device, extra))
        day = first.astimezone(BERLIN).replace(hour=0, minute=0)
        while day < last:
            after = (day + timedelta(days=1, hours=3)).replace(hour=0)
            # 23, 24 or 25 (in UTC: the difference of two Berlin times is wall-clock time)
            length_h = (after.astimezone(UTC) - day.astimezone(UTC)).total_seconds() / 3600
            out.append(Reading("energy_period_wh", rate * length_h, day.astimezone(UTC),
                               "fritzbox", "dst", device_id, device,
                               make_tags(period="day", scope=dict(extra).get("scope"))))
            day = after
    out += [Reading("energy_wh", 500.0 + 40.0 * h, first + timedelta(hours=h, minutes=30),
                    "fritzbox", "dst", "meter-a", "Meter A", make_tags(tariff="1"))
            for h in range(hours + 1)]
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
    # the daily panels read the hourly rollups: computed as the continuous queries do
    config = Config(store=StoreConfig(kind="influxdb"),
                    influxdb=InfluxConfig(url=influxd.url, api="v1", database=influx_db))
    setup_store(config)
    assert config.influxdb is not None
    fill_v1(config.influxdb, int((first - timedelta(days=1)).timestamp()) * 10**9,
            int((end + timedelta(days=2)).timestamp()) * 10**9)
    board = load("energy.json")
    variables = board["templating"]["list"]
    panels = {p["title"]: p for p in board["panels"]}
    grafana = Grafana(start=start, end=end, text={"timezone": "Europe/Berlin"})
    grafana.resolve(influxd, influx_db, variables)
    assert grafana.options["device"] == ["Both meters", "Meter A", "Meter B"]

    # from the meter: the difference of the last readings of consecutive local days (the
    # first day of the range too: InfluxDB reads the bucket before the range for it)
    meter = panels["Energy per day (meter)"]
    query = grafana.interpolate(meter["targets"][0]["query"], variables, meter)
    series, _ = values(influxd.query(query, influx_db))
    got = {(s["tags"]["device"], _local_day(t)): v for s in series for t, v in s["values"]}
    # hand-computed: 100 and 250 Wh for every hour the local day has
    assert got == {
        **{("Meter A", day): {23: 2300, 24: 2400, 25: 2500}[h] for day, h in per_day.items()},
        **{("Meter B", day): {23: 5750, 24: 6000, 25: 6250}[h] for day, h in per_day.items()},
    }
    # from the devices' daily totals: each lands in its own local day, A + B
    stats = panels["Energy per day (device statistics)"]
    query = grafana.interpolate(stats["targets"][0]["query"], variables, stats)
    (only,), _ = values(influxd.query(query, influx_db))
    totals = {_local_day(t): v for t, v in only["values"]}
    # the first day's total is stamped at its midnight, before the range: not in it
    inside = dict(list(per_day.items())[1:])
    assert totals == {day: {23: 8050, 24: 8400, 25: 8750}[h] for day, h in inside.items()}
    # a cost of 0.30 per kWh: the same days times 0.3
    cost = panels["Cost per day"]
    query = grafana.interpolate(cost["targets"][0]["query"], variables, cost)
    (only,), _ = values(influxd.query(query, influx_db))
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
    series, _ = values(influxd.query(query, influx_db))
    assert [s["tags"]["device"] for s in series] == stored[:1], query
    # both selected: (a|b)
    grafana.selected["device"] = stored
    query = grafana.interpolate('SELECT count("value") FROM "power_w" WHERE $timeFilter AND '
                                '"device" =~ /^$device$/ GROUP BY "device"', variables)
    series, _ = values(influxd.query(query, influx_db))
    assert sorted(s["tags"]["device"] for s in series) == sorted(set(stored)), query


_ids = itertools.count()
