"""The job runner: a streaming job's readings become one spool chunk, part by part."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.config import Config, SpoolConfig, StoreConfig
from collector.errors import PartialFailure
from collector.lineprotocol import Encoder, parse_line
from collector.model import Reading
from collector.pipeline.app import App, JobOutcome
from collector.pipeline.spool import Spool
from collector.sources.base import ReadingSink, Source, SourceJob

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def device(n: int, count: int, measurement: str = "power_w") -> list[Reading]:
    return [Reading(measurement, float(i), T0, "fritzbox", "test", f"dev{n}", f"Device {n}")
            for i in range(count)]


class StreamingSource(Source):
    """Hands its statistics over one device at a time; ``parts`` decides what it sends."""

    kind = "fritzbox"

    def __init__(self, parts: list[list[Reading]], errors: list[str] | None = None) -> None:
        super().__init__("test", 60.0)
        self.parts = parts
        self.errors = errors or []

    async def run(self) -> Sequence[Reading]:
        raise AssertionError("the runner streams when it can")

    async def stream(self, sink: ReadingSink) -> None:
        for part in self.parts:
            await asyncio.sleep(0)
            sink(part)
        if self.errors:
            raise PartialFailure((), self.errors)

    def jobs(self) -> Sequence[SourceJob]:
        return (SourceJob("stats", 60.0, self.run, self.stream),)


def run_once(tmp_path: Path, source: StreamingSource) -> tuple[list[list[str]], int, list[str]]:
    """The job's spooled chunks (without the self-metrics), its points and its errors."""

    async def go() -> tuple[list[list[str]], int, list[str]]:
        config = Config(store=StoreConfig(path=tmp_path / "store.sqlite3"),
                        spool=SpoolConfig(path=tmp_path / "spool.sqlite3"))
        app = App(config, sources=[source])
        try:
            (job,) = source.jobs()
            outcome = await app.run_job(source, job)
            # a run's self-metrics ride in its chunk, after its readings
            chunks = [[line for line in lines if not line.startswith("collector,")]
                      for _, lines in app.spool.peek(1_000_000)]
            chunks = [lines for lines in chunks if lines]
            return chunks, outcome.points, outcome.errors
        finally:
            await app.aclose()

    return asyncio.run(go())


def test_streamed_parts_become_one_chunk(tmp_path: Path) -> None:
    parts = [device(1, 3), device(2, 0), device(3, 2)]
    chunks, points, errors = run_once(tmp_path, StreamingSource(parts))
    assert errors == []
    assert points == 5
    assert chunks == [Encoder().encode_many([r for part in parts for r in part])]


def test_a_partial_stream_keeps_what_it_handed_over(tmp_path: Path) -> None:
    source = StreamingSource([device(1, 2)], errors=["stats:dev2: TransientError: HTTP 500"])
    chunks, points, errors = run_once(tmp_path, source)
    assert points == 2 and [len(c) for c in chunks] == [2]
    assert errors == ["stats:dev2: TransientError: HTTP 500"]


FAR_FUTURE = datetime.fromtimestamp(20_000_000_000, UTC)  # 2603: beyond InfluxDB's range


def button(device_id: str, when: datetime) -> Reading:
    return Reading("button_time", 1.0, when, "fritzbox", "test", device_id, "Button")


def test_an_unencodable_reading_costs_only_itself(tmp_path: Path) -> None:
    parts = [device(1, 2), [button("btn1", FAR_FUTURE), *device(2, 1)], device(3, 1)]
    chunks, points, errors = run_once(tmp_path, StreamingSource(parts))
    assert errors == []
    assert points == 4
    assert chunks == [[
        "power_w,device=Device\\ 1,device_id=dev1,site=test,source=fritzbox value=0.0 "
        "1772323200000000000",
        "power_w,device=Device\\ 1,device_id=dev1,site=test,source=fritzbox value=1.0 "
        "1772323200000000000",
        "power_w,device=Device\\ 2,device_id=dev2,site=test,source=fritzbox value=0.0 "
        "1772323200000000000",
        "power_w,device=Device\\ 3,device_id=dev3,site=test,source=fritzbox value=0.0 "
        "1772323200000000000",
    ]]


def test_drops_are_counted_in_the_outcome_and_the_self_metrics(tmp_path: Path) -> None:
    source = StreamingSource([[button("btn1", FAR_FUTURE), button("btn2", FAR_FUTURE),
                               *device(1, 1)]])

    async def go() -> tuple[JobOutcome, list[str]]:
        config = Config(store=StoreConfig(path=tmp_path / "store.sqlite3"),
                        spool=SpoolConfig(path=tmp_path / "spool.sqlite3"))
        app = App(config, sources=[source])
        try:
            (job,) = source.jobs()
            outcome = await app.run_job(source, job)
            lines = [line for _, chunk in app.spool.peek(1_000_000) for line in chunk
                     if line.startswith("collector,")]
            return outcome, lines
        finally:
            await app.aclose()

    outcome, metrics = asyncio.run(go())
    assert outcome.ok and outcome.points == 1 and outcome.dropped == 2
    assert set(outcome.drops) == {("button_time", "btn1"), ("button_time", "btn2")}
    note = outcome.drop_note()
    assert note is not None and note.startswith("2 unencodable readings dropped (button_time btn1")
    assert "outside InfluxDB's range" in note
    by_metric = {parse_line(line).tags: parse_line(line).field("value") for line in metrics}
    dropped = [v for tags, v in by_metric.items() if ("metric", "dropped") in tags]
    errors = [v for tags, v in by_metric.items() if ("metric", "errors") in tags]
    assert dropped == [2.0] and errors == [0.0]


def test_a_run_without_drops_has_no_dropped_metric(tmp_path: Path) -> None:
    chunks, points, errors = run_once(tmp_path, StreamingSource([device(1, 2)]))
    assert [len(c) for c in chunks] == [2]
    assert points == 2 and errors == []
    spool = Spool(tmp_path / "spool.sqlite3")
    metrics = sorted(dict(parse_line(line).tags)["metric"]
                     for _, chunk in spool.peek(1_000_000) for line in chunk
                     if line.startswith("collector,"))
    spool.close()
    assert metrics == ["duration_s", "errors", "points"]


def test_drops_are_logged_once_per_state_change(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    bad = [button("btn1", FAR_FUTURE), *device(1, 1)]
    other = [button("btn2", FAR_FUTURE), *device(1, 1)]
    rounds = [bad, bad, [button("btn1", FAR_FUTURE), button("btn1", FAR_FUTURE)], other,
              device(1, 1), device(1, 1)]
    source = StreamingSource([])

    async def go() -> None:
        config = Config(store=StoreConfig(path=tmp_path / "store.sqlite3"),
                        spool=SpoolConfig(path=tmp_path / "spool.sqlite3"))
        app = App(config, sources=[source])
        try:
            (job,) = source.jobs()
            for part in rounds:
                source.parts = [part]
                await app.run_job(source, job)
        finally:
            await app.aclose()

    with caplog.at_level(logging.WARNING, logger="collector.pipeline.app"):
        asyncio.run(go())
    messages = [r.getMessage() for r in caplog.records if r.name == "collector.pipeline.app"]
    assert [m.split(" (")[0] for m in messages] == [
        "fritzbox:test:stats: 1 unencodable reading dropped",  # btn1 starts
        "fritzbox:test:stats: 1 unencodable reading dropped",  # btn2 instead of btn1
        "fritzbox:test:stats works again",
    ]
    assert "button_time btn2" in messages[1]
