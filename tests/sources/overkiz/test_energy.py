"""Overkiz energy per local day and month: periods and batched growing index variations."""

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
from collector.sources.overkiz.periods import (
    Ask,
    Period,
    Slot,
    growing_by_name,
    parse_growing,
    period_start,
    slots,
)
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
    day = Ask(METER, ENERGY, utc("2026-03-29T22:00"), NOW)
    assert parse_growing(doc, [day]) == [3.75]
    assert growing_by_name(doc) == {(METER, ENERGY): 3.75}
    assert parse_growing([{"deviceUrl": METER, "stateName": ENERGY, "delta": None}],
                         [day]) == [None]
    # an answer that does not list the asked meters in the asked order is not read by position
    assert parse_growing(doc, [day, day]) is None
    assert parse_growing([{"deviceUrl": "io://other", "stateName": ENERGY, "delta": 1}],
                         [day]) is None
    with pytest.raises(ParseError, match=r"growingIndexes\[0\].delta"):
        parse_growing([{"deviceUrl": METER, "stateName": ENERGY, "delta": "lots"}], [day])
    with pytest.raises(ParseError, match=r"growingIndexes\[1\]"):
        parse_growing([{"deviceUrl": METER, "stateName": ENERGY, "delta": 1}, {"delta": 1}],
                      [day, day])
    with pytest.raises(ParseError, match="not a list"):
        parse_growing({"delta": 1}, [day])


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
        parse_growing(doc, [Ask(METER, ENERGY, NOW, NOW)])
    with contextlib.suppress(ParseError):
        growing_by_name(doc)


class Server:
    """The cloud for one kWh meter that counts 0.5 kWh every hour: each growing index
    variation is half the slot's hours, in the order asked (or reversed, ``reverse``)."""

    def __init__(self, *, reverse: bool = False) -> None:
        self.calls: list[str] = []
        self.bodies: list[list[dict[str, object]]] = []
        self.reverse = reverse

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode().removeprefix(CLOUD_PATH)
        self.calls.append(f"{request.method} {path}")
        if path == "/login":
            return httpx.Response(200, json={}, headers={"Set-Cookie": "JSESSIONID=x"})
        if path == "/setup":
            return httpx.Response(200, content=fixture("setup/meter-with-tariffs.json"))
        if path == "/setup/devices/states/growingIndexes":
            body = json.loads(request.content)
            self.bodies.append(body)
            out = [{"deviceUrl": i["deviceUrl"], "stateName": i["stateName"],
                    "delta": (i["to"] - i["from"]) / 3_600_000 * 0.5} for i in body]
            return httpx.Response(200, json=out[::-1] if self.reverse else out)
        return httpx.Response(404, json={"errorCode": "INVALID_API_CALL",
                                         "error": "No such resource"})


def _periods(server: Server, tz: ZoneInfo) -> dict[str, list[Reading]]:
    async def go() -> dict[str, list[Reading]]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as http:
            client = OverkizClient("https://cloud" + CLOUD_PATH, http, RateLimiter(None),
                                   username="u", password="p")
            devices = parse_setup(json.loads(fixture("setup/meter-with-tariffs.json"))).items
            wanted = [(m, SINCE) for m in meters(devices)]
            return await period_readings(client, wanted, NOW, tz, site="home")

    return asyncio.run(go())


def test_every_day_and_month_from_one_growing_index_request() -> None:
    server = Server()
    found = _periods(server, PARIS)
    tags = (("model", "io:TotalElectricalEnergyConsumptionIOSystemDeviceSensor"),
            ("period", "day"), ("room", "Garage"))
    days = found[f"{METER} {ENERGY} day"]
    assert [(r.measurement, r.time, r.value, r.tags) for r in days] == [
        ("energy_period_wh", utc("2026-03-26T23:00"), 12_000.0, tags),
        ("energy_period_wh", utc("2026-03-27T23:00"), 12_000.0, tags),
        ("energy_period_wh", utc("2026-03-28T23:00"), 11_500.0, tags),  # 23 hours
        ("energy_period_wh", utc("2026-03-29T22:00"), 6_000.0, tags),  # running: 12 h so far
    ]
    (month,) = found[f"{METER} {ENERGY} month"]
    # March in Paris from its first midnight (Feb 28 23:00 UTC) to now: 707 hours
    assert (month.time, month.value, month.tag("period")) == (
        utc("2026-02-28T23:00"), 353_500.0, "month")
    assert all(r.source == "overkiz" and r.device_id == METER for r in [*days, month])
    assert server.calls == ["POST /login", "POST /setup/devices/states/growingIndexes"]
    (body,) = server.bodies
    assert body[0] == {"deviceUrl": METER, "stateName": ENERGY,
                       "from": 1774566000000, "to": 1774652400000}
    assert body[-1] == {"deviceUrl": METER, "stateName": ENERGY,
                        "from": 1772319600000, "to": 1774864800000}
    assert len(body) == 5


def test_an_answer_out_of_order_is_asked_again_one_slot_per_meter() -> None:
    """Two meters: an answer that lists them in another order than asked is not read by
    position; each slot is asked again in requests that hold each meter once."""
    doc = json.loads(fixture("setup/meter-with-tariffs.json"))
    other = json.loads(json.dumps(doc["devices"][0]))
    other["deviceURL"] = "io://1234-5678-9012/7002#1"
    doc["devices"].append(other)
    server = Server(reverse=True)

    async def go() -> dict[str, list[Reading]]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as http:
            client = OverkizClient("https://cloud" + CLOUD_PATH, http, RateLimiter(None),
                                   username="u", password="p")
            wanted = [(m, SINCE) for m in meters(parse_setup(doc).items)]
            return await period_readings(client, wanted, NOW, PARIS, site="home")

    found = asyncio.run(go())
    for url in (METER, "io://1234-5678-9012/7002#1"):
        assert [r.value for r in found[f"{url} {ENERGY} day"]] == [
            12_000.0, 12_000.0, 11_500.0, 6_000.0]
        assert [r.value for r in found[f"{url} {ENERGY} month"]] == [353_500.0]
    # the batch of ten, then five requests holding each meter once
    assert [len(b) for b in server.bodies] == [10, 2, 2, 2, 2, 2]


def test_days_of_another_zone() -> None:
    server = Server()
    found = _periods(server, ZoneInfo("UTC"))
    days = found[f"{METER} {ENERGY} day"]
    assert [(r.time, r.value) for r in days] == [
        (utc("2026-03-27T00:00"), 12_000.0), (utc("2026-03-28T00:00"), 12_000.0),
        (utc("2026-03-29T00:00"), 12_000.0), (utc("2026-03-30T00:00"), 5_000.0)]
    assert len(server.bodies) == 1


def test_tariff_indexes_are_energy_with_a_tariff_tag() -> None:
    (device,) = parse_setup(json.loads(fixture("setup/meter-with-tariffs.json"))).items
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
    meter = {d.url: d for d in parse_setup(doc).items}["io://****-****-6923/11301395#5"]
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
    # each run asks the running day and month in one request
    assert [sorted(i["from"] for i in b) for b in server.bodies] == [
        sorted(ms(t) for t in starts.values())] * 2


def test_a_decrease_or_an_unknown_unit_gives_no_period_point() -> None:
    (device,) = parse_setup(json.loads(fixture("setup/meter-with-tariffs.json"))).items
    begin = utc("2026-03-29T22:00")
    kept = period_reading(device, "day", begin, 1.25, "kWh", site="home")
    assert kept is not None and (kept.value, kept.time, kept.tag("period")) == (
        1250.0, begin, "day")
    assert period_reading(device, "day", begin, -3.0, "kWh", site="home") is None
    assert period_reading(device, "day", begin, 3.0, None, site="home") is None
    assert period_reading(device, "day", begin, 3.0, "°C", site="home") is None
