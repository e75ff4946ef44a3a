"""Overkiz energy per local day and month: periods, aggregated history, growing indexes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.config import OverkizConfig
from collector.errors import ParseError
from collector.model import Reading
from collector.sources.overkiz.client import CLOUD_PATH, OverkizClient
from collector.sources.overkiz.energy import meters, period_readings
from collector.sources.overkiz.history import ms
from collector.sources.overkiz.limits import RateLimiter
from collector.sources.overkiz.parse import State, parse_setup
from collector.sources.overkiz.periods import Period, Slot, parse_growing, period_start, slots
from collector.sources.overkiz.readings import period_reading, reading
from collector.sources.overkiz.source import OverkizSource

FIXTURES = Path(__file__).parents[2] / "fixtures" / "overkiz"
PARIS = ZoneInfo("Europe/Paris")
METER = "io://1234-5678-9012/7001#1"
SEGMENT = "io%3A%2F%2F1234-5678-9012%2F7001%231"
ENERGY = "core:ElectricEnergyConsumptionState"
# 2026-03-30 12:00 in Paris (CEST); the night before, Paris went from CET to CEST
NOW = datetime(2026, 3, 30, 10, 0, tzinfo=UTC)
SINCE = datetime(2026, 3, 27, 15, 0, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_day_slots_are_local_days_across_the_clock_change() -> None:
    got = slots(SINCE, NOW, Period.DAY, PARIS)
    assert got == [
        Slot(utc("2026-03-26T23:00"), utc("2026-03-27T23:00")),
        Slot(utc("2026-03-27T23:00"), utc("2026-03-28T23:00")),
        Slot(utc("2026-03-28T23:00"), utc("2026-03-29T22:00")),  # 23 hours long
        Slot(utc("2026-03-29T22:00"), utc("2026-03-30T22:00")),  # the running day
    ]


def test_month_slots_start_on_the_first_local_midnight() -> None:
    got = slots(utc("2026-01-15T00:00"), NOW, Period.MONTH, PARIS)
    assert [(s.begin, s.end) for s in got] == [
        (utc("2025-12-31T23:00"), utc("2026-01-31T23:00")),
        (utc("2026-01-31T23:00"), utc("2026-02-28T23:00")),
        (utc("2026-02-28T23:00"), utc("2026-03-31T22:00")),
    ]
    assert slots(utc("2026-12-31T23:30"), utc("2027-01-01T00:30"), Period.MONTH, PARIS) == [
        Slot(utc("2026-12-31T23:00"), utc("2027-01-31T23:00"))
    ]


@given(
    st.datetimes(datetime(2001, 1, 1), datetime(2090, 1, 1), timezones=st.just(UTC)),
    st.integers(0, 100 * 86400),
    st.sampled_from(list(Period)),
    st.sampled_from(["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "UTC"]),
)
def test_slots_tile_from_start_to_end(
    start: datetime, span_s: int, period: Period, zone: str
) -> None:
    tz = ZoneInfo(zone)
    end = start + timedelta(seconds=span_s)
    got = slots(start, end, period, tz)
    assert got[0].begin <= start < got[0].end
    assert got[-1].begin <= end < got[-1].end
    for slot, after in itertools.pairwise(got):
        assert slot.end == after.begin
    for slot in got:
        local = slot.begin.astimezone(tz)
        assert (local.hour, local.minute) == (0, 0) or zone == "Australia/Lord_Howe"
        assert period is Period.DAY or local.day == 1


def test_parse_growing() -> None:
    doc = json.loads(fixture("growing/running-day.json"))
    assert parse_growing(doc) == {(METER, ENERGY): 3.75}
    assert parse_growing([{"deviceUrl": METER, "stateName": ENERGY, "delta": None}]) == {}
    with pytest.raises(ParseError, match=r"growingIndexes\[0\].delta"):
        parse_growing([{"deviceUrl": METER, "stateName": ENERGY, "delta": "lots"}])
    with pytest.raises(ParseError, match=r"growingIndexes\[1\]"):
        parse_growing([{"deviceUrl": METER, "stateName": ENERGY, "delta": 1}, {"delta": 1}])
    with pytest.raises(ParseError, match="not a list"):
        parse_growing({"delta": 1})


def _containers(inner: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    keys = st.sampled_from(["deviceUrl", "stateName", "delta", "x"])
    return st.lists(inner, max_size=3) | st.dictionaries(keys, inner)


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    _containers,
    max_leaves=12,
))
def test_fuzz_growing_only_typed_errors(doc: object) -> None:
    with contextlib.suppress(ParseError):
        parse_growing(doc)


class Server:
    """The cloud for one kWh meter: daily history from the fixture, growing deltas by slot."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.bodies: list[list[dict[str, object]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode().removeprefix(CLOUD_PATH)
        self.calls.append(f"{request.method} {path}")
        if path == "/login":
            return httpx.Response(200, json={}, headers={"Set-Cookie": "JSESSIONID=x"})
        if path == "/setup":
            return httpx.Response(200, content=fixture("setup/meter-with-tariffs.json"))
        if "/history/daily/" in path:
            return httpx.Response(200, content=fixture("history/daily-kwh.json"))
        if path == "/setup/devices/states/growingIndexes":
            body = json.loads(request.content)
            self.bodies.append(body)
            hours = (body[0]["to"] - body[0]["from"]) / 3_600_000
            name = "running-day" if hours < 24 else "running-month"
            doc = json.loads(fixture(f"growing/{name}.json"))
            return httpx.Response(200, json=doc if hours > 0 else [])
        return httpx.Response(404, json={"errorCode": "INVALID_API_CALL",
                                         "error": "No such resource"})


def _periods(server: Server, tz: ZoneInfo) -> dict[str, list[Reading]]:
    async def go() -> dict[str, list[Reading]]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as http:
            client = OverkizClient("https://cloud" + CLOUD_PATH, http, RateLimiter(None),
                                   username="u", password="p")
            devices = parse_setup(json.loads(fixture("setup/meter-with-tariffs.json")))
            wanted = [(m, SINCE) for m in meters(devices)]
            return await period_readings(client, wanted, NOW, tz, site="home", aggregated=True)

    return asyncio.run(go())


def test_finished_days_from_the_daily_history_running_periods_from_growing_indexes() -> None:
    server = Server()
    found = _periods(server, PARIS)
    tags = (("model", "io:TotalElectricalEnergyConsumptionIOSystemDeviceSensor"),
            ("room", "Garage"))
    days = found[f"{METER} {ENERGY} day"]
    assert [(r.measurement, r.time, r.value, r.tags) for r in days] == [
        ("energy_period_wh", utc("2026-03-26T23:00"), 11_500.0, (*tags[:1], ("period", "day"),
                                                                 *tags[1:])),
        ("energy_period_wh", utc("2026-03-27T23:00"), 9_250.0, (*tags[:1], ("period", "day"),
                                                                *tags[1:])),
        ("energy_period_wh", utc("2026-03-28T23:00"), 10_000.0, (*tags[:1], ("period", "day"),
                                                                 *tags[1:])),
        # the running day: the growing index, not the unfinished aggregate (3.5 kWh)
        ("energy_period_wh", utc("2026-03-29T22:00"), 3_750.0, (*tags[:1], ("period", "day"),
                                                                *tags[1:])),
    ]
    (month,) = found[f"{METER} {ENERGY} month"]
    assert (month.time, month.value, month.tag("period")) == (
        utc("2026-02-28T23:00"), 301_250.0, "month")
    assert all(r.source == "overkiz" and r.device_id == METER for r in [*days, month])
    # one daily history read for the whole range; no monthly read (no finished month);
    # one growing request per running slot
    assert server.calls == [
        "POST /login",
        f"GET /setup/devices/{SEGMENT}/states/{ENERGY}/history/daily/1774566000000/1774864800000",
        "POST /setup/devices/states/growingIndexes",
        "POST /setup/devices/states/growingIndexes",
    ]
    assert server.bodies == [
        [{"deviceUrl": METER, "stateName": ENERGY, "from": 1772319600000, "to": 1774864800000}],
        [{"deviceUrl": METER, "stateName": ENERGY, "from": 1774821600000, "to": 1774864800000}],
    ]


def test_days_of_another_zone_come_from_growing_indexes() -> None:
    server = Server()
    found = _periods(server, ZoneInfo("UTC"))
    days = found[f"{METER} {ENERGY} day"]
    # the server's days start at midnight in Paris, ours at midnight UTC: none is taken
    # from the aggregate; each of ours is asked for on its own
    assert [r.time for r in days] == [utc("2026-03-27T00:00"), utc("2026-03-28T00:00"),
                                      utc("2026-03-29T00:00"), utc("2026-03-30T00:00")]
    asked = sorted((b[0]["from"], b[0]["to"]) for b in server.bodies)
    assert len(asked) == 4 + 1  # four days and the running month
    assert (1774828800000, 1774864800000) in asked  # 2026-03-30T00:00Z .. now


def test_tariff_indexes_are_energy_with_a_tariff_tag() -> None:
    (device,) = parse_setup(json.loads(fixture("setup/meter-with-tariffs.json")))
    points = [p for s in device.states if (p := reading(device, s, NOW, site="home"))]
    assert [(p.measurement, p.value, p.tag("tariff")) for p in points] == [
        ("energy_wh", 4_824_500.0, None),
        ("energy_wh", 1_700_250.0, "1"),
        ("energy_wh", 3_124_250.0, "2"),
    ]
    assert reading(device, State("core:ConsumptionTariff9State", 1.5), NOW, site="h") is not None


def test_real_tariff_index(shared_dir: Path) -> None:
    doc = json.loads(
        (shared_dir / "fixtures/overkiz/setup/setup_cozytouch_4.json").read_text("utf-8"))
    meter = {d.url: d for d in parse_setup(doc)}["io://****-****-6923/11301395#5"]
    points = {p.tag("tariff"): p.value
              for s in meter.states if (p := reading(meter, s, NOW, site="home"))}
    # the total and tariff 0 as the capture has them (Wh); the other tariffs are type 0
    assert points == {None: 728_000.0, "0": 728_000.0}


def test_time_zone_is_the_configured_one_else_the_setups(tmp_path: Path) -> None:
    async def zone(**extra: str) -> str:
        config = OverkizConfig(name="home", server="somfy_europe", username="u", password="p",
                               **extra)
        async with httpx.AsyncClient(transport=httpx.MockTransport(Server())) as http:
            source = OverkizSource(config, state_dir=tmp_path / str(len(extra)), http=http)
            await source.devices()
            return str(source.timezone)

    assert asyncio.run(zone()) == "Europe/Paris"
    assert asyncio.run(zone(timezone="America/New_York")) == "America/New_York"


def test_live_job_rewrites_the_running_day_and_month(tmp_path: Path) -> None:
    server = Server()
    config = OverkizConfig(name="home", server="somfy_europe", username="u", password="p")

    async def twice() -> list[list[Reading]]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as http:
            source = OverkizSource(config, state_dir=tmp_path, http=http)
            return [list(await source.read_periods()), list(await source.read_periods())]

    first, second = asyncio.run(twice())
    now = datetime.now(UTC)
    starts = {"day": period_start(now, Period.DAY, PARIS),
              "month": period_start(now, Period.MONTH, PARIS)}
    for readings in (first, second):  # the same points again: same series, same times
        assert sorted((r.tag("period"), r.time) for r in readings) == sorted(starts.items())
        assert all(r.measurement == "energy_period_wh" and r.value > 0 for r in readings)
    # no aggregated history for the live job: growing index variations only
    assert not [c for c in server.calls if "/history/" in c]
    assert sorted({b[0]["from"] for b in server.bodies}) == sorted(
        {ms(t) for t in starts.values()})


def test_a_decrease_or_an_unknown_unit_gives_no_period_point() -> None:
    (device,) = parse_setup(json.loads(fixture("setup/meter-with-tariffs.json")))
    begin = utc("2026-03-29T22:00")
    kept = period_reading(device, "day", begin, 1.25, "kWh", site="home")
    assert kept is not None and (kept.value, kept.time, kept.tag("period")) == (
        1250.0, begin, "day")
    assert period_reading(device, "day", begin, -3.0, "kWh", site="home") is None
    assert period_reading(device, "day", begin, 3.0, None, site="home") is None
    assert period_reading(device, "day", begin, 3.0, "°C", site="home") is None
