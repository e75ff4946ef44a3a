from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.config import Config, SpoolConfig, StoreConfig
from collector.errors import ConfigError, PartialFailure
from collector.model import Reading
from collector.pipeline.app import App
from collector.pipeline.backfill import BackfillOutcome, parse_since, run_backfill
from collector.sources.base import HistorySink, Source
from collector.stores.sqlite import SqliteStore

T0 = datetime(2026, 11, 20, tzinfo=UTC)
DAY = timedelta(days=1)
Window = tuple[str, datetime, datetime]


class Killed(BaseException):
    """Stands in for the process being killed: nothing in the collector catches it."""


class HistorySource(Source):
    """Device-side history in one-day windows per series, like a cloud's history API.

    Each window holds one temperature reading one hour after the window's start (value:
    the day of the month). ``failing`` series fail at their first window; with
    ``kill_after`` the run dies after that many stored windows.
    """

    kind = "overkiz"

    def __init__(self, now: datetime, *, series: Sequence[str] = ("a", "b", "bad"),
                 failing: Sequence[str] = ("bad",), kill_after: int | None = None) -> None:
        super().__init__("home", 60.0)
        self.now = now
        self.series = series
        self.failing = failing
        self.kill_after = kill_after
        self.requested: list[Window] = []

    async def poll(self) -> Sequence[Reading]:
        return ()

    async def history(self, since: datetime, sink: HistorySink) -> None:
        plans: dict[str, list[tuple[datetime, datetime]]] = {}
        for series in self.series:
            start, plans[series] = sink.start(series), []
            while start < self.now:
                plans[series].append((start, min(start + DAY, self.now)))
                start += DAY
        sink.total(sum(len(p) for p in plans.values()))
        errors, stored = [], 0
        for series, windows in plans.items():
            for begin, end in windows:
                await asyncio.sleep(0)
                self.requested.append((series, begin, end))
                if series in self.failing:
                    errors.append(f"{series}: TransientError: HTTP 503")
                    break
                if self.kill_after is not None and stored == self.kill_after:
                    raise Killed
                at = begin + timedelta(hours=1)
                sink.put(series, [Reading("temperature_c", float(at.day), at, "overkiz",
                                          "home", f"dev-{series}", series.upper())], until=end)
                stored += 1
        if errors:
            raise PartialFailure((), errors)


class NoHistory(Source):
    kind = "thinknx"

    async def poll(self) -> Sequence[Reading]:
        return ()


def config(tmp_path: Path) -> Config:
    return Config(store=StoreConfig(path=tmp_path / "store.sqlite3"),
                  spool=SpoolConfig(path=tmp_path / "spool.sqlite3"))


def backfill(tmp_path: Path, sources: Sequence[Source], since: datetime,
             restart: bool = False) -> list[BackfillOutcome]:
    async def go() -> list[BackfillOutcome]:
        app = App(config(tmp_path), sources=sources)
        try:
            return await run_backfill(app, since, restart=restart)
        finally:
            await app.aclose()

    return asyncio.run(go())


def state_file(tmp_path: Path) -> Path:
    return tmp_path / "spool.sqlite3.backfill.json"


def state(tmp_path: Path) -> dict[str, object]:
    path = state_file(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    data: dict[str, object] = json.loads(path.read_text())
    return data


def stored(tmp_path: Path) -> list[tuple[str, datetime, float]]:
    store = SqliteStore(tmp_path / "store.sqlite3")
    try:
        rows = list(store.query("temperature_c", None, None, None))
    finally:
        store.close()
    return sorted((tags["device_id"], datetime.fromtimestamp(t / 1e9, UTC), value)
                  for t, tags, value, _ in rows)


def test_parse_since() -> None:
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    assert parse_since("7d", now=now) == now - timedelta(days=7)
    assert parse_since("12h", now=now) == now - timedelta(hours=12)
    assert parse_since("30m", now=now) == now - timedelta(minutes=30)
    assert parse_since("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since("2026-11-01T00:00:00+01:00") == datetime(2026, 10, 31, 23, tzinfo=UTC)
    with pytest.raises(ConfigError, match="--since: 'yesterday'"):
        parse_since("yesterday")


def test_a_rerun_fetches_only_what_is_missing(tmp_path: Path) -> None:
    first = HistorySource(T0)
    (o1,) = backfill(tmp_path, [first], T0 - 3 * DAY)
    assert first.requested == [
        ("a", T0 - 3 * DAY, T0 - 2 * DAY), ("a", T0 - 2 * DAY, T0 - DAY), ("a", T0 - DAY, T0),
        ("b", T0 - 3 * DAY, T0 - 2 * DAY), ("b", T0 - 2 * DAY, T0 - DAY), ("b", T0 - DAY, T0),
        ("bad", T0 - 3 * DAY, T0 - 2 * DAY),
    ]
    assert (o1.windows, o1.expected, o1.points, o1.series, o1.resumed) == (6, 9, 6, {"a", "b"},
                                                                           set())
    assert o1.errors == ["bad: TransientError: HTTP 503"]
    assert state(tmp_path) == {"version": 2, "watermarks": {"overkiz:home": {
        "a": "2026-11-20T00:00:00+00:00", "b": "2026-11-20T00:00:00+00:00"}}}

    # Twelve hours later, asked for a whole week: a and b continue at their watermark, the
    # failed series starts at --since.
    later = T0 + DAY / 2
    second = HistorySource(later)
    (o2,) = backfill(tmp_path, [second], later - 7 * DAY)
    assert second.requested == [("a", T0, later), ("b", T0, later),
                                ("bad", later - 7 * DAY, later - 6 * DAY)]
    assert (o2.windows, o2.expected, o2.points, o2.resumed) == (2, 9, 2, {"a", "b"})
    assert o2.errors == ["bad: TransientError: HTTP 503"]
    assert stored(tmp_path) == [
        (f"dev-{s}", T0 + d * DAY + timedelta(hours=1), float(17 + d + 3))
        for s in "ab" for d in (-3, -2, -1, 0)
    ]


def test_the_state_file_does_not_grow_per_run(tmp_path: Path) -> None:
    sizes, keys = [], []
    for since in ("7d", "30d", "7d", "2026-11-01", "12h"):
        backfill(tmp_path, [HistorySource(T0)], parse_since(since, now=T0))
        sizes.append(state_file(tmp_path).stat().st_size)
        keys.append(sorted(state(tmp_path)["watermarks"]["overkiz:home"]))  # type: ignore[index]
    assert keys == [["a", "b"]] * 5
    assert len(set(sizes)) == 1


def test_a_killed_backfill_resumes_after_the_last_stored_window(tmp_path: Path) -> None:
    killed = HistorySource(T0, kill_after=4)
    with pytest.raises(Killed):
        backfill(tmp_path, [killed], T0 - 3 * DAY)
    assert killed.requested[-1] == ("b", T0 - 2 * DAY, T0 - DAY)  # the fifth, never stored
    assert state(tmp_path)["watermarks"] == {"overkiz:home": {
        "a": "2026-11-20T00:00:00+00:00", "b": "2026-11-18T00:00:00+00:00"}}

    again = HistorySource(T0)
    (outcome,) = backfill(tmp_path, [again], T0 - 3 * DAY)
    assert again.requested == [("b", T0 - 2 * DAY, T0 - DAY), ("b", T0 - DAY, T0),
                               ("bad", T0 - 3 * DAY, T0 - 2 * DAY)]
    assert (outcome.windows, outcome.points) == (2, 2)
    # every window exactly once in the store: the four before the kill were spooled
    assert stored(tmp_path) == [
        (f"dev-{s}", T0 + d * DAY + timedelta(hours=1), float(20 + d))
        for s in "ab" for d in (-3, -2, -1)
    ]


def test_restart_ignores_the_watermarks(tmp_path: Path) -> None:
    backfill(tmp_path, [HistorySource(T0)], T0 - 2 * DAY)
    redo = HistorySource(T0)
    (outcome,) = backfill(tmp_path, [redo], T0 - 2 * DAY, restart=True)
    assert [w[:2] for w in redo.requested] == [("a", T0 - 2 * DAY), ("a", T0 - DAY),
                                               ("b", T0 - 2 * DAY), ("b", T0 - DAY),
                                               ("bad", T0 - 2 * DAY)]
    assert outcome.resumed == set() and outcome.points == 4


@pytest.mark.parametrize("old", [
    '{"2026-11-13T00:00:00.123456+00:00": ["overkiz:home"]}',  # the per---since format
    "not json at all",
    '{"version": 2, "watermarks": {"overkiz:home": {"a": "yesterday", "b": 5}}}',
])
def test_an_old_or_broken_state_file_is_ignored_and_replaced(tmp_path: Path, old: str) -> None:
    state_file(tmp_path).write_text(old)
    source = HistorySource(T0, failing=())
    (outcome,) = backfill(tmp_path, [source], T0 - DAY)
    assert outcome.errors == [] and outcome.points == 3
    assert [w[:2] for w in source.requested] == [("a", T0 - DAY), ("b", T0 - DAY),
                                                 ("bad", T0 - DAY)]
    assert state(tmp_path)["watermarks"] == {"overkiz:home": {
        s: "2026-11-20T00:00:00+00:00" for s in ("a", "b", "bad")}}


def test_a_source_without_history_is_reported_as_such(tmp_path: Path) -> None:
    outcomes = backfill(tmp_path, [NoHistory("knx", 60.0), HistorySource(T0)], T0 - DAY)
    assert [(o.source, o.has_history, o.points) for o in outcomes] == [
        ("thinknx:knx", False, 0), ("overkiz:home", True, 2)]


def test_an_unknown_source_name_is_a_config_error(tmp_path: Path) -> None:
    async def go() -> None:
        app = App(config(tmp_path), sources=[HistorySource(T0)])
        try:
            await run_backfill(app, T0, source_name="nope")
        finally:
            await app.aclose()

    with pytest.raises(ConfigError, match=r"no source named 'nope' \(known: overkiz:home\)"):
        asyncio.run(go())
    assert not state_file(tmp_path).exists()


class Recorder:
    """A ``Progress`` that writes down what a progress bar would show."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    def begin(self, source: str) -> None:
        self.calls.append(("begin", source, 0))

    def expect(self, source: str, windows: int) -> None:
        self.calls.append(("expect", source, windows))

    def advance(self, source: str, points: int) -> None:
        self.calls.append(("advance", source, points))


def test_progress_follows_the_windows_of_each_source(tmp_path: Path) -> None:
    progress = Recorder()

    async def go() -> None:
        app = App(config(tmp_path), sources=[NoHistory("knx", 60.0), HistorySource(T0)])
        try:
            await run_backfill(app, T0 - 2 * DAY, progress=progress)
        finally:
            await app.aclose()

    asyncio.run(go())
    assert progress.calls == [("begin", "overkiz:home", 0), ("expect", "overkiz:home", 6),
                              *[("advance", "overkiz:home", 1)] * 4]
