"""`collector check` of an Overkiz source against the simulator: the mode in words, and
``/setup`` loaded only when the cached copy is older than the server's one-a-day limit."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from collector.config import OverkizConfig
from collector.model import Reading
from collector.simulators.overkiz import OverkizSimulator
from collector.sources.overkiz.source import OverkizSource

SETUP = "GET /setup"
STATES = "GET /setup/devices/{deviceURL}/states"


@pytest.fixture
def sim() -> Iterator[OverkizSimulator]:
    with OverkizSimulator(seed=3) as running:
        yield running


def check(config: OverkizConfig, state_dir: Path) -> str:
    async def go() -> str:
        source = OverkizSource(config, state_dir=state_dir)
        try:
            return await source.check()
        finally:
            await source.aclose()

    return asyncio.run(go())


def age(state_dir: Path, hours: float) -> None:
    """Make the cached setup, and the limiter's memory of the /setup call, ``hours`` old."""
    then = time.time() - hours * 3600
    cache = state_dir / "overkiz-house.setup.json"
    doc = json.loads(cache.read_text(encoding="utf-8"))
    cache.write_text(json.dumps({**doc, "fetched_at": then}), encoding="utf-8")
    limits = state_dir / "overkiz-house.limits.json"
    kept = json.loads(limits.read_text(encoding="utf-8"))  # whose limits: the same server
    limits.write_text(json.dumps({**kept, "bulk-load": then}), encoding="utf-8")


def test_check_loads_the_setup_only_when_the_cache_is_older_than_a_day(
    sim: OverkizSimulator, tmp_path: Path
) -> None:
    config = OverkizConfig(name="house", url=sim.url, username=sim.username,
                           password=SecretStr(sim.password))
    devices = len(sim.house.devices)

    first = check(config, tmp_path)  # no cache yet: loaded
    assert sim.calls(SETUP) == 1
    assert first == (f"cloud API {sim.url} (login as {sim.username}; history), "
                     f"{devices} devices (setup just loaded; next load allowed in 24.0 h)")

    again = check(config, tmp_path)  # a new process, cache fresh: not loaded again
    assert sim.calls(SETUP) == 1
    assert again.endswith(f"{devices} devices (setup just loaded; next load allowed in 24.0 h)")

    age(tmp_path, 23)
    younger = check(config, tmp_path)
    assert sim.calls(SETUP) == 1
    assert younger.endswith(
        f"{devices} devices (setup cached 23.0 h ago; next load allowed in 1.0 h)")

    age(tmp_path, 25)
    stale = check(config, tmp_path)  # older than the limit: refreshed, once
    assert sim.calls(SETUP) == 2
    assert stale.endswith("(setup just loaded; next load allowed in 24.0 h)")
    cached = json.loads((tmp_path / "overkiz-house.setup.json").read_text(encoding="utf-8"))
    assert time.time() - cached["fetched_at"] < 60

    # every check proved the credentials with one state read, and broke no limit
    assert sim.calls(STATES) == 4
    assert sim.calls("GET /setup/devices") == 0
    assert sim.violation_count == 0, sim.violations
    assert sim.logins == 4 and sim.logins_failed == 0


def test_check_names_the_local_api(sim: OverkizSimulator, tmp_path: Path) -> None:
    config = OverkizConfig(name="house", url=sim.url, token=SecretStr(sim.token))
    text = check(config, tmp_path)
    assert text.startswith(f"local API of the gateway {sim.url} (bearer token; no history), ")
    assert sim.token not in text
    assert sim.logins == 0 and sim.calls(SETUP) == 1 and sim.violation_count == 0


def test_history_false_is_said_and_backfills_nothing(
    sim: OverkizSimulator, tmp_path: Path
) -> None:
    config = OverkizConfig(name="house", url=sim.url, username=sim.username,
                           password=SecretStr(sim.password), history=False)
    assert "(login as demo@example.com; history = false)" in check(config, tmp_path)

    class Sink:
        def start(self, series: str) -> datetime:
            return datetime.now(UTC) - timedelta(days=1)

        def put(self, series: str, readings: Sequence[Reading], *, until: datetime) -> None:
            raise AssertionError(series)

        def total(self, windows: int) -> None:
            raise AssertionError(windows)

    async def backfill() -> None:
        source = OverkizSource(config, state_dir=tmp_path)
        try:
            await source.history(datetime.now(UTC) - timedelta(days=1), Sink())
        finally:
            await source.aclose()

    asyncio.run(backfill())
    assert [t for t in sim.endpoint_requests if "/history/" in t] == []


def test_check_and_once_with_an_endpoint_the_server_does_not_offer(
    sim: OverkizSimulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sim.disable("POST /setup/devices/states/growingIndexes")
    config = OverkizConfig(name="house", url=sim.url, username=sim.username,
                           password=SecretStr(sim.password))
    text = check(config, tmp_path)
    assert text.endswith(
        "; not offered by this server: energy per day and month (growing index variations)")
    assert "history" not in text.split("not offered")[1]  # the state history is offered

    async def periods() -> list[int]:
        source = OverkizSource(config, state_dir=tmp_path)
        try:  # the job gives nothing and does not fail, and asks only once
            return [len(await source.read_periods()) for _ in range(3)]
        finally:
            await source.aclose()

    assert asyncio.run(periods()) == [0, 0, 0]
    assert sim.calls("POST /setup/devices/states/growingIndexes") == 2  # check, then once
    assert sum("does not offer" in r.getMessage() for r in caplog.records) == 2


def test_the_setup_cache_belongs_to_its_server(sim: OverkizSimulator, tmp_path: Path) -> None:
    config = OverkizConfig(name="house", url=sim.url, username=sim.username,
                           password=SecretStr(sim.password))
    check(config, tmp_path)
    with OverkizSimulator(seed=4) as other:  # same site name, another server
        moved = OverkizConfig(name="house", url=other.url, username=other.username,
                              password=SecretStr(other.password))
        check(moved, tmp_path)
        assert other.calls(SETUP) == 1  # its own setup, not the first server's
