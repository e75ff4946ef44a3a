"""The job runner: a streaming job's readings become one spool chunk, part by part."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from collector.app import App
from collector.config import Config, SpoolConfig, StoreConfig
from collector.errors import PartialFailure
from collector.lineprotocol import Encoder
from collector.model import Reading
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
            chunks = [lines for _, lines in app.spool.peek(1_000_000)
                      if not lines[0].startswith("collector,")]
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


def test_an_unencodable_reading_costs_the_whole_run(tmp_path: Path) -> None:
    source = StreamingSource([device(1, 2), device(2, 1, measurement="#comment"), device(3, 1)])
    chunks, points, errors = run_once(tmp_path, source)
    assert chunks == [] and points == 0
    assert len(errors) == 1 and errors[0].startswith("EncodeError: ")
