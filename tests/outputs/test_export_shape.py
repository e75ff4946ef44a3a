"""Resampling, the wide form and time zones, checked against tables computed by hand."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.config import Config, StoreConfig
from collector.errors import ConfigError
from collector.lineprotocol import encode_many
from collector.model import Reading, make_tags
from collector.outputs.export import ExportRequest, Selection, export, parse_time
from collector.outputs.export_shape import Buckets, formatter, resample, step_seconds, zone
from collector.stores.sqlite import SqliteStore

BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def fill(tmp_path: Path, readings: list[Reading]) -> Config:
    path = tmp_path / "collector.sqlite3"
    store = SqliteStore(path)
    store.write_sync(encode_many(readings))
    store.close()
    return Config(store=StoreConfig(kind="sqlite", path=path))


def table(config: Config, req: ExportRequest) -> list[list[str]]:
    out = io.StringIO()
    export(config, req, stdout=out)
    return list(csv.reader(io.StringIO(out.getvalue())))


def plug(measurement: str, value: float, minutes: float, device: str = "A", **tags: str
         ) -> Reading:
    return Reading(measurement, value, at(minutes), "fritzbox", "home", device.lower(), device,
                   make_tags(room="Kitchen" if device == "A" else None, **tags))


@pytest.fixture
def store(tmp_path: Path) -> Config:
    return fill(tmp_path, [
        plug("power_w", 10.0, 0), plug("power_w", 20.0, 20), plug("power_w", 30.0, 40),
        plug("power_w", 40.0, 70), plug("power_w", 5.0, 20, "B"),
        plug("energy_wh", 100.0, 0), plug("energy_wh", 110.0, 20),
        plug("energy_wh", 130.0, 40), plug("energy_wh", 150.0, 70),
        plug("energy_period_wh", 3.0, 0, period="day"),
        plug("energy_period_wh", 4.5, 30, period="day"),
        plug("energy_period_wh", 2.0, 60, period="day"),
        Reading("state", 1.0, at(5), "fritzbox", "home", "a", "A", make_tags(name="switch"),
                "on"),
        Reading("state", 0.0, at(50), "fritzbox", "home", "a", "A", make_tags(name="switch"),
                "off"),
    ])


def _cells(rows: list[list[str]], *names: str) -> list[tuple[str, ...]]:
    header = rows[0]
    return [tuple(r[header.index(n)] for n in names) for r in rows[1:]]


def test_resample_takes_the_aggregate_of_each_kind(store: Config) -> None:
    rows = table(store, ExportRequest(("power_w", "energy_wh", "energy_period_wh", "state"),
                                      resample="1h"))
    assert _cells(rows, "time", "measurement", "device", "value", "unit", "label") == [
        # gauge: the mean; A over 00:00..00:40 = (10 + 20 + 30) / 3
        ("2026-03-01T00:00:00Z", "power_w", "A", "20.0", "W", ""),
        ("2026-03-01T00:00:00Z", "power_w", "B", "5.0", "W", ""),
        ("2026-03-01T01:00:00Z", "power_w", "A", "40.0", "W", ""),
        # counter: the last reading
        ("2026-03-01T00:00:00Z", "energy_wh", "A", "130.0", "Wh", ""),
        ("2026-03-01T01:00:00Z", "energy_wh", "A", "150.0", "Wh", ""),
        # period totals: the sum
        ("2026-03-01T00:00:00Z", "energy_period_wh", "A", "7.5", "Wh", ""),
        ("2026-03-01T01:00:00Z", "energy_period_wh", "A", "2.0", "Wh", ""),
        # state: the last code and its label
        ("2026-03-01T00:00:00Z", "state", "A", "0.0", "code", "off"),
    ]


def test_resample_15m_in_a_zone(store: Config) -> None:
    rows = table(store, ExportRequest(("power_w",), Selection(device="A"), resample="15m",
                                      tz=BERLIN))
    assert _cells(rows, "time", "value", "room") == [
        ("2026-03-01T01:00:00+01:00", "10.0", "Kitchen"),
        ("2026-03-01T01:15:00+01:00", "20.0", "Kitchen"),
        ("2026-03-01T01:30:00+01:00", "30.0", "Kitchen"),
        ("2026-03-01T02:00:00+01:00", "40.0", "Kitchen"),
    ]


def test_wide_has_one_column_per_device_named_by_device_room_and_unit(store: Config) -> None:
    rows = table(store, ExportRequest(("power_w", "energy_wh"), wide=True))
    assert rows == [
        ["time", "A (Kitchen) energy_wh", "A (Kitchen) power_w", "B power_w"],
        ["2026-03-01T00:00:00Z", "100.0", "10.0", ""],
        ["2026-03-01T00:20:00Z", "110.0", "20.0", "5.0"],
        ["2026-03-01T00:40:00Z", "130.0", "30.0", ""],
        ["2026-03-01T01:10:00Z", "150.0", "40.0", ""],
    ]


def test_wide_and_resampled_by_local_day(store: Config) -> None:
    rows = table(store, ExportRequest(("power_w",), wide=True, resample="1d", tz=BERLIN))
    assert rows == [["time", "A (Kitchen) power_w", "B power_w"],
                    ["2026-03-01T00:00:00+01:00", "25.0", "5.0"]]


def test_csv_to_pandas_keeps_values_units_and_time_zones(store: Config, tmp_path: Path) -> None:
    out = tmp_path / "power.csv"
    export(store, ExportRequest(("power_w",), tz=BERLIN), out)
    df = pd.read_csv(out, keep_default_na=False)
    times = pd.to_datetime(df["time"], format="ISO8601")
    assert str(times.dt.tz) == "UTC+01:00"
    assert list(times.dt.tz_convert("UTC")) == [pd.Timestamp(at(m)) for m in (0, 20, 20, 40, 70)]
    assert df["value"].tolist() == [10.0, 20.0, 5.0, 30.0, 40.0]
    assert df["value"].dtype == "float64"
    assert set(df["unit"]) == {"W"}
    assert df["room"].tolist() == ["Kitchen", "Kitchen", "", "Kitchen", "Kitchen"]


def test_parquet_keeps_types_and_zone(store: Config, tmp_path: Path) -> None:
    out = tmp_path / "power.parquet"
    assert export(store, ExportRequest(("power_w",), fmt="parquet", tz=BERLIN), out) == 5
    df = pd.read_parquet(out)
    assert str(df["time"].dt.tz) == "Europe/Berlin"
    assert df["time"].iloc[0] == pd.Timestamp(at(0))
    assert df["value"].tolist() == [10.0, 20.0, 5.0, 30.0, 40.0]
    assert oct(out.stat().st_mode & 0o777) == "0o600"


# --- properties -------------------------------------------------------------------------------

_TIMES = st.integers(min_value=0, max_value=4_000_000_000).map(lambda s: s * 1_000_000_000)


@given(ns=_TIMES)
def test_a_local_day_holds_its_time_and_starts_at_local_midnight(ns: int) -> None:
    buckets = Buckets(86400, BERLIN)
    start = buckets.start_of(ns)
    local = datetime.fromtimestamp(start / 1e9, BERLIN)
    assert (local.hour, local.minute, local.second) == (0, 0, 0)
    assert local.date() == datetime.fromtimestamp(ns / 1e9, BERLIN).date()
    assert start <= ns
    length_h = (buckets._cur.end_ns - start) / 3.6e12
    assert length_h in (23, 24, 25)


@given(ns=_TIMES, step=st.sampled_from(["15m", "1h"]))
def test_sub_daily_intervals_start_on_the_zone_clock(ns: int, step: str) -> None:
    seconds = step_seconds(step)
    start = Buckets(seconds, ZoneInfo("Asia/Kolkata")).start_of(ns)
    local = datetime.fromtimestamp(start / 1e9, ZoneInfo("Asia/Kolkata"))
    assert (local.minute * 60 + local.second) % seconds == 0
    assert 0 <= ns - start < seconds * 1_000_000_000


@given(values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30),
       step=st.integers(1, 7200))
def test_gauge_resampling_equals_pandas_mean(values: list[float], step: int) -> None:
    rows = [(i * step * 1_000_000_000, {"device": "d"}, v, None) for i, v in enumerate(values)]
    got = {t: v for t, _, v, _ in resample("power_w", rows, 3600, UTC)}
    series = pd.Series(values, index=pd.to_datetime([r[0] for r in rows], unit="ns", utc=True))
    want = series.resample("1h").mean().dropna()
    assert got.keys() == {int(t.value) for t in want.index}
    for t, v in want.items():
        assert got[int(t.value)] == pytest.approx(v, rel=1e-9, abs=1e-6)


@given(ns=_TIMES, tz=st.sampled_from(["UTC", "Europe/Berlin", "America/St_Johns"]))
def test_timestamps_read_back_to_the_same_instant(ns: int, tz: str) -> None:
    text = formatter(zone(tz))(ns)
    assert text.endswith("Z") == (tz == "UTC")
    assert parse_time(text) == ns


def test_relative_and_naive_times() -> None:
    now = datetime(2026, 3, 8, 12, tzinfo=UTC)
    week_ago = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert parse_time("7d", now=now) == int(week_ago.timestamp()) * 10**9
    assert parse_time("2026-03-01") == int(T0.timestamp()) * 10**9
    with pytest.raises(ConfigError, match="--from/--to: 'yesterday'"):
        parse_time("yesterday")


@pytest.mark.parametrize("bad", ["7x", "0h", "7m", "h"])
def test_a_bad_interval_is_named(bad: str) -> None:
    with pytest.raises(ConfigError, match=f"--resample: {bad!r}"):
        step_seconds(bad)


def test_an_unknown_zone_is_named() -> None:
    with pytest.raises(ConfigError, match="--tz: unknown time zone 'Mars/Olympus'"):
        zone("Mars/Olympus")


def test_parquet_wide_and_empty(store: Config, tmp_path: Path) -> None:
    out = tmp_path / "wide.parquet"
    assert export(store, ExportRequest(("power_w",), fmt="parquet", wide=True, resample="1h"),
                  out) == 2
    df = pd.read_parquet(out)
    assert list(df.columns) == ["time", "A (Kitchen) power_w", "B power_w"]
    assert df["A (Kitchen) power_w"].tolist() == [20.0, 40.0]
    assert df["B power_w"].iloc[0] == 5.0 and pd.isna(df["B power_w"].iloc[1])
    assert df["time"].tolist() == [pd.Timestamp(at(0)), pd.Timestamp(at(60))]
    empty = tmp_path / "empty.parquet"
    assert export(store, ExportRequest(("voltage_v",), fmt="parquet"), empty) == 0
    assert list(pd.read_parquet(empty).columns)[:3] == ["time", "measurement", "source"]
