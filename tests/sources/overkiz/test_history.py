"""Overkiz history: pages of ``limit`` values, one encoded path segment, values at their own
time, units by the same rules as the live values, endpoints a server does not offer."""

from __future__ import annotations

import asyncio
import contextlib
import json
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
from collector.sources.overkiz.history import history_path, next_page, parse_history
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


def test_a_page_asks_for_limit_values_over_any_span() -> None:
    # "Max history query span is limited to 3 days if limit parameter is not set"
    path = history_path(METER, "core:TemperatureState", 1_767_225_600_000, 1_769_817_600_000)
    assert path == (
        f"/setup/devices/{SEGMENT}/states/core:TemperatureState/history/"
        "1767225600000/1769817600000?limit=1000"
    )


def test_a_full_answer_is_followed_by_the_page_after_its_last_value() -> None:
    full = parse_history({"historyValues": [
        {"value": str(i), "when": 5_000 + i} for i in range(1000)]})
    assert (full.count, full.last_ms) == (1000, 5_999)
    assert next_page(full, 9_000) == 6_000
    assert next_page(full, 5_999) is None  # the span is read to its end
    short = parse_history({"historyValues": [{"value": "1", "when": 7_000}]})
    assert next_page(short, 9_000) is None
    # an entry without a number still counts toward a full page
    gaps = parse_history({"historyValues": [
        {"value": None if i % 2 else "1", "when": i} for i in range(1000)]})
    assert (len(gaps.values), next_page(gaps, 5_000)) == (500, 1_000)


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


def _cloud(calls: list[str], pages: dict[str, list[object]],
           growing: httpx.Response | None = None):  # type: ignore[no-untyped-def]
    """A cloud that answers the setup fixture, history pages by state name in turn (an
    empty history when a state has no more), and growing index variations."""
    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode().removeprefix(CLOUD_PATH)
        calls.append(path)
        if path == "/login":
            return httpx.Response(200, json={}, headers={"Set-Cookie": "JSESSIONID=x"})
        if path == "/setup":
            return httpx.Response(
                200, content=(FIXTURES / "setup/meter-and-sensor.json").read_bytes()
            )
        if path == "/setup/devices/states/growingIndexes":
            return growing or httpx.Response(200, json=[
                {"deviceUrl": i["deviceUrl"], "stateName": i["stateName"], "delta": 0}
                for i in json.loads(request.content)])
        for name, queue in pages.items():
            if f"/states/{name}/history/" in path and queue:
                return httpx.Response(200, json=queue.pop(0))
        return httpx.Response(200, json={"historyValues": []})
    return answer


def test_backfill_pages_paths_and_times(tmp_path: Path) -> None:
    calls: list[str] = []
    energy = json.loads((FIXTURES / "history/energy-kwh.json").read_text())
    config = OverkizConfig(name="home", server="somfy_europe", username="u", password="p")
    http = httpx.AsyncClient(transport=httpx.MockTransport(
        _cloud(calls, {"core:ElectricEnergyConsumptionState": [energy]})))
    source = OverkizSource(config, state_dir=tmp_path, http=http)
    since = datetime(2026, 1, 1, tzinfo=UTC)
    sink = Sink(since)
    asyncio.run(source.history(since, sink))

    # two series (heater comfort setpoint, meter energy), one request each however long the
    # span; the meter's energy per day and month after them
    assert sink.windows == 2 + 1
    meter_calls = [c for c in calls if c.startswith(f"/setup/devices/{SEGMENT}/")]
    assert len(meter_calls) == 1
    assert meter_calls[0].startswith(
        f"/setup/devices/{SEGMENT}/states/core:ElectricEnergyConsumptionState/history/"
        "1767225600000/"
    )
    assert meter_calls[0].endswith("?limit=1000")
    meter_puts = [p for p in sink.puts if p[0] == f"{METER} core:ElectricEnergyConsumptionState"]
    ((_, points, until),) = meter_puts
    assert until > datetime.now(UTC) - timedelta(minutes=5)
    # deviceUnit kWh is an energy unit: it counts for the energy state (728.0 kWh = 728000 Wh)
    assert [(p.measurement, p.value, p.time) for p in points] == [
        ("energy_wh", 728000.0, datetime(2026, 1, 1, 0, 0, tzinfo=UTC)),
        ("energy_wh", 728500.0, datetime(2026, 1, 1, 1, 0, tzinfo=UTC)),
    ]


def test_a_full_page_is_followed_from_its_last_value(tmp_path: Path) -> None:
    calls: list[str] = []
    start_ms = 1_767_225_600_000
    full = {"historyValues": [{"value": "19.5", "when": start_ms + i * 60_000}
                              for i in range(1000)]}
    rest = {"historyValues": [{"value": "20.0", "when": start_ms + 1000 * 60_000}]}
    config = OverkizConfig(name="home", server="somfy_europe", username="u", password="p")
    http = httpx.AsyncClient(transport=httpx.MockTransport(
        _cloud(calls, {"core:ComfortRoomTemperatureState": [full, rest]})))
    source = OverkizSource(config, state_dir=tmp_path, http=http)
    sink = Sink(datetime(2026, 1, 1, tzinfo=UTC))
    asyncio.run(source.history(sink.begin, sink))
    heater = [c for c in calls if "ComfortRoomTemperatureState/history/" in c]
    assert len(heater) == 2
    # the second page starts 1 ms after the last value of the first: 999 minutes on
    assert heater[1].split("/history/")[1].startswith(f"{start_ms + 999 * 60_000 + 1}/")
    series = [(p[1], p[2]) for p in sink.puts if p[0].endswith("ComfortRoomTemperatureState")]
    assert [len(points) for points, _ in series] == [1000, 1]
    assert series[0][1] == datetime(2026, 1, 1, 16, 39, 0, 1000, tzinfo=UTC)
    assert series[1][0][0].value == 20.0
    assert series[1][0][0].time == datetime(2026, 1, 1, 16, 40, tzinfo=UTC)


def test_history_units_follow_the_live_rules(tmp_path: Path) -> None:
    """A thermometer's battery history and a meter's power history keep their own units
    although the answer's deviceUnit names the device's main measurement."""
    setup = {"devices": [
        {"deviceURL": "io://1/1#1", "label": "Thermo", "controllableName": "io:T",
         "attributes": [{"name": "core:MeasuredValueType", "value": "core:TemperatureInCelcius"}],
         "states": [{"name": "core:BatteryLevelState", "type": 1, "value": 80}]},
        {"deviceURL": "io://1/2#1", "label": "Meter", "controllableName": "io:M",
         "attributes": [
             {"name": "core:MeasuredValueType", "value": "core:ElectricalEnergyInWh"},
             {"name": "core:ElectricPowerConsumptionStateMeasuredValueType",
              "value": "core:ElectricalPowerInKW"}],
         "states": [{"name": "core:ElectricPowerConsumptionState", "type": 2, "value": 1.2}]},
    ]}

    def cloud(request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode().removeprefix(CLOUD_PATH)
        if path == "/login":
            return httpx.Response(200, json={}, headers={"Set-Cookie": "JSESSIONID=x"})
        if path == "/setup":
            return httpx.Response(200, json=setup)
        if "BatteryLevelState" in path:
            return httpx.Response(200, json={"historyValues": [{"value": "79", "when": 60_000}],
                                             "deviceUnit": "core:TemperatureInCelcius"})
        return httpx.Response(200, json={"historyValues": [{"value": "1.5", "when": 60_000}],
                                         "deviceUnit": "core:ElectricalEnergyInWh"})

    config = OverkizConfig(name="home", server="somfy_europe", username="u", password="p")
    http = httpx.AsyncClient(transport=httpx.MockTransport(cloud))
    source = OverkizSource(config, state_dir=tmp_path, http=http)
    sink = Sink(datetime(1970, 1, 1, tzinfo=UTC))
    asyncio.run(source.history(sink.begin, sink))
    got = {(p.measurement, p.value, p.time) for _, points, _ in sink.puts for p in points}
    assert got == {
        ("battery_pct", 79.0, datetime(1970, 1, 1, 0, 1, tzinfo=UTC)),
        ("power_w", 1500.0, datetime(1970, 1, 1, 0, 1, tzinfo=UTC)),
    }


def test_an_endpoint_the_server_does_not_offer_switches_its_feature_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    not_offered = httpx.Response(404, json={"errorCode": "INVALID_API_CALL",
                                            "error": "No such resource"})
    config = OverkizConfig(name="home", server="somfy_europe", username="u", password="p")
    http = httpx.AsyncClient(transport=httpx.MockTransport(
        _cloud(calls, {}, growing=not_offered)))
    source = OverkizSource(config, state_dir=tmp_path, http=http)
    sink = Sink(datetime(2026, 1, 1, tzinfo=UTC))
    asyncio.run(source.history(sink.begin, sink))  # no PartialFailure: nothing failed
    assert asyncio.run(source.read_periods()) == []
    assert asyncio.run(source.read_periods()) == []
    assert sum(1 for c in calls if c.endswith("/growingIndexes")) == 1  # asked once
    warnings = [r for r in caplog.records if "does not offer" in r.getMessage()]
    assert len(warnings) == 1
    assert "growing index variations" in warnings[0].getMessage()
    assert list(source.off) == ["energy per day and month (growing index variations)"]


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
