"""Downsampling on a real InfluxDB 1.x: ``collector store setup`` creates the rollup
retention policy and a continuous query per measurement, a second run changes nothing,
``raw_retention`` sets the raw policy's duration, and filling computes the rollups of
hand-written points (expected values worked out by hand)."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from collector.cli import main
from collector.config import Config, InfluxConfig, StoreConfig
from collector.errors import CollectorError
from collector.stores.setup import setup_store
from collector.stores.setup_v1 import StoreSetupError, fill_v1
from tests.influxd import Influxd

H = 3600 * 1_000_000_000
#: 2026-11-02T00:00:00Z
T0 = 1_793_577_600 * 1_000_000_000


def v1(influxd: Influxd, db: str, **kw: Any) -> Config:
    return Config(store=StoreConfig(kind="influxdb"),
                  influxdb=InfluxConfig(url=influxd.url, api="v1", database=db, **kw))


def cqs(influxd: Influxd, db: str) -> dict[str, str]:
    out = {}
    for series in influxd.query("SHOW CONTINUOUS QUERIES")["results"][0].get("series", []):
        if series["name"] == db:
            out.update({name: query for name, query in series.get("values") or []})
    return out


def policies(influxd: Influxd, db: str) -> list[list[Any]]:
    answer = influxd.query(f'SHOW RETENTION POLICIES ON "{db}"')
    return sorted(answer["results"][0]["series"][0]["values"])


def test_setup_creates_the_rollup_policy_and_a_continuous_query_per_measurement(
        influxd: Influxd, influx_db: str) -> None:
    report = setup_store(v1(influxd, influx_db))
    results = {s.part: s.result for s in report.steps}
    assert results["retention policy autogen (raw data)"] == "found"
    assert results["retention policy rollup_1h"] == "created"
    assert policies(influxd, influx_db) == [
        ["autogen", "0s", "168h0m0s", 1, True],
        ["rollup_1h", "0s", "8736h0m0s", 1, False],
    ]
    found = cqs(influxd, influx_db)
    db = influx_db
    assert found["collector_rollup_power_w"] == (
        f"CREATE CONTINUOUS QUERY collector_rollup_power_w ON {db} RESAMPLE EVERY 15m FOR 3h "
        f"BEGIN SELECT mean(value) AS mean, min(value) AS min, max(value) AS max, "
        f"sum(value) AS sum, count(value) AS count, last(value) AS last "
        f"INTO {db}.rollup_1h.power_w "
        f"FROM {db}.autogen.power_w GROUP BY time(1h), * END")
    assert found["collector_rollup_energy_wh"] == (
        f"CREATE CONTINUOUS QUERY collector_rollup_energy_wh ON {db} RESAMPLE EVERY 15m FOR 3h "
        f"BEGIN SELECT last(value) AS value INTO {db}.rollup_1h.energy_wh "
        f"FROM {db}.autogen.energy_wh GROUP BY time(1h), * END")
    assert found["collector_rollup_state"] == (
        f"CREATE CONTINUOUS QUERY collector_rollup_state ON {db} RESAMPLE EVERY 15m FOR 3h "
        f"BEGIN SELECT last(value) AS value, last(label) AS label INTO {db}.rollup_1h.state "
        f"FROM {db}.autogen.state GROUP BY time(1h), * END")
    assert found["collector_rollup_energy_period_wh"] == (
        f"CREATE CONTINUOUS QUERY collector_rollup_energy_period_wh ON {db} RESAMPLE EVERY 1h "
        f"FOR 5w BEGIN SELECT last(value) AS value INTO {db}.rollup_1h.energy_period_wh "
        f"FROM {db}.autogen.energy_period_wh GROUP BY time(1m), * END")
    # one per measurement of the schema table, gauges with the five aggregates
    assert sorted(found) == sorted(f"collector_rollup_{m}" for m in (
        "temperature_c", "setpoint_c", "humidity_pct", "power_w", "energy_wh",
        "energy_period_wh", "voltage_v", "battery_pct", "level_pct", "luminance_lx",
        "co2_ppm", "uptime_s", "clients", "pbx_users", "config_time_s", "voip_clients",
        "state", "collector"))
    assert "mean(value) AS mean" in found["collector_rollup_co2_ppm"]
    assert {s.result for s in report.steps if s.part.startswith("continuous query")} == {
        "created"}


def test_a_second_setup_changes_nothing_and_says_found(influxd: Influxd,
                                                        influx_db: str) -> None:
    config = v1(influxd, influx_db)
    setup_store(config)
    before = (cqs(influxd, influx_db), policies(influxd, influx_db))
    again = setup_store(config)
    assert {s.result for s in again.steps} == {"found"}
    assert (cqs(influxd, influx_db), policies(influxd, influx_db)) == before


def test_the_command_prints_what_it_created_and_found(influxd: Influxd, influx_db: str,
                                                      tmp_path: Any) -> None:
    cfg = tmp_path / "collector.toml"
    cfg.write_text(f'[store]\nkind = "influxdb"\n[influxdb]\nurl = "{influxd.url}"\n'
                   f'api = "v1"\ndatabase = "{influx_db}"\n', encoding="utf-8")
    runner = CliRunner()
    first = runner.invoke(main, ["store", "setup", "--config", str(cfg)], terminal_width=200)
    assert first.exit_code == 0, first.output
    assert "collector_rollup_power_w" in first.output and "created" in first.output
    second = runner.invoke(main, ["store", "setup", "--config", str(cfg)], terminal_width=200)
    assert second.exit_code == 0, second.output
    assert "created" not in second.output and "found" in second.output


def test_raw_retention_sets_the_raw_policy_once(influxd: Influxd, influx_db: str) -> None:
    config = v1(influxd, influx_db, raw_retention="30d")
    first = {s.part: (s.result, s.detail) for s in setup_store(config).steps}
    assert first["retention policy autogen (raw data)"] == (
        "changed", "raw data kept 30d (was forever (INF))")
    assert policies(influxd, influx_db)[0] == ["autogen", "720h0m0s", "168h0m0s", 1, True]
    second = {s.part: s.result for s in setup_store(config).steps}
    assert second["retention policy autogen (raw data)"] == "found"


def test_a_continuous_query_of_an_older_text_is_replaced(influxd: Influxd,
                                                         influx_db: str) -> None:
    influxd.query(f'CREATE RETENTION POLICY "rollup_1h" ON "{influx_db}" DURATION INF '
                  "REPLICATION 1")
    influxd.query(f'CREATE CONTINUOUS QUERY "collector_rollup_power_w" ON "{influx_db}" BEGIN '
                  f'SELECT mean("value") AS "mean" INTO "{influx_db}"."rollup_1h"."power_w" '
                  f'FROM "{influx_db}"."autogen"."power_w" GROUP BY time(1h), * END')
    steps = {s.part: s.result for s in setup_store(v1(influxd, influx_db)).steps}
    assert steps["continuous query collector_rollup_power_w"] == "replaced"
    assert steps["retention policy rollup_1h"] == "found"
    assert "max(value) AS max" in cqs(influxd, influx_db)["collector_rollup_power_w"]


def test_filling_computes_the_rollups_of_hand_written_points(influxd: Influxd,
                                                              influx_db: str) -> None:
    setup_store(v1(influxd, influx_db))
    tags = "device=Plug,device_id=1,site=home,source=fritzbox"
    m = 60 * 1_000_000_000
    influxd.write(influx_db, "\n".join([
        # hour 0: 10, 20, 60 W; hour 1: 40 W
        f"power_w,{tags} value=10 {T0}",
        f"power_w,{tags} value=20 {T0 + 20 * m}",
        f"power_w,{tags} value=60 {T0 + 59 * m}",
        f"power_w,{tags} value=40 {T0 + H + 30 * m}",
        # meter: last of hour 0 is 1005, of hour 1 is 1030
        f"energy_wh,{tags} value=1000 {T0 + 5 * m}",
        f"energy_wh,{tags} value=1005 {T0 + 50 * m}",
        f"energy_wh,{tags} value=1030 {T0 + H + 10 * m}",
        f'state,{tags},name=switch value=1,label="on" {T0 + 10 * m}',
        f'state,{tags},name=switch value=0,label="off" {T0 + 40 * m}',
        # a daily total at local midnight in Kolkata (18:30 UTC), kept at its own time
        f"energy_period_wh,{tags},period=day value=2400 {T0 + 18 * H + 30 * m}",
    ])).raise_for_status()
    ic = v1(influxd, influx_db).influxdb
    assert ic is not None
    written = fill_v1(ic, T0 + 10 * m, T0 + 19 * H)
    assert written == 2 + 2 + 1 + 1
    power = influxd.rows('SELECT "mean", "min", "max", "sum", "count" FROM '
                         '"rollup_1h"."power_w" GROUP BY *', influx_db)
    assert [(r["time"], r["mean"], r["min"], r["max"], r["sum"], r["count"]) for r in power] == [
        (T0, 30.0, 10.0, 60.0, 90.0, 3), (T0 + H, 40.0, 40.0, 40.0, 40.0, 1)]
    assert power[0]["device"] == "Plug" and power[0]["site"] == "home"
    meter = influxd.rows('SELECT "value" FROM "rollup_1h"."energy_wh"', influx_db)
    assert [(r["time"], r["value"]) for r in meter] == [(T0, 1005.0), (T0 + H, 1030.0)]
    state = influxd.rows('SELECT "value", "label" FROM "rollup_1h"."state" GROUP BY *',
                          influx_db)
    assert [(r["time"], r["value"], r["label"], r["name"]) for r in state] == [
        (T0, 0.0, "off", "switch")]
    period = influxd.rows('SELECT "value" FROM "rollup_1h"."energy_period_wh" '
                           "GROUP BY *", influx_db)
    assert [(r["time"], r["value"], r["period"]) for r in period] == [
        (T0 + 18 * H + 30 * m, 2400.0, "day")]
    # a coarser mean from the rollup is the mean of the raw points: (10+20+60+40)/4
    two_hours = influxd.rows(
        'SELECT sum("sum") / sum("count") FROM "rollup_1h"."power_w" WHERE time >= '
        f"{T0} AND time < {T0 + 2 * H} GROUP BY time(2h)", influx_db)
    assert [r["sum_sum"] for r in two_hours] == [32.5]


def test_filling_without_setup_says_to_run_it(influxd: Influxd, influx_db: str) -> None:
    ic = v1(influxd, influx_db).influxdb
    assert ic is not None
    with pytest.raises(StoreSetupError, match="run `collector store setup`"):
        fill_v1(ic, T0, T0 + H)


def test_a_missing_database_or_policy_is_named(influxd: Influxd) -> None:
    with pytest.raises(StoreSetupError, match="database 'nowhere' does not exist"):
        setup_store(v1(influxd, "nowhere"))
    influxd.create_db("haspolicy")
    with pytest.raises(StoreSetupError, match="retention_policy 'weekly' does not exist"):
        setup_store(v1(influxd, "haspolicy", retention_policy="weekly"))


def test_an_unreachable_server_is_named_without_the_password() -> None:
    config = Config(store=StoreConfig(kind="influxdb"), influxdb=InfluxConfig(
        url="http://admin:pa55-w0rd@127.0.0.1:9", api="v1", database="energy"))
    with pytest.raises(CollectorError) as err:
        setup_store(config)
    assert "pa55-w0rd" not in str(err.value) and "127.0.0.1:9" in str(err.value)


def test_the_embedded_store_says_downsampling_is_not_available(tmp_path: Any) -> None:
    report = setup_store(Config(store=StoreConfig(path=tmp_path / "s.sqlite3")))
    assert [(s.part, s.result) for s in report.steps] == [("downsampling", "not available")]


def test_store_fill_computes_the_rollups_of_history_already_stored(
        influxd: Influxd, influx_db: str, tmp_path: Any) -> None:
    import time

    cfg = tmp_path / "collector.toml"
    cfg.write_text(f'[store]\nkind = "influxdb"\n[influxdb]\nurl = "{influxd.url}"\n'
                   f'api = "v1"\ndatabase = "{influx_db}"\n', encoding="utf-8")
    hour = (time.time_ns() - 48 * H) // H * H  # two days ago, on the hour
    influxd.write(influx_db, f"co2_ppm,device=Sensor value=400 {hour}\n"
                  f"co2_ppm,device=Sensor value=500 {hour + H // 2}").raise_for_status()
    runner = CliRunner()
    assert "run `collector store setup` first" in runner.invoke(
        main, ["store", "fill", "--config", str(cfg), "--since", "1y"]).output
    assert runner.invoke(main, ["store", "setup", "--config", str(cfg)]).exit_code == 0
    filled = runner.invoke(main, ["store", "fill", "--config", str(cfg), "--since", "1y"])
    assert filled.exit_code == 0 and filled.output == "1 rollup points computed\n"
    rows = influxd.rows('SELECT "mean", "count" FROM "rollup_1h"."co2_ppm"', influx_db)
    assert [(r["time"], r["mean"], r["count"]) for r in rows] == [(hour, 450.0, 2)]


def test_a_raw_retention_shorter_than_a_day_is_a_config_error(tmp_path: Any) -> None:
    from collector.config import parse_config
    from collector.errors import ConfigError

    text = ('[store]\nkind = "influxdb"\n[influxdb]\napi = "v1"\ndatabase = "energy"\n'
            'raw_retention = "12h"\n')
    with pytest.raises(ConfigError) as err:
        parse_config(text, tmp_path / "collector.toml")
    assert "collector.toml: influxdb.raw_retention: must be at least 1d" in str(err.value)
    ok = parse_config(text.replace("12h", "90d"), tmp_path / "collector.toml")
    assert ok.influxdb is not None and ok.influxdb.raw_retention == 90 * 86400
