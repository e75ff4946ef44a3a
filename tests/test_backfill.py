from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from collector.app import App
from collector.backfill import parse_since, run_backfill
from collector.config import Config, FritzboxConfig, SpoolConfig, StoreConfig
from collector.errors import ConfigError
from collector.simulators.fritzbox import FritzboxSimulator
from collector.stores.sqlite import SqliteStore

START = 1718028800.0  # 2024-06-10 14:13:20 UTC


def test_parse_since() -> None:
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    assert parse_since("7d", now=now) == now - timedelta(days=7)
    assert parse_since("12h", now=now) == now - timedelta(hours=12)
    assert parse_since("30m", now=now) == now - timedelta(minutes=30)
    assert parse_since("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since("2026-11-01T00:00:00+01:00") == datetime(2026, 10, 31, 23, tzinfo=UTC)
    with pytest.raises(ConfigError, match="--since: 'yesterday'"):
        parse_since("yesterday")


def test_backfill_loads_statistics_since_and_resumes(tmp_path: Path) -> None:
    with FritzboxSimulator(clock=lambda: START) as sim:
        fc = FritzboxConfig(name="home", url=sim.url, tr064_url=sim.tr064_url,
                            username=sim.username, password=SecretStr(sim.password),
                            timezone="Europe/Berlin")
        config = Config(store=StoreConfig(path=tmp_path / "store.sqlite3"),
                        spool=SpoolConfig(path=tmp_path / "spool.sqlite3"), fritzbox=[fc])
        since = datetime.fromtimestamp(START, UTC) - timedelta(minutes=30)

        async def go(restart: bool = False) -> list[tuple[str, int, bool]]:
            app = App(config)
            try:
                outcomes = await run_backfill(app, since, restart=restart)
            finally:
                await app.aclose()
            return [(o.source, o.points, o.skipped) for o in outcomes]

        first = asyncio.run(go())
        assert first[0][0] == "fritzbox:home"
        assert first[0][1] > 0 and not first[0][2]
        again = asyncio.run(go())
        assert again == [("fritzbox:home", 0, True)]  # finished before: skipped
        redo = asyncio.run(go(restart=True))
        assert redo[0][1] == first[0][1]

    store = SqliteStore(tmp_path / "store.sqlite3")
    power = list(store.query("power_w", None, None, None))
    store.close()
    since_ns = int(since.timestamp()) * 10**9
    assert power and all(t >= since_ns for t, _, _, _ in power)
    # 10-second statistics of the last 30 minutes, each slot once despite two runs
    plug = sim.ains()[0].replace(" ", "")
    times = sorted(t for t, tags, _, _ in power if tags["device_id"] == plug)
    assert len(times) == len(set(times)) == 181
