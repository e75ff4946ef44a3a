"""``collector run``'s shutdown: running jobs are waited for, then cancelled and counted."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from collector.config import Config, SpoolConfig, StoreConfig
from collector.model import Reading
from collector.pipeline import daemon
from collector.pipeline.app import App
from collector.pipeline.daemon import run
from collector.sources.base import ReadingSink, Source, SourceJob
from collector.stores.sqlite import SqliteStore

T0 = datetime(2026, 3, 1, tzinfo=UTC)


class HangingSource(Source):
    """A statistics job that hands over one device's readings, then never finishes."""

    kind = "fritzbox"

    def __init__(self) -> None:
        super().__init__("home", 1.0)
        self.started = asyncio.Event()
        self.cancelled = False

    async def poll(self) -> Sequence[Reading]:
        raise AssertionError("only the hanging job runs")

    async def hang(self, sink: ReadingSink) -> None:
        sink([Reading("power_w", 12.5, T0, "fritzbox", "home", "0815", "Plug")])
        self.started.set()
        try:
            await asyncio.Event().wait()  # a device that never answers
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    def jobs(self) -> Sequence[SourceJob]:
        return (SourceJob("stats", 1.0, self.poll, self.hang),)


def test_a_job_running_past_the_grace_is_cancelled_and_counted(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = Config(store=StoreConfig(path=tmp_path / "store.sqlite3"),
                    spool=SpoolConfig(path=tmp_path / "spool.sqlite3"))
    source = HangingSource()
    loop_errors: list[dict[str, Any]] = []

    async def go() -> App:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: loop_errors.append(ctx))
        app = App(config, sources=[source])
        stop = asyncio.Event()

        async def stop_once_running() -> None:
            await source.started.wait()
            stop.set()

        stopper = asyncio.create_task(stop_once_running())
        await run(app, stop, job_grace_s=0.05)
        await stopper
        await asyncio.sleep(0)  # anything left over would run (and fail) now
        return app

    with caplog.at_level(logging.WARNING):
        app = asyncio.run(go())
    assert source.cancelled
    outcome = app.outcomes["fritzbox:home:stats"]
    assert outcome.errors == ["cancelled: still running when the collector stopped"]
    assert outcome.points == 1
    warnings = [r.getMessage() for r in caplog.records if r.name == "collector.pipeline.daemon"]
    assert "1 job(s) still running after 0 s cancelled: fritzbox:home:stats" in warnings
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert loop_errors == []
    # what it had handed over and its failure count reached the store before the exit
    store = SqliteStore(tmp_path / "store.sqlite3")
    try:
        power = list(store.query("power_w", None, None, None))
        metrics = {tags["metric"]: value for _, tags, value, _ in
                   store.query("collector", None, None, "fritzbox:home:stats")}
    finally:
        store.close()
    assert [(t, tags["device_id"], v) for t, tags, v, _ in power] == [
        (1772323200 * 10**9, "0815", 12.5)]
    assert metrics["errors"] == 1.0 and metrics["points"] == 1.0


class StubbornSource(HangingSource):
    """Ignores the first cancellation and goes on once ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.finished = asyncio.Event()

    async def hang(self, sink: ReadingSink) -> None:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
        await self.release.wait()
        self.finished.set()
        sink([Reading("power_w", 1.0, T0, "fritzbox", "home", "0815", "Plug")])


def test_a_job_ignoring_cancellation_raises_nothing_after_the_spool_is_closed(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(daemon, "CANCEL_WAIT_S", 0.05)
    config = Config(store=StoreConfig(path=tmp_path / "store.sqlite3"),
                    spool=SpoolConfig(path=tmp_path / "spool.sqlite3"))
    source = StubbornSource()
    loop_errors: list[dict[str, Any]] = []

    async def go() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: loop_errors.append(ctx))
        app = App(config, sources=[source])
        stop = asyncio.Event()

        async def stop_once_running() -> None:
            await source.started.wait()
            stop.set()

        stopper = asyncio.create_task(stop_once_running())
        await run(app, stop, job_grace_s=0.05)
        await stopper
        source.release.set()  # the job goes on, and finds the spool closed
        await source.finished.wait()
        for _ in range(5):
            await asyncio.sleep(0)

    with caplog.at_level(logging.WARNING):
        asyncio.run(go())
    gc.collect()
    assert source.cancelled
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["job(s) ignoring cancellation, their readings are lost: "
                      "fritzbox:home:stats"]
    assert loop_errors == []
