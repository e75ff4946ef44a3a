"""When the daemon heals a source: at start, after the source came back, after a failed
heal; never while the source fails, never in a tight loop; never further back than
``heal_days``; through the watermarks of ``collector backfill``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from collector.config import Config, OverkizConfig, SpoolConfig, StoreConfig
from collector.errors import TransientError
from collector.model import Reading
from collector.pipeline.app import App
from collector.pipeline.backfill import Watermarks, state_path
from collector.pipeline.heal import DEFAULT_HEAL_DAYS, HEAL_INTERVAL_S, HEAL_JOB, Healer, heals
from collector.sources.base import HistorySink, Source, SourceJob
from collector.sources.overkiz.errors import OverkizRateLimited
from collector.stores.sqlite import SqliteStore

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


class CloudHistory(Source):
    """Hourly temperatures in one-hour windows per series, up to ``now``.

    ``poll_fails`` makes the live job fail; ``refuse_after`` makes the next history call
    refuse (for rate) after that many stored windows.
    """

    kind = "overkiz"

    def __init__(self) -> None:
        super().__init__("home", 60.0)
        self.now = NOW
        self.poll_fails = False
        self.refuse_after: int | None = None
        self.calls: list[tuple[datetime, dict[str, datetime]]] = []

    async def poll(self) -> Sequence[Reading]:
        if self.poll_fails:
            raise TransientError("HTTP 503")
        return ()

    async def history(self, since: datetime, sink: HistorySink) -> None:
        starts = {s: sink.start(s) for s in ("a", "b")}
        self.calls.append((since, starts))
        refuse_after, self.refuse_after = self.refuse_after, None
        stored = 0
        for series, start in starts.items():
            at = start
            while at + HOUR <= self.now:
                if refuse_after is not None and stored == refuse_after:
                    raise OverkizRateLimited("too many requests")
                sink.put(series, [Reading("temperature_c", 20.0 + at.hour, at, "overkiz",
                                          "home", f"dev-{series}", series.upper())],
                         until=at + HOUR)
                stored += 1
                at += HOUR


class Setup:
    def __init__(self, tmp_path: Path, days: float = 1.0) -> None:
        config = Config(store=StoreConfig(kind="sqlite", path=tmp_path / "store.sqlite3"),
                        spool=SpoolConfig(path=tmp_path / "spool.sqlite3"),
                        overkiz=[cloud("home", days)])
        self.source = CloudHistory()
        self.app = App(config, sources=[self.source])
        self.healer = Healer(self.app, now=lambda: self.source.now)
        jobs = self.healer.jobs()
        assert [(s.label, j.name, j.interval_s) for s, j in jobs] == [
            ("overkiz:home", HEAL_JOB, HEAL_INTERVAL_S)]
        self.heal_job: SourceJob = jobs[0][1]
        self.poll_job = self.source.jobs()[0]

    def heal(self) -> list[str]:
        return asyncio.run(self.app.run_job(self.source, self.heal_job)).errors

    def poll(self) -> bool:
        return asyncio.run(self.app.run_job(self.source, self.poll_job)).ok

    def stored(self) -> list[tuple[str, datetime, float]]:
        asyncio.run(self.app.deliverer.drain())
        store = SqliteStore(self.app.config.store.path)
        try:
            return [(tags["device_id"], datetime.fromtimestamp(t / 1e9, UTC), v)
                    for t, tags, v, _ in store.query("temperature_c", None, None, None)]
        finally:
            store.close()

    def close(self) -> None:
        asyncio.run(self.app.aclose())


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_heals_at_start_then_only_after_the_source_came_back(setup: Setup) -> None:
    day_ago = NOW - timedelta(days=1)
    assert setup.heal() == []
    assert setup.source.calls == [(day_ago, {"a": day_ago, "b": day_ago})]
    assert setup.heal() == []  # nothing failed since: not due
    assert len(setup.source.calls) == 1

    setup.source.poll_fails = True
    assert not setup.poll()
    setup.source.now = NOW + 2 * HOUR  # the house goes on while the source fails
    assert setup.heal() == []  # still failing: the heal waits
    assert len(setup.source.calls) == 1

    setup.source.poll_fails = False
    assert setup.poll()
    assert setup.heal() == []  # back: due, resumed at the watermarks
    since = NOW + 2 * HOUR - timedelta(days=1)
    assert setup.source.calls[1] == (since, {"a": NOW, "b": NOW})
    assert setup.heal() == []
    assert len(setup.source.calls) == 2

    stored = setup.stored()
    for series in ("a", "b"):
        times = [t for d, t, _ in stored if d == f"dev-{series}"]
        assert times == [day_ago + i * HOUR for i in range(26)]  # no hole, no duplicate
    assert all(v == 20.0 + t.hour for _, t, v in stored)
    setup.close()


def test_a_refused_heal_waits_for_the_next_run_and_resumes(setup: Setup) -> None:
    setup.source.refuse_after = 3
    errors = setup.heal()
    assert errors == ["OverkizRateLimited: too many requests"]
    assert len(setup.source.calls) == 1  # one try per run: no tight loop
    marks = Watermarks(state_path(setup.app))
    day_ago = NOW - timedelta(days=1)
    assert marks.get("overkiz:home", "a") == day_ago + 3 * HOUR
    assert marks.get("overkiz:home", "b") is None

    assert setup.heal() == []  # the next run: still due, resumes after the stored windows
    assert setup.source.calls[1][1] == {"a": day_ago + 3 * HOUR, "b": day_ago}
    assert setup.heal() == []
    assert len(setup.source.calls) == 2
    stored = setup.stored()
    assert len(stored) == 2 * 24
    assert len({(d, t) for d, t, _ in stored}) == 48
    setup.close()


def test_never_further_back_than_heal_days(tmp_path: Path) -> None:
    setup = Setup(tmp_path, days=0.5)
    marks = Watermarks(state_path(setup.app))
    marks.set("overkiz:home", "a", NOW - timedelta(days=3))  # an old backfill's watermark
    marks.set("overkiz:home", "b", NOW - 2 * HOUR)
    assert setup.heal() == []
    half_day_ago = NOW - timedelta(hours=12)
    assert setup.source.calls == [(half_day_ago, {"a": half_day_ago, "b": NOW - 2 * HOUR})]
    stored = setup.stored()
    assert sorted(t for d, t, _ in stored if d == "dev-a") == [
        half_day_ago + i * HOUR for i in range(12)]
    assert sorted(t for d, t, _ in stored if d == "dev-b") == [NOW - 2 * HOUR, NOW - HOUR]
    setup.close()


def test_heal_days_zero_turns_healing_off_for_that_source(tmp_path: Path) -> None:
    other = CloudHistory()
    other.name = "cottage"
    config = Config(spool=SpoolConfig(path=tmp_path / "spool.sqlite3"),
                    store=StoreConfig(path=tmp_path / "store.sqlite3"),
                    overkiz=[cloud("home", 0), cloud("cottage", 2.5)])
    app = App(config, sources=[CloudHistory(), other])
    healer = Healer(app)
    assert [s.label for s, _ in healer.jobs()] == ["overkiz:cottage"]
    assert healer.days(other) == 2.5
    assert OverkizConfig(name="x", server="somfy_europe", username="u",
                         password=SecretStr("p")).heal_days == DEFAULT_HEAL_DAYS == 7
    asyncio.run(app.aclose())


def cloud(name: str, days: float) -> OverkizConfig:
    return OverkizConfig(name=name, url="https://cloud.invalid", username="user",
                         password=SecretStr("secret"), heal_days=days)


def test_only_sources_whose_polling_misses_history_are_healed() -> None:
    class Box(CloudHistory):
        kind = "fritzbox"  # its statistics job reads the box's whole memory every round

    class Live(Source):
        kind = "thinknx"

    assert heals(CloudHistory())
    assert not heals(Box())
    assert not heals(Live("knx", 60.0))


def test_an_overkiz_source_without_history_gets_no_heal_job(tmp_path: Path) -> None:
    from collector.sources.overkiz.source import OverkizSource

    account = OverkizSource(cloud("cloud", 7), state_dir=tmp_path)
    local = OverkizSource(OverkizConfig(name="gw", url="https://gateway-1.local:8443",
                                        token=SecretStr("t")), state_dir=tmp_path)
    off = OverkizSource(OverkizConfig(name="off", url="https://cloud.invalid", username="u",
                                      password=SecretStr("p"), history=False),
                        state_dir=tmp_path)
    try:
        assert (heals(account), heals(local), heals(off)) == (True, False, False)
    finally:
        for source in (account, local, off):
            asyncio.run(source.aclose())


def test_the_last_heal_of_each_source_is_kept_not_every_heal(setup: Setup) -> None:
    for hours in range(3):
        setup.source.now = NOW + hours * HOUR
        setup.source.poll_fails = True
        assert not setup.poll()
        setup.source.poll_fails = False
        assert setup.poll()
        assert setup.heal() == []
    assert len(setup.source.calls) == 3
    assert list(setup.healer.last) == ["overkiz:home"]
    last = setup.healer.last["overkiz:home"]
    assert (last.windows, last.points, last.resumed) == (2, 2, {"a", "b"})
    setup.close()
