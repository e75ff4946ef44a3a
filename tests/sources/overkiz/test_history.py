"""Overkiz history: 3-day windows, one encoded path segment, values at their own time."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.config import OverkizConfig
from collector.errors import ParseError
from collector.model import Reading
from collector.sources.overkiz.client import CLOUD_PATH
from collector.sources.overkiz.history import Window, ms, parse_history, window_count, windows
from collector.sources.overkiz.source import OverkizSource

FIXTURES = Path(__file__).parents[2] / "fixtures" / "overkiz"
METER = "io://1234-5678-9012/5541257#5"
SEGMENT = "io%3A%2F%2F1234-5678-9012%2F5541257%235"


class Sink:
    def __init__(self, start: datetime) -> None:
        self.begin = start
        self.puts: list[tuple[str, list[Reading], datetime]] = []
        self.windows: int | None = None

    def start(self, series: str) -> datetime:
        return self.begin

    def put(self, series: str, readings: Sequence[Reading], *, until: datetime) -> None:
        self.puts.append((series, list(readings), until))

    def total(self, windows: int) -> None:
        self.windows = windows


DAY_MS = 86_400_000


def test_windows_cover_thirty_days_in_ten_windows_without_overlap() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    s = 1_767_225_600_000  # 2026-01-01T00:00:00Z in epoch ms
    got = windows(start, start + timedelta(days=30))
    # both bounds are inclusive: each window starts 1 ms after the previous one ends
    assert got == [Window(s, s + 3 * DAY_MS)] + [
        Window(s + 3 * k * DAY_MS + k, min(s + 3 * (k + 1) * DAY_MS + k, s + 30 * DAY_MS))
        for k in range(1, 10)
    ]
    assert got[-1].to_ms == s + 30 * DAY_MS
    assert got[-1].until == start + timedelta(days=30, milliseconds=1)
    assert window_count(start, start + timedelta(days=30)) == 10


def test_windows_of_a_span_just_over_the_grid() -> None:
    start = datetime(2026, 1, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    s = 1_767_268_800_250
    end = start + timedelta(days=7, hours=1)
    assert windows(start, end) == [
        Window(s, s + 3 * DAY_MS),
        Window(s + 3 * DAY_MS + 1, s + 6 * DAY_MS + 1),
        Window(s + 6 * DAY_MS + 2, s + 7 * DAY_MS + 3_600_000),
    ]
    assert windows(end, start) == []
    assert windows(start, start) == [Window(s, s)]


@given(st.integers(0, 10**12), st.integers(0, 200 * DAY_MS))
def test_windows_tile_the_range_exactly(first_ms: int, span_ms: int) -> None:
    start = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(milliseconds=first_ms)
    got = windows(start, start + timedelta(milliseconds=span_ms))
    assert got[0].from_ms == ms(start) and got[-1].to_ms == ms(start) + span_ms
    assert all(0 <= w.to_ms - w.from_ms <= 3 * DAY_MS for w in got)
    assert all(b.from_ms == a.to_ms + 1 for a, b in itertools.pairwise(got))
    assert len(got) == -(-(span_ms + 1) // (3 * DAY_MS + 1))


def test_parse_history_values_and_unit() -> None:
    doc = {"historyValues": [{"value": "21.5", "when": 1000}, {"value": None, "when": 2000}],
           "deviceUnit": "core:TemperatureInCelcius"}
    answer = parse_history(doc)
    assert answer.values == ((1000, 21.5),)
    assert answer.unit == "core:TemperatureInCelcius"
    with pytest.raises(ParseError, match=r"historyValues\[0\].value"):
        parse_history({"historyValues": [{"value": "warm", "when": 1}]})


def _containers(inner: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    keys = st.sampled_from(["historyValues", "value", "when", "deviceUnit", "x"])
    return st.lists(inner, max_size=3) | st.dictionaries(keys, inner)


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    _containers,
    max_leaves=15,
))
def test_fuzz_history_only_typed_errors(doc: object) -> None:
    with contextlib.suppress(ParseError):
        parse_history(doc)


def test_backfill_windows_paths_and_times(tmp_path: Path) -> None:
    calls: list[str] = []

    def cloud(request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode().removeprefix(CLOUD_PATH)
        calls.append(path)
        if path == "/login":
            return httpx.Response(200, json={}, headers={"Set-Cookie": "JSESSIONID=x"})
        if path == "/setup":
            return httpx.Response(
                200, content=(FIXTURES / "setup/meter-and-sensor.json").read_bytes()
            )
        if path.startswith(f"/setup/devices/{SEGMENT}/states/"):
            return httpx.Response(200, content=(FIXTURES / "history/energy-kwh.json").read_bytes())
        if path == "/setup/devices/states/growingIndexes":
            return httpx.Response(200, json=[])
        return httpx.Response(200, json={"historyValues": []})

    config = OverkizConfig(name="home", server="somfy_europe", username="u", password="p")
    http = httpx.AsyncClient(transport=httpx.MockTransport(cloud))
    source = OverkizSource(config, state_dir=tmp_path, http=http)
    since = datetime.now(UTC) - timedelta(days=4)
    sink = Sink(since)
    asyncio.run(source.history(since, sink))

    # two series (heater comfort setpoint, meter energy), two windows each; the meter's
    # energy per day and per month are one series each
    assert sink.windows == 4 + 2
    meter_calls = [c for c in calls if c.startswith(f"/setup/devices/{SEGMENT}/")
                   and "/daily/" not in c and "/monthly/" not in c]
    assert len(meter_calls) == 2
    low, high = meter_calls[0].rsplit("/", 2)[1:]
    assert meter_calls[0].startswith(
        f"/setup/devices/{SEGMENT}/states/core:ElectricEnergyConsumptionState/history/"
    )
    assert int(high) - int(low) == 3 * 86_400_000
    meter_puts = [p for p in sink.puts if p[0] == f"{METER} core:ElectricEnergyConsumptionState"]
    first_until, second_until = (until for _, _, until in meter_puts)
    assert first_until == since.replace(microsecond=since.microsecond // 1000 * 1000) + timedelta(
        days=3, milliseconds=1)
    assert second_until > first_until
    points = meter_puts[0][1]
    assert [(p.measurement, p.value, p.time) for p in points] == [
        ("energy_wh", 728000.0, datetime(2026, 1, 1, 0, 0, tzinfo=UTC)),
        ("energy_wh", 728500.0, datetime(2026, 1, 1, 1, 0, tzinfo=UTC)),
    ]


def test_local_api_has_no_history(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def gateway(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request {request.url}")

    config = OverkizConfig(name="gw", url="https://gateway-1.local:8443", token="tok")
    http = httpx.AsyncClient(transport=httpx.MockTransport(gateway))
    source = OverkizSource(config, state_dir=tmp_path, http=http)
    sink = Sink(datetime(2026, 1, 1, tzinfo=UTC))
    asyncio.run(source.history(sink.begin, sink))
    assert sink.puts == [] and sink.windows is None
    assert "no history" in caplog.text
    assert "tok" not in caplog.text.replace("token", "")
