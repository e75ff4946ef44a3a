"""A spool or embedded store that cannot be written: a file capped with ``max_page_count``
(SQLite's SQLITE_FULL, as on a full disk), a COMMIT that fails, a spool thread that does not
answer. Every caller is answered, the failure is logged once with the file and the space
left, lost lines are counted, and writes resume by themselves."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.config import Config, SpoolConfig, StoreConfig
from collector.errors import StoreUnavailable
from collector.lineprotocol import parse_line
from collector.model import Reading
from collector.pipeline.app import App
from collector.pipeline.clock import ClockGuard, built_at
from collector.pipeline.spool import Spool, SpoolUnwritable
from collector.sources.base import Source
from collector.stores.sqlite import SqliteStore

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _line(i: int) -> str:
    return f"power_w,device=plug{i} value={i}.5 {1_772_323_200 + i}000000000"


def _noise(i: int, n: int) -> str:
    """``n`` lines that hardly compress: each chunk of them needs new pages of the file."""
    return "\n".join(f"power_w,device=noise{i}_{j},x={os.urandom(400).hex()} value=1 {j}"
                     for j in range(n))


def _cap(db: sqlite3.Connection) -> None:
    """Cap the file of a connection at the pages it has: no new page can be added."""
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count={pages}")


def _fill(spool: Spool) -> None:
    """Cap the spool's file and fill what room is left in its pages with one-line chunks."""
    _cap(spool._db)
    for i in range(10_000):
        try:
            spool.append_text(_line(i), 1)
        except SpoolUnwritable:
            return
    raise AssertionError("the capped spool never filled up")


def _messages(caplog: pytest.LogCaptureFixture, level: int, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level and r.name == logger]


def test_a_failed_commit_answers_its_caller_and_later_hand_overs_go_through(
        tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    # a deferred foreign key is checked at COMMIT: the COMMIT itself fails, as on a full disk
    spool._db.execute("PRAGMA foreign_keys=ON")
    spool._db.executescript(
        "CREATE TEMP TABLE parent(id INTEGER PRIMARY KEY);"
        "CREATE TEMP TABLE child(p INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);")

    def orphan() -> str:
        spool._db.execute("INSERT INTO child VALUES (1)")
        return "inserted"

    async def go() -> tuple[list[object], int]:
        with spool._lock:  # all three wait for the spool's thread and share a transaction
            tasks = [asyncio.create_task(spool.append_text_async(_line(1), 1)),
                     asyncio.create_task(spool._writer.run(orphan)),
                     asyncio.create_task(spool.append_text_async(_line(2), 1))]
            await asyncio.sleep(0)
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
        later = await asyncio.wait_for(spool.append_text_async(_line(3), 1), 10)
        return list(results), later

    (first, failed, second), later = asyncio.run(go())
    assert (first, second, later) == (0, 0, 0)
    assert isinstance(failed, Exception) and "FOREIGN KEY constraint failed" in str(failed)
    assert spool.pending == 3
    assert sorted(spool.lines()) == [_line(1), _line(2), _line(3)]
    spool.close()


def test_a_capped_spool_says_once_that_it_is_full_counts_the_lost_lines_and_resumes(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "spool.sqlite3"
    spool = Spool(path)
    for i in range(3):
        spool.append_text(_noise(i, 20), 20)
    _cap(spool._db)
    caplog.set_level(logging.DEBUG)

    async def fill() -> list[BaseException]:
        errors: list[BaseException] = []
        for i, n in ((10, 10), (11, 10), (12, 5)):
            try:
                await spool.append_text_async(_noise(i, n), n)
            except SpoolUnwritable as err:
                errors.append(err)
        return errors

    errors = asyncio.run(fill())
    assert [type(e).__name__ for e in errors] == ["SpoolUnwritable"] * 3
    assert {e.reason for e in errors if isinstance(e, SpoolUnwritable)} == {"disk_full"}
    assert str(errors[0]) == (f"spool {path} cannot take lines: database or disk is full "
                              "(SQLITE_FULL)")
    logged = _messages(caplog, logging.ERROR, "collector.pipeline.spool")
    assert len(logged) == 1
    assert logged[0].startswith(f"spool {path} cannot be written: database or disk is full "
                                "(SQLITE_FULL); ")
    assert " free on its file system. " in logged[0]
    assert spool.pending == 60  # what was spooled before stays
    assert spool.health.lost() == {"disk_full": 25}

    # the store takes the spooled lines: their pages are free again, and the spool takes
    # lines; it counts as writable again after three appends in a row (at once here)
    spool.health.recover_s = 0.0
    (first, _), *_, (last, _) = spool.peek(1000)
    assert spool.ack(first, last) == 60
    assert spool.health.failing == "disk_full"  # a removal proves nothing
    for i in (1, 2):
        assert asyncio.run(spool.append_text_async(_line(i), 1)) == 0
    assert spool.health.failing == "disk_full" and spool.health.take_lost() == {}
    assert asyncio.run(spool.append_text_async(_line(3), 1)) == 0
    assert spool.health.failing is None
    assert spool.pending == 3 and spool.lines() == [_line(1), _line(2), _line(3)]
    again = _messages(caplog, logging.WARNING, "collector.pipeline.spool")
    assert len(again) == 1
    assert again[0].startswith(f"spool {path} can be written again after ")
    assert again[0].endswith("; 25 lines could not be spooled meanwhile and are lost "
                             "(disk_full: 25)")
    assert spool.health.take_lost() == {"disk_full": 25}
    assert spool.health.lost() == {}
    spool.close()


def test_a_hand_over_past_its_bound_fails_and_a_withdrawn_write_is_never_made(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "spool.sqlite3"
    spool = Spool(path, handover_s=0.2)

    async def go() -> tuple[list[object], int]:
        with spool._lock:  # the spool's thread hangs in its transaction (a disk that hangs)
            first = asyncio.create_task(spool.append_text_async(_line(1), 1))
            while spool.busy_for() == 0:  # the thread has taken it
                await asyncio.sleep(0.01)
            second = asyncio.create_task(spool.append_text_async(_line(2), 1))
            results = await asyncio.wait_for(
                asyncio.gather(first, second, return_exceptions=True), 10)
        # the thread goes on: it writes what it had taken, never what was withdrawn
        return list(results), await asyncio.wait_for(spool.settled(), 10)

    results, pending = asyncio.run(go())
    assert all(isinstance(r, SpoolUnwritable) and r.reason == "stuck" for r in results)
    assert pending == 1
    assert spool.lines() == [_line(1)]
    assert spool.health.lost() == {"stuck": 1}
    errors = _messages(caplog, logging.ERROR, "collector.pipeline.spool")
    assert len(errors) == 1
    assert errors[0].startswith(f"spool {path} cannot be written: no answer from the spool's "
                                "thread within 0 s (a disk that does not answer?); ")
    spool.close()


def test_a_capped_embedded_store_says_once_that_it_is_full_and_takes_lines_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "store.sqlite3"
    store = SqliteStore(path)
    store.write_sync([_line(i) for i in range(3)])
    _cap(store._db)
    noise = [line for i in range(3) for line in _noise(i, 50).split("\n")]
    for _ in range(3):
        with pytest.raises(StoreUnavailable) as failed:
            store.write_sync(noise)
    assert str(failed.value) == (f"sqlite:{path}: write failed: database or disk is full "
                                 "(SQLITE_FULL)")
    logged = _messages(caplog, logging.ERROR, "collector.stores.sqlite")
    assert len(logged) == 1
    assert logged[0].startswith(f"store {path} cannot be written: database or disk is full "
                                "(SQLITE_FULL); ")
    assert " free on its file system. " in logged[0]
    store._db.execute("PRAGMA max_page_count=1000000")  # room again
    store.write_sync(noise)
    assert _messages(caplog, logging.WARNING, "collector.stores.sqlite") == [
        f"store {path} can be written again"]
    assert [n for m, n in store.measurements()] == [153]
    store.close()


class FiveReadings(Source):
    kind = "fritzbox"

    def __init__(self) -> None:
        super().__init__("home", 1.0)
        self.polls = 0

    async def poll(self) -> Sequence[Reading]:
        self.polls += 1
        return [Reading("power_w", float(i), T0, "fritzbox", "home", f"dev{i}", f"Plug {i}")
                for i in range(5)]


def _app(tmp_path: Path, source: Source, clock: ClockGuard | None = None) -> App:
    config = Config(store=StoreConfig(path=tmp_path / "store.sqlite3"),
                    spool=SpoolConfig(path=tmp_path / "spool.sqlite3"))
    return App(config, sources=[source], clock=clock)


def test_job_runs_go_on_while_the_spool_is_full_and_the_lost_lines_become_a_metric(
        tmp_path: Path) -> None:
    source = FiveReadings()
    (job,) = source.jobs()

    async def go() -> tuple[list[list[str]], list[str]]:
        app = _app(tmp_path, source)
        app.spool.append_text(_noise(0, 20), 20)
        _fill(app.spool)
        failed = [(await app.run_job(source, job)).errors for _ in range(2)]
        app.spool._db.execute("PRAGMA max_page_count=1000000")  # room again
        app.spool.health.recover_s = 0.0
        for _ in range(3):  # writable again after three appends in a row
            assert (await app.run_job(source, job)).ok
        lines = app.spool.lines()
        await app.aclose()
        return failed, lines

    failed, lines = asyncio.run(go())
    assert source.polls == 5  # polling went on
    for errors in failed:
        assert errors == [f"SpoolUnwritable: spool {tmp_path / 'spool.sqlite3'} cannot take "
                          "lines: database or disk is full (SQLITE_FULL)"]
    dropped = [parse_line(line) for line in lines if "metric=dropped" in line]
    # two runs of 5 readings and 3 self-metrics each (duration_s, points, errors)
    assert [(p.measurement, dict(p.tags), p.field("value")) for p in dropped] == [
        ("collector", {"source": "collector", "site": "collector", "device_id": "spool",
                       "device": "spool", "metric": "dropped", "reason": "disk_full"}, 16.0)]


def test_no_poll_is_made_while_the_clock_lies_before_the_build(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = FiveReadings()
    (job,) = source.jobs()
    guard = ClockGuard(not_before=datetime(2100, 1, 1, tzinfo=UTC))

    async def go() -> tuple[int, int]:
        app = _app(tmp_path, source, guard)
        for _ in range(3):
            assert not (await app.run_job(source, job)).ok
        await app.spool_metrics_async()
        before = app.spool.pending
        guard.not_before = datetime(2000, 1, 1, tzinfo=UTC)  # NTP has set the clock
        assert (await app.run_job(source, job)).ok
        after = app.spool.pending
        await app.aclose()
        return before, after

    with caplog.at_level(logging.WARNING):
        before, after = asyncio.run(go())
    assert (before, after, source.polls) == (0, 8, 1)
    said = [(r.levelname, r.getMessage()) for r in caplog.records
            if r.name == "collector.pipeline.clock"]
    assert len(said) == 2
    assert said[0][0] == "ERROR" and said[0][1].endswith(
        ", before this version of the collector was built (2100-01-31 00:00:00 UTC): no poll "
        "is made and nothing is written until the clock is set (NTP)")
    assert said[1][0] == "WARNING" and said[1][1].startswith("the clock is set now (")


def test_the_build_time_is_a_time_the_clock_cannot_be_before() -> None:
    assert datetime(2025, 1, 1, tzinfo=UTC) < built_at() <= datetime.now(UTC)
