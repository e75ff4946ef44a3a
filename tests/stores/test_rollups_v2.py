"""Downsampling on InfluxDB 2.x through influxdb-client, against the loopback fake that
checks every request as the API reference documents it: a rollup bucket, its DBRP mapping,
one task per measurement; a second run changes nothing; 3.x and 1.8 say what they lack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from collector.config import Config, InfluxConfig, StoreConfig
from collector.stores.rollups import rollups
from collector.stores.setup import setup_store
from collector.stores.setup_v1 import StoreSetupError
from tests.fake_influx2 import FakeInflux2, running_fake_influx2
from tests.fake_influx2_admin import Admin

TOKEN = "tok-Rollup-9f8e7d-secret"


@pytest.fixture
def fake() -> Iterator[FakeInflux2]:
    with running_fake_influx2(token=TOKEN, org="home", bucket="energy") as server:
        server.admin = Admin(token=TOKEN, org="home", bucket="energy")
        yield server


def v2(fake: FakeInflux2, token: str = TOKEN, **kw: object) -> Config:
    return Config(store=StoreConfig(kind="influxdb"), influxdb=InfluxConfig.model_validate(
        {"url": fake.url, "api": "v2", "org": "home", "bucket": "energy",
         "token": SecretStr(token), **kw}))


def test_setup_creates_the_rollup_bucket_its_mapping_and_a_task_per_measurement(
        fake: FakeInflux2) -> None:
    admin = fake.admin
    assert admin is not None
    report = setup_store(v2(fake))
    assert admin.violations == []
    steps = {s.part: s.result for s in report.steps}
    assert steps["bucket energy (raw data)"] == "found"
    assert steps["bucket energy_rollup_1h"] == "created"
    assert steps["DBRP mapping energy/rollup_1h"] == "created"
    rolled = [b for b in admin.buckets.values() if b["name"] == "energy_rollup_1h"]
    assert len(rolled) == 1 and rolled[0]["retentionRules"] == []
    assert [(m["bucketID"], m["database"], m["retention_policy"], m["default"])
            for m in admin.dbrps] == [(rolled[0]["id"], "energy", "rollup_1h", False)]
    tasks = {t["name"]: t for t in admin.tasks.values()}
    assert len(tasks) == 18 and tasks["collector_rollup_power_w"]["every"] == "15m"
    assert tasks["collector_rollup_energy_period_wh"]["every"] == "1h"
    power = tasks["collector_rollup_power_w"]["flux"]
    assert power.startswith('import "date"\n\noption task = {name: "collector_rollup_power_w", '
                            "every: 15m}\n")
    assert ('r0 = from(bucket: "energy") |> range(start: date.truncate(t: -3h, unit: 1h)) '
            '|> filter(fn: (r) => r._measurement == "power_w" and r._field == "value") '
            '|> aggregateWindow(every: 1h, fn: mean, createEmpty: false, timeSrc: "_start") '
            '|> set(key: "_field", value: "mean") '
            '|> to(bucket: "energy_rollup_1h", org: "home")') in power
    assert ('|> aggregateWindow(every: 1h, fn: count, createEmpty: false, timeSrc: "_start") '
            '|> set(key: "_field", value: "count") |> toFloat() |> to(') in power
    meter = tasks["collector_rollup_energy_wh"]["flux"]
    assert ('|> aggregateWindow(every: 1h, fn: last, createEmpty: false, timeSrc: "_start") '
            '|> to(bucket: "energy_rollup_1h", org: "home")') in meter
    period = tasks["collector_rollup_energy_period_wh"]["flux"]
    assert ('r0 = from(bucket: "energy") |> range(start: -5w) |> filter(fn: (r) => '
            'r._measurement == "energy_period_wh" and r._field == "value") '
            '|> to(bucket: "energy_rollup_1h", org: "home")') in period


def test_a_second_setup_changes_nothing(fake: FakeInflux2) -> None:
    admin = fake.admin
    assert admin is not None
    setup_store(v2(fake))
    before = len(admin.changes)
    again = setup_store(v2(fake))
    assert {s.result for s in again.steps} == {"found"}
    assert len(admin.changes) == before and admin.violations == []


def test_a_changed_task_is_replaced_and_raw_retention_applied(fake: FakeInflux2) -> None:
    admin = fake.admin
    assert admin is not None
    setup_store(v2(fake))
    task = next(t for t in admin.tasks.values() if t["name"] == "collector_rollup_co2_ppm")
    task["flux"] = 'option task = {name: "collector_rollup_co2_ppm", every: 1h}\n'
    report = setup_store(v2(fake, raw_retention="90d"))
    steps = {s.part: (s.result, s.detail) for s in report.steps}
    assert steps["task collector_rollup_co2_ppm"][0] == "replaced"
    assert task["every"] == "15m" and "co2_ppm" in task["flux"]
    assert steps["bucket energy (raw data)"] == (
        "changed", "raw data kept 90d (was forever (INF))")
    raw = next(b for b in admin.buckets.values() if b["name"] == "energy")
    assert raw["retentionRules"] == [{"type": "expire", "everySeconds": 7_776_000}]
    assert admin.violations == []


@pytest.mark.parametrize(("version", "says"), [
    ("v3.1.0", "has no tasks or continuous queries"),
    ("1.8.10", 'set influxdb.api = "v1"'),
])
def test_servers_without_tasks_say_so(fake: FakeInflux2, version: str, says: str) -> None:
    assert fake.admin is not None
    fake.admin.version = version
    report = setup_store(v2(fake))
    ((part, result, detail),) = [(s.part, s.result, s.detail) for s in report.steps]
    assert (part, result) == ("downsampling", "not available")
    assert says in detail and "read raw data" in detail
    assert fake.admin.changes == []


def test_a_refused_token_is_said_without_the_token(fake: FakeInflux2) -> None:
    with pytest.raises(StoreSetupError, match="token was refused") as err:
        setup_store(v2(fake, token="wrong-Secret-123"))
    assert "wrong-Secret-123" not in str(err.value) and TOKEN not in str(err.value)


def test_every_measurement_has_one_task() -> None:
    assert len({r.name for r in rollups()}) == len(rollups())
