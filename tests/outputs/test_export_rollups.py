"""``collector export --resample`` and ``analysis.load(resample=...)`` read the hourly
rollups of InfluxDB 1.x where they give the numbers of the raw points: hand-written points
with uneven hours, rollups filled, then one more raw point written that the rollups do not
know (as no continuous query runs here), so the numbers tell which one answered. Expected
values worked out by hand."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from collector.config import Config, InfluxConfig, StoreConfig
from collector.outputs.analysis import load
from collector.outputs.export import ExportRequest, Selection, export, parse_time
from collector.outputs.export_shape import zone
from collector.stores.setup import setup_store
from collector.stores.setup_v1 import fill_v1
from tests.influxd import Influxd

BERLIN = ZoneInfo("Europe/Berlin")
TAGS = "device=Plug,device_id=087610,site=home,source=fritzbox"


def ns(text: str) -> int:
    value = parse_time(text)
    assert value is not None
    return value


#: Berlin days (UTC+1): 4 March: 100, 200, 600 W (mean 300; a mean of the hourly means
#: would be 375); 5 March: 50, 150, 250, 350 W (mean 200; of hourly means 150); 6 March: 80.
POWER = [("2025-03-03T23:00:00Z", 100), ("2025-03-03T23:30:00Z", 200),
         ("2025-03-04T10:00:00Z", 600), ("2025-03-04T23:15:00Z", 50),
         ("2025-03-05T12:00:00Z", 150), ("2025-03-05T12:20:00Z", 250),
         ("2025-03-05T12:40:00Z", 350), ("2025-03-06T00:00:00Z", 80)]
#: The meter: last reading of each Berlin day 1010, 1040, 1055.
METER = [("2025-03-03T23:10:00Z", 1000), ("2025-03-04T22:50:00Z", 1010),
         ("2025-03-05T08:00:00Z", 1030), ("2025-03-05T22:59:00Z", 1040),
         ("2025-03-06T03:00:00Z", 1055)]


@pytest.fixture
def filled(influxd: Influxd, influx_db: str) -> Config:
    config = Config(store=StoreConfig(kind="influxdb"),
                    influxdb=InfluxConfig(url=influxd.url, api="v1", database=influx_db))
    lines = [f"power_w,{TAGS} value={v} {ns(t)}" for t, v in POWER]
    lines += [f"energy_wh,{TAGS} value={v} {ns(t)}" for t, v in METER]
    influxd.write(influx_db, "\n".join(lines)).raise_for_status()
    setup_store(config)
    assert config.influxdb is not None
    fill_v1(config.influxdb, ns("2025-03-03T00:00:00Z"), ns("2025-03-07T00:00:00Z"))
    # after the fill: raw data says 5 March's mean is 360 and its meter ends at 1050; the
    # rollup still says 200 and 1040
    influxd.write(influx_db, f"power_w,{TAGS} value=1000 {ns('2025-03-05T12:50:00Z')}\n"
                  f"energy_wh,{TAGS} value=1050 {ns('2025-03-05T22:59:30Z')}").raise_for_status()
    return config


def exported(config: Config, measurement: str, step: str, tz: str) -> list[tuple[str, str]]:
    out = io.StringIO()
    req = ExportRequest((measurement,), Selection(ns("2025-03-04T00:00:00+01:00"),
                                                  ns("2025-03-07T00:00:00+01:00")),
                        resample=step, tz=zone(tz))
    export(config, req, stdout=out)
    return [(r["time"], r["value"]) for r in csv.DictReader(io.StringIO(out.getvalue()))]


def test_daily_means_and_meter_readings_come_from_the_rollup(filled: Config) -> None:
    assert exported(filled, "power_w", "1d", "Europe/Berlin") == [
        ("2025-03-04T00:00:00+01:00", "300.0"),
        ("2025-03-05T00:00:00+01:00", "200.0"),
        ("2025-03-06T00:00:00+01:00", "80.0"),
    ]
    assert exported(filled, "energy_wh", "1d", "Europe/Berlin") == [
        ("2025-03-04T00:00:00+01:00", "1010.0"),
        ("2025-03-05T00:00:00+01:00", "1040.0"),
        ("2025-03-06T00:00:00+01:00", "1055.0"),
    ]


def test_load_resamples_from_the_rollup(filled: Config) -> None:
    df = load("power_w", datetime(2025, 3, 4, tzinfo=BERLIN), datetime(2025, 3, 7, tzinfo=BERLIN),
              config=filled, tz="Europe/Berlin", resample="1d")
    assert [(t.isoformat(), v) for t, v in zip(df.index, df["value"], strict=True)] == [
        ("2025-03-04T00:00:00+01:00", 300.0),
        ("2025-03-05T00:00:00+01:00", 200.0),
        ("2025-03-06T00:00:00+01:00", 80.0),
    ]
    assert set(df["device"]) == {"Plug"} and set(df["unit"]) == {"W"}


def test_hours_of_a_half_hour_zone_are_read_raw(filled: Config) -> None:
    # Kolkata is UTC+5:30: its hours are no UTC hours, the raw points answer, the point
    # written after the fill among them
    assert exported(filled, "power_w", "1h", "Asia/Kolkata") == [
        ("2025-03-04T04:00:00+05:30", "100.0"),  # 04:30
        ("2025-03-04T05:00:00+05:30", "200.0"),  # 05:00
        ("2025-03-04T15:00:00+05:30", "600.0"),  # 15:30
        ("2025-03-05T04:00:00+05:30", "50.0"),  # 04:45
        ("2025-03-05T17:00:00+05:30", "200.0"),  # 17:30 150, 17:50 250
        ("2025-03-05T18:00:00+05:30", "675.0"),  # 18:10 350, 18:20 1000 (after the fill)
        ("2025-03-06T05:00:00+05:30", "80.0"),  # 05:30
    ]


def test_a_partial_first_day_and_the_last_hours_are_read_raw(filled: Config) -> None:
    from collector.outputs.export_rollup import resampled

    sel = Selection(ns("2025-03-04T10:00:00Z"), ns("2025-03-07T00:00:00+01:00"))
    # 4 March from 11:00 Berlin on: raw, 600 alone; 5 March: the rollup
    got = [(t, v) for t, _, v, _ in resampled(filled, "power_w", sel, 86400, BERLIN)]
    assert got == [(ns("2025-03-04T00:00:00+01:00"), 600.0),
                   (ns("2025-03-05T00:00:00+01:00"), 200.0),
                   (ns("2025-03-06T00:00:00+01:00"), 80.0)]
    # seen at 14:30 Berlin on 5 March, that day is within 3 hours of now: raw,
    # (50 + 150 + 250 + 350 + 1000) / 5
    now = ns("2025-03-05T13:30:00Z")
    got = [(t, v) for t, _, v, _ in resampled(filled, "power_w", sel, 86400, BERLIN,
                                               now_ns=now)]
    assert got == [(ns("2025-03-04T00:00:00+01:00"), 600.0),
                   (ns("2025-03-05T00:00:00+01:00"), 360.0),
                   (ns("2025-03-06T00:00:00+01:00"), 80.0)]
