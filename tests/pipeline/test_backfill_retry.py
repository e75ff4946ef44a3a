"""``collector backfill`` and its sources' refusals: a refusal with a short Retry-After is
waited out and the source goes on from the watermarks, a bounded number of times; the
state file keeps the watermarks of two processes writing it at once (a backfill while the
daemon heals gaps)."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.config import Config, SpoolConfig, StoreConfig
from collector.errors import TransientError
from collector.model import Reading
from collector.pipeline.app import App
from collector.pipeline.backfill import (
    MAX_RETRY_AFTER_S,
    RETRIES,
    BackfillOutcome,
    Watermarks,
    run_backfill,
)
from collector.sources.base import HistorySink, Source

HOUR = timedelta(hours=1)
WAIT_S = 60.0


# ---- the retry rule itself, in process ------------------------------------------------------


class Refusing(Source):
    """Two series in windows of an hour up to the present (the last one shorter), as a
    cloud's history; the request numbers in ``refuse`` are answered "too many requests"
    with ``retry_after``."""

    kind = "overkiz"

    def __init__(self, *, refuse: set[int], retry_after: float | None = 0.0,
                 hands_over_empty: bool = False) -> None:
        super().__init__("home", 60.0)
        self.refuse, self.retry_after = refuse, retry_after
        #: Like the FRITZ!Box: a series with nothing to ask is still handed over, empty,
        #: up to the present.
        self.hands_over_empty = hands_over_empty
        self.asked: list[tuple[str, datetime]] = []
        self.ends: list[datetime] = []

    async def poll(self) -> Sequence[Reading]:
        return ()

    async def history(self, since: datetime, sink: HistorySink) -> None:
        end = datetime.now(UTC)
        self.ends.append(end)
        plan: dict[str, list[tuple[datetime, datetime]]] = {}
        for series in ("a", "b"):
            at, plan[series] = sink.start(series), []
            while at < end:
                plan[series].append((at, min(at + HOUR, end)))
                at += HOUR
        sink.total(sum(len(w) for w in plan.values()))
        for series, windows in plan.items():
            if not windows and self.hands_over_empty:
                sink.put(series, [], until=end)
            for begin, until in windows:
                self.asked.append((series, begin))
                if len(self.asked) in self.refuse:
                    raise TransientError("HTTP 429", retry_after=self.retry_after)
                sink.put(series, [Reading("temperature_c", float(begin.minute), begin,
                                          "overkiz", "home", series, series.upper())],
                         until=until)


class Bars:
    """A ``Progress`` that keeps what a progress bar would show."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0

    def begin(self, source: str) -> None:
        pass

    def expect(self, source: str, windows: int) -> None:
        self.total += windows

    def advance(self, source: str, points: int) -> None:
        self.done += 1


def backfill_in_process(tmp_path: Path, source: Source, since: datetime,
                        progress: Bars | None = None) -> BackfillOutcome:
    config = Config(store=StoreConfig(path=tmp_path / "store.sqlite3"),
                    spool=SpoolConfig(path=tmp_path / "spool.sqlite3"))

    async def go() -> BackfillOutcome:
        app = App(config, sources=[source])
        try:
            (outcome,) = await run_backfill(app, since, progress=progress)
            return outcome
        finally:
            await app.aclose()

    return asyncio.run(go())



@pytest.mark.parametrize("hands_over_empty", [False, True])
def test_a_refused_source_goes_on_from_its_watermarks_and_asks_no_window_twice(
        tmp_path: Path, hands_over_empty: bool) -> None:
    since = datetime.now(UTC) - 2.5 * HOUR
    # refused at a's second window, then at b's first one (twice in a row)
    source = Refusing(refuse={2, 5, 6}, hands_over_empty=hands_over_empty)
    bars = Bars()
    outcome = backfill_in_process(tmp_path, source, since, bars)
    assert outcome.errors == [] and outcome.retries == 3
    assert source.asked == [
        ("a", since), ("a", since + HOUR),  # refused
        ("a", since + HOUR), ("a", since + 2 * HOUR), ("b", since),  # refused
        ("b", since),  # refused again; a, done up to the run's start, is not asked again
        ("b", since), ("b", since + HOUR), ("b", since + 2 * HOUR),
    ]
    empty = 2 if hands_over_empty else 0  # a, handed over empty in the last two attempts
    assert (outcome.windows, outcome.points) == (6 + empty, 6)
    assert (bars.done, bars.total) == (6 + empty, outcome.expected)  # not counted twice
    assert outcome.resumed == set()  # nothing came from an earlier run
    # a's watermark stays where its last window ended: what was recorded since is left to
    # the next run, whatever the source handed over for it after that
    marks = Watermarks(tmp_path / "spool.sqlite3.backfill.json")
    assert marks.get("overkiz:home", "a") == source.ends[1]
    assert marks.get("overkiz:home", "b") == source.ends[3]


@pytest.mark.parametrize(("retry_after", "refuse", "asked"), [
    (0.0, {1, 2, 3, 4, 5}, RETRIES + 1),  # RETRIES waits in a row without a stored window
    (None, {1}, 1),  # no Retry-After: no wait
    (MAX_RETRY_AFTER_S + 1, {1}, 1),  # too long to wait for: run again later
])
def test_refusals_are_waited_out_a_bounded_number_of_times(
        tmp_path: Path, retry_after: float | None, refuse: set[int], asked: int) -> None:
    source = Refusing(refuse=refuse, retry_after=retry_after)
    outcome = backfill_in_process(tmp_path, source, datetime.now(UTC) - 2.5 * HOUR)
    assert len(source.asked) == asked
    assert outcome.retries == asked - 1
    assert outcome.errors == ["TransientError: HTTP 429"]
    assert outcome.windows == 0


# ---- the state file shared by two processes -----------------------------------------------


def test_two_writers_keep_each_others_watermarks(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3.backfill.json"
    at = datetime(2026, 11, 20, tzinfo=UTC)
    # a writer killed between writing its temporary file and renaming it left this
    (tmp_path / f".{path.name}.4242.tmp").write_text('{"version": 2, "watermarks": {')
    backfill, daemon = Watermarks(path), Watermarks(path)  # both read the file at start
    backfill.set("overkiz:home", "a", at)
    daemon.set("overkiz:home", "b", at + HOUR)  # its copy has no "a"
    backfill.set("fritzbox:home", "stats:1", at + 2 * HOUR)  # its copy has no "b"
    again = Watermarks(path)
    assert [again.get("overkiz:home", "a"), again.get("overkiz:home", "b"),
            again.get("fritzbox:home", "stats:1")] == [at, at + HOUR, at + 2 * HOUR]
    assert (tmp_path / f".{path.name}.lock").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".{path.name}.lock", path.name]


def _set_many(path: Path, source: str, n: int) -> None:
    marks = Watermarks(path)
    at = datetime(2026, 11, 20, tzinfo=UTC)
    for i in range(n):
        marks.set(source, f"s{i}", at + i * HOUR)


def test_two_processes_writing_at_once_lose_no_watermark(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3.backfill.json"
    fork = multiprocessing.get_context("fork")
    writers = [fork.Process(target=_set_many, args=(path, source, 40))
               for source in ("overkiz:home", "fritzbox:home")]
    for w in writers:
        w.start()
    for w in writers:
        w.join(WAIT_S)
        assert w.exitcode == 0
    data = json.loads(path.read_text())
    assert {source: len(series) for source, series in data["watermarks"].items()} == {
        "overkiz:home": 40, "fritzbox:home": 40}
