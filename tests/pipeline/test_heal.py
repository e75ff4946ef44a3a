"""Gap healing in ``collector run``: the collector stopped for 40 minutes while the simulated
house goes on; after the restart the stored series have no hole and no duplicate.

The simulators and the collector share one clock: the test freezes the wall clock (it still
ticks) and moves it 40 minutes on between the two runs of the daemon; the event loop keeps
the real time, so the scheduler and the timeouts behave as they do for users.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from pydantic import SecretStr

from collector.config import Config, FritzboxConfig, OverkizConfig, SpoolConfig, StoreConfig
from collector.pipeline.app import App
from collector.pipeline.backfill import Watermarks, state_path
from collector.pipeline.daemon import run
from collector.pipeline.heal import HEAL_JOB, Healer
from collector.simulators.fritzbox import FritzboxSimulator
from collector.simulators.overkiz import OverkizSimulator
from collector.simulators.overkiz_model import TICK_S
from collector.sources.fritzbox.source import FritzboxSource
from collector.sources.overkiz.source import OverkizSource
from collector.stores.sqlite import SqliteStore

HOUR_S = 3600
#: 10:50 UTC: the 40-minute outage spans the 11:00 history point.
T0 = datetime(2026, 11, 20, 10, 50, tzinfo=UTC)
OUTAGE = timedelta(minutes=40)
#: Enough for any job to have run once (the scheduler adds up to 5 s of jitter).
WAIT_S = 60.0


def _config(tmp_path: Path, sim: OverkizSimulator, *, heal_days: float = 1.0) -> Config:
    oc = OverkizConfig(name="home", url=sim.url, username=sim.username,
                       password=SecretStr(sim.password), heal_days=heal_days)
    return Config(store=StoreConfig(kind="sqlite", path=tmp_path / "store.sqlite3"),
                  spool=SpoolConfig(path=tmp_path / "spool.sqlite3"), overkiz=[oc])


def _run_daemon_with(app: App, jobs: Sequence[str]) -> App:
    """``collector run`` until every one of ``jobs`` ran once, then stopped as by SIGTERM."""

    async def go() -> App:
        stop = asyncio.Event()
        daemon = asyncio.create_task(run(app, stop))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        while not all(j in app.outcomes for j in jobs):
            assert loop.time() < deadline, sorted(app.outcomes)
            await asyncio.sleep(0.05)
        stop.set()
        await daemon
        return app

    return asyncio.run(go())


def _run_daemon(config: Config, jobs: Sequence[str]) -> App:
    """``collector run`` with the Overkiz source until every one of ``jobs`` ran once."""
    app = App(config, sources=[OverkizSource(config.overkiz[0],
                                             state_dir=config.spool.path.parent)])
    return _run_daemon_with(app, [f"overkiz:home:{j}" for j in jobs])


def _points(path: Path, measurement: str, device_id: str) -> list[tuple[int, float]]:
    store = SqliteStore(path)
    try:
        return [(t // 10**9, v) for t, tags, v, _ in store.query(measurement, None, None,
                                                                 device_id)
                if tags.get("device_id") == device_id]
    finally:
        store.close()


def test_an_overkiz_outage_is_healed_from_the_cloud_history(tmp_path: Path) -> None:
    """Hourly temperatures of one probe from a day before the first start to the restart:
    every hour exactly once with the value the house had, the hour inside the outage too."""
    with freeze_time(T0, tick=True, real_asyncio=True) as frozen, \
            OverkizSimulator(seed=11, clock=time.time) as sim:  # the frozen clock
        config = _config(tmp_path, sim)
        first = _run_daemon(config, ("events", "states", HEAL_JOB))
        assert first.outcomes[f"overkiz:home:{HEAL_JOB}"].ok
        first_start = T0.timestamp()
        stopped = time.time()
        frozen.tick(OUTAGE)
        second = _run_daemon(config, ("events", "states", HEAL_JOB))
        assert second.outcomes[f"overkiz:home:{HEAL_JOB}"].ok
        restarted = time.time()

        probe = f"io://{sim.house.gateway}/1001#2"
        state = sim.house.by_url[probe].state("core:TemperatureState")
        assert state is not None
        points = _points(config.store.path, "temperature_c", probe)
        times = [t for t, _ in points]
        assert len(times) == len(set(times))  # no duplicate, whichever job stored it
        hourly = {t: v for t, v in points if t % HOUR_S == 0}
        first_hour = -(-int(first_start - 86400) // HOUR_S) * HOUR_S
        expected = list(range(first_hour, int(restarted) + 1, HOUR_S))
        assert sorted(hourly) == expected  # no hole
        assert len(expected) == 25
        outage_hour = int(T0.timestamp()) + 10 * 60  # 11:00, while the collector was down
        assert stopped < outage_hour < stopped + OUTAGE.total_seconds()
        assert outage_hour in hourly
        for t, value in hourly.items():
            assert value == pytest.approx(float(state.value(t))), t
        # the live values of both runs are on the 60-s tick grid, not in the outage
        live = [t for t in times if t % HOUR_S]
        assert live and all(t % TICK_S == 0 or t >= restarted - WAIT_S or t <= stopped
                            for t in live)

        # the second run resumed at the watermarks of the first and moved them to its end
        marks = Watermarks(state_path(second))
        mark = marks.get("overkiz:home", f"{probe} core:TemperatureState")
        assert mark is not None
        assert restarted - WAIT_S <= mark.timestamp() <= restarted + 1


def test_without_healing_the_outage_stays_a_hole(tmp_path: Path) -> None:
    """heal_days = 0: no heal job, and the hour inside the outage is missing (what the test
    above proves is the heal's doing, not the live jobs')."""
    with freeze_time(T0, tick=True, real_asyncio=True) as frozen, \
            OverkizSimulator(seed=11, clock=time.time) as sim:  # the frozen clock
        config = _config(tmp_path, sim, heal_days=0)
        first = _run_daemon(config, ("events", "states"))
        frozen.tick(OUTAGE)
        second = _run_daemon(config, ("events", "states"))
        probe = f"io://{sim.house.gateway}/1001#2"
        hourly = [t for t, _ in _points(config.store.path, "temperature_c", probe)
                  if t % HOUR_S == 0]
    assert f"overkiz:home:{HEAL_JOB}" not in first.outcomes | second.outcomes
    assert int(T0.timestamp()) + 10 * 60 not in hourly
    assert not state_path(second).exists()


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


#: 2024-06-10 14:13:20 UTC: on the 10-s and 900-s grids of the box's statistics.
FRITZ_START = 1718028800


def test_the_fritzbox_statistics_job_heals_an_outage_by_itself(tmp_path: Path) -> None:
    """The box keeps an hour of 10-s power values; the statistics job reads all of it at
    every start, so a 40-minute outage needs no heal job: the plug's power series has every
    10-s slot from an hour before the first start to the restart, each exactly once."""
    clock = FakeClock(FRITZ_START)
    with FritzboxSimulator(clock=clock) as sim:
        fc = FritzboxConfig(name="home", url=sim.url, tr064_url=sim.tr064_url,
                            username=sim.username, password=SecretStr(sim.password),
                            timezone="Europe/Berlin")
        config = Config(store=StoreConfig(kind="sqlite", path=tmp_path / "store.sqlite3"),
                        spool=SpoolConfig(path=tmp_path / "spool.sqlite3"), fritzbox=[fc])

        def daemon() -> App:
            return _run_daemon_with(App(config, sources=[FritzboxSource(fc)]),
                                    ("fritzbox:home:poll", "fritzbox:home:stats"))

        first = daemon()
        clock.now = FRITZ_START + OUTAGE.total_seconds()  # the collector was down
        second = daemon()
        plug = sim.ains()[0].replace(" ", "")
        points = [(t, v) for t, v in _points(config.store.path, "power_w", plug)
                  if t <= clock.now]
        dev = next(d for d in sim.house.devices if d.ain_compact == plug)
        assert all(o.ok for o in (first.outcomes | second.outcomes).values())
        assert f"fritzbox:home:{HEAL_JOB}" not in first.outcomes | second.outcomes
        times = [t for t, _ in points]
        first_slot, last_slot = FRITZ_START - 359 * 10, int(clock.now)
        assert times == list(range(first_slot, last_slot + 1, 10))  # no hole, no duplicate
        by_time = dict(points)
        for t in (FRITZ_START, last_slot):  # the newest value of each start: the live one
            assert by_time[t] == pytest.approx(round(sim.house.power_w(dev, t) * 100) / 100,
                                               abs=0.011)


def test_an_overkiz_cloud_outage_is_healed_once_the_cloud_answers_again(
    tmp_path: Path,
) -> None:
    """The collector keeps running while the cloud answers 503 for 40 minutes: the heal
    waits while the states job fails, and the first heal after it works again fetches the
    missing hour, from the watermarks of the heal at start."""
    history = "GET /setup/devices/{deviceURL}/states/{name}/history/{from}/{to}"
    with freeze_time(T0, tick=True, real_asyncio=True) as frozen, \
            OverkizSimulator(seed=11, clock=time.time) as sim:  # the frozen clock
        config = _config(tmp_path, sim)
        source = OverkizSource(config.overkiz[0], state_dir=tmp_path)
        app = App(config, sources=[source])
        healer = Healer(app)
        [(_, heal)] = healer.jobs()
        states = next(j for j in source.jobs() if j.name == "states")

        async def go() -> list[bool]:
            ran = [(await app.run_job(source, states)).ok, (await app.run_job(source, heal)).ok]
            started_calls = sim.calls(history)
            frozen.tick(OUTAGE)
            sim.maintenance_next(1)
            ran += [(await app.run_job(source, states)).ok, (await app.run_job(source, heal)).ok]
            assert sim.calls(history) == started_calls  # no heal while the source fails
            ran += [(await app.run_job(source, states)).ok, (await app.run_job(source, heal)).ok]
            assert sim.calls(history) > started_calls
            await app.deliverer.drain()
            await app.aclose()
            return ran

        assert asyncio.run(go()) == [True, True, False, True, True, True]
        healed = healer.last["overkiz:home"]
        assert healed.errors == []
        # 21 collected states of the house's devices (the dead bedroom sensor's two among
        # them) and the day and month totals of its 3 meters
        assert len(healed.resumed) == len(healed.series) == 21 + 3 * 2
        recovered = time.time()
        probe = f"io://{sim.house.gateway}/1001#2"
        state = sim.house.by_url[probe].state("core:TemperatureState")
        assert state is not None
        points = _points(config.store.path, "temperature_c", probe)
    times = [t for t, _ in points]
    assert len(times) == len(set(times))
    hourly = {t: v for t, v in points if t % HOUR_S == 0}
    first_hour = -(-int(T0.timestamp() - 86400) // HOUR_S) * HOUR_S
    assert sorted(hourly) == list(range(first_hour, int(recovered) + 1, HOUR_S))
    assert int(T0.timestamp()) + 10 * 60 in hourly  # 11:00, inside the outage
    for t, value in hourly.items():
        assert value == pytest.approx(float(state.value(t))), t
