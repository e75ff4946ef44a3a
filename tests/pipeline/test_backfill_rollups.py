"""A backfill into InfluxDB 1.x also computes the rollups of the past it loaded (a continuous
query only covers the last hours); without the setup it computes nothing and says nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.config import Config, InfluxConfig, SpoolConfig, StoreConfig
from collector.model import Reading
from collector.pipeline.app import App
from collector.pipeline.backfill import run_backfill
from collector.sources.base import HistorySink, Source
from collector.stores.setup import setup_store
from tests.influxd import Influxd

#: a day long gone: no continuous query would ever cover it
T0 = datetime(2025, 3, 4, tzinfo=UTC)
NS = 1_000_000_000


class MeterHistory(Source):
    """One plug's history: power at :00 and :30 of hours 0 and 1, its meter at :45."""

    kind = "fritzbox"

    async def poll(self) -> Sequence[Reading]:
        return ()

    async def history(self, since: datetime, sink: HistorySink) -> None:
        sink.start("plug")
        readings = []
        for hour, (first, second, meter) in enumerate([(100.0, 200.0, 5000.0),
                                                       (300.0, 500.0, 5250.0)]):
            at = T0 + timedelta(hours=hour)
            for minutes, watts in ((0, first), (30, second)):
                readings.append(Reading("power_w", watts, at + timedelta(minutes=minutes),
                                        "fritzbox", "home", "087610", "Plug"))
            readings.append(Reading("energy_wh", meter, at + timedelta(minutes=45),
                                    "fritzbox", "home", "087610", "Plug"))
        sink.put("plug", readings, until=T0 + timedelta(hours=2))


def run(config: Config) -> None:
    async def go() -> None:
        app = App(config, sources=[MeterHistory("home", 60.0)])
        try:
            await run_backfill(app, T0 - timedelta(days=1))
        finally:
            await app.aclose()

    asyncio.run(go())


def make_config(influxd: Influxd, db: str, tmp_path: Path) -> Config:
    return Config(store=StoreConfig(kind="influxdb"),
                  influxdb=InfluxConfig(url=influxd.url, api="v1", database=db),
                  spool=SpoolConfig(path=tmp_path / "spool.sqlite3"))


def test_the_backfill_fills_the_rollups_of_the_range_it_loaded(
        influxd: Influxd, influx_db: str, tmp_path: Path) -> None:
    config = make_config(influxd, influx_db, tmp_path)
    setup_store(config)
    run(config)
    t0 = int(T0.timestamp()) * NS
    power = influxd.rows('SELECT "mean", "count" FROM "rollup_1h"."power_w"', influx_db)
    assert [(r["time"], r["mean"], r["count"]) for r in power] == [
        (t0, 150.0, 2), (t0 + 3600 * NS, 400.0, 2)]
    meter = influxd.rows('SELECT "value" FROM "rollup_1h"."energy_wh"', influx_db)
    assert [(r["time"], r["value"]) for r in meter] == [(t0, 5000.0), (t0 + 3600 * NS, 5250.0)]


def test_without_the_setup_the_backfill_stores_raw_data_only(
        influxd: Influxd, influx_db: str, tmp_path: Path) -> None:
    config = make_config(influxd, influx_db, tmp_path)
    run(config)
    assert len(influxd.rows('SELECT "value" FROM "power_w"', influx_db)) == 4
    answer = influxd.query(f'SHOW RETENTION POLICIES ON "{influx_db}"')
    assert [row[0] for row in answer["results"][0]["series"][0]["values"]] == ["autogen"]
