"""The Overkiz source against a fake cloud at the transport."""

from __future__ import annotations

import asyncio
import stat
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from collector.config import OverkizConfig
from collector.errors import PartialFailure, TransientError
from collector.sources.overkiz.client import CLOUD_PATH
from collector.sources.overkiz.errors import OverkizListenerLost
from collector.sources.overkiz.limits import Category
from collector.sources.overkiz.source import OverkizSource

FIXTURES = Path(__file__).parents[2] / "fixtures" / "overkiz"
METER = "io://1234-5678-9012/5541257#5"


class Cloud:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.listeners = 0
        self.lose_listener = False
        #: The answer of every device states read, and how setup loads fail.
        self.states: list[dict[str, object]] = [
            {"name": "core:ElectricEnergyConsumptionState", "type": 1, "value": 9}]
        self.setup_fails = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode().removeprefix(CLOUD_PATH)
        self.calls.append(path)
        if path == "/login":
            return httpx.Response(200, json={"success": True},
                                  headers={"Set-Cookie": "JSESSIONID=abc; Path=/"})
        if path == "/setup":
            if self.setup_fails:
                self.setup_fails -= 1
                raise httpx.ReadTimeout("no answer", request=request)
            setup = (FIXTURES / "setup/meter-and-sensor.json").read_bytes()
            return httpx.Response(200, content=setup)
        if path == "/events/register":
            self.listeners += 1
            return httpx.Response(200, json={"id": f"L{self.listeners}"})
        if path.endswith("/fetch"):
            if self.lose_listener:
                self.lose_listener = False
                return httpx.Response(
                    400, json={"errorCode": "UNSPECIFIED_ERROR",
                               "error": "No registered event listener."}
                )
            return httpx.Response(
                200, content=(FIXTURES / "events/energy-changed.json").read_bytes()
            )
        if path.endswith("/states"):
            return httpx.Response(200, json=self.states)
        missing = {"errorCode": "INVALID_API_CALL", "error": "No such resource"}
        return httpx.Response(404, json=missing)


def source(cloud: Cloud, state_dir: Path) -> OverkizSource:
    config = OverkizConfig(
        name="home", server="somfy_europe", username="u@example.tld", password="pw"
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(cloud))
    return OverkizSource(config, state_dir=state_dir, http=http)


def test_events_become_readings_at_the_event_time(tmp_path: Path) -> None:
    cloud = Cloud()
    points = asyncio.run(source(cloud, tmp_path).poll())
    assert cloud.calls == ["/login", "/setup", "/events/register", "/events/L1/fetch"]
    (point,) = points
    assert (point.measurement, point.value) == ("energy_wh", 728250.0)
    assert point.time == datetime(2026, 1, 2, 3, 4, 6, 544000, tzinfo=UTC)
    assert (point.source, point.site, point.device_id, point.device) == (
        "overkiz", "home", METER, "Heater energy"
    )
    assert point.tags == (
        ("model", "io:CumulatedElectricalEnergyConsumptionIOSystemDeviceSensor"),
        ("room", "Kitchen"),
    )


def test_setup_is_cached_for_a_second_source(tmp_path: Path) -> None:
    first = Cloud()
    asyncio.run(source(first, tmp_path).poll())
    cache = tmp_path / "overkiz-home.setup.json"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert "pw" not in cache.read_text(encoding="utf-8")
    second = Cloud()
    asyncio.run(source(second, tmp_path).poll())
    assert "/setup" not in second.calls


def test_lost_listener_is_registered_again(tmp_path: Path) -> None:
    cloud = Cloud()
    src = source(cloud, tmp_path)

    async def run() -> None:
        await src.devices()
        cloud.lose_listener = True
        with pytest.raises(OverkizListenerLost):
            await src.poll()
        # the fetch right after the failed one waits out the 1 s limit instead of failing
        points = await src.poll()
        assert [p.value for p in points] == [728250.0]

    asyncio.run(run())
    assert cloud.listeners == 2
    assert cloud.calls[-2:] == ["/events/register", "/events/L2/fetch"]


def test_state_reads_use_one_encoded_segment(tmp_path: Path) -> None:
    cloud = Cloud()
    points = asyncio.run(source(cloud, tmp_path).read_states())
    assert "/setup/devices/io%3A%2F%2F1234-5678-9012%2F5541257%235/states" in cloud.calls
    meter = [p for p in points if p.device_id == METER]
    # the setup says nothing against the meter: it is present, and its energy has no time
    # of its own in this answer, so it is stamped with the read
    assert [(p.measurement, p.value, p.label) for p in meter] == [
        ("state", 1.0, "present"), ("energy_wh", 9.0, None)]
    assert [p.tag("name") for p in meter] == ["present", None]


def test_a_state_read_is_stamped_with_its_last_update_and_not_written_again(
    tmp_path: Path
) -> None:
    cloud = Cloud()
    cloud.states = [
        {"name": "core:ElectricEnergyConsumptionState", "type": 1, "value": 9,
         "lastUpdateTime": 1_767_225_600_000},
        {"name": "core:DerogationStartDateTimeState", "type": 5, "value": 1_641_862_917_000},
    ]
    src = source(cloud, tmp_path)

    async def reads() -> list[list[tuple[str, float, datetime]]]:
        out = []
        for _ in range(2):
            points = await src.read_states()
            out.append([(p.measurement, p.value, p.time) for p in points if p.device_id == METER
                        and p.measurement != "state"])
        cloud.states[0] = {**cloud.states[0], "value": 10, "lastUpdateTime": 1_767_229_200_000}
        points = await src.read_states()
        out.append([(p.measurement, p.value, p.time) for p in points if p.device_id == METER
                     and p.measurement != "state"])
        return out

    first, second, third = asyncio.run(reads())
    assert first == [("energy_wh", 9.0, datetime(2026, 1, 1, tzinfo=UTC))]
    assert second == []  # not updated since the last read: nothing new
    assert third == [("energy_wh", 10.0, datetime(2026, 1, 1, 1, tzinfo=UTC))]


def test_an_unavailable_device_gives_no_fresh_readings(tmp_path: Path) -> None:
    cloud = Cloud()
    cloud.states = [
        {"name": "core:StatusState", "type": 3, "value": "unavailable"},
        {"name": "core:ElectricEnergyConsumptionState", "type": 1, "value": 9},
    ]
    points = asyncio.run(source(cloud, tmp_path).read_states())
    meter = [(p.measurement, p.value, p.label, p.tag("name")) for p in points
             if p.device_id == METER]
    assert meter == [("state", 0.0, "absent", "present")]


def test_one_odd_state_costs_only_itself(tmp_path: Path) -> None:
    cloud = Cloud()
    cloud.states = [
        {"name": "core:ElectricEnergyConsumptionState", "type": 1, "value": "lots"},
        {"name": "core:ElectricPowerConsumptionState", "type": 1, "value": 120},
    ]
    with pytest.raises(PartialFailure) as failed:
        asyncio.run(source(cloud, tmp_path).read_states())
    kept = [(p.measurement, p.value) for p in failed.value.readings if p.device_id == METER]
    assert ("power_w", 120.0) in kept
    assert all(m != "energy_wh" for m, _ in kept)
    assert any(METER in e and "core:ElectricEnergyConsumptionState" in e
               for e in failed.value.errors)


def test_a_setup_load_without_answer_spends_no_daily_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = Cloud()
    cloud.setup_fails = 1
    src = source(cloud, tmp_path)

    async def run() -> None:
        with pytest.raises(TransientError):
            await src.read_states()
        with pytest.raises(TransientError, match="next try in 30 s"):
            await src.read_states()  # backing off: not asked again at once
        assert src.client.next_allowed_s(Category.BULK_LOAD) == 0.0
        monkeypatch.setattr(src, "_setup_retry_at", 0.0)  # the back-off has passed
        assert [p.value for p in await src.read_states() if p.device_id == METER] == [1.0, 9.0]

    asyncio.run(run())
    assert cloud.calls.count("/setup") == 2
    # the answered load is the one the next process waits a day for
    assert "bulk-load" in (tmp_path / "overkiz-home.limits.json").read_text()



def test_jobs_starting_together_load_the_setup_once(tmp_path: Path) -> None:
    cloud = Cloud()

    async def slow_cloud(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)  # the other job runs while an answer is on its way
        return cloud(request)

    config = OverkizConfig(
        name="home", server="somfy_europe", username="u@example.tld", password="pw"
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(slow_cloud))
    home = OverkizSource(config, state_dir=tmp_path, http=http)

    async def first_start() -> list[object]:
        return list(await asyncio.gather(home.poll(), home.read_states()))

    events, states = asyncio.run(first_start())
    assert cloud.calls.count("/setup") == 1
    assert cloud.calls.count("/login") == 1
    # a restart with the setup cached: the jobs still share one login, so the event
    # listener belongs to the session every job uses
    home = OverkizSource(config, state_dir=tmp_path,
                         http=httpx.AsyncClient(transport=httpx.MockTransport(slow_cloud)))
    asyncio.run(first_start())
    assert cloud.calls.count("/setup") == 1
    assert cloud.calls.count("/login") == 2
    assert [(p.measurement, p.value) for p in events] == [("energy_wh", 728250.0)]
    assert ("energy_wh", 9.0) in [(p.measurement, p.value) for p in states]


def test_the_setup_cache_keeps_no_password_state(tmp_path: Path) -> None:
    from collector.sources.overkiz.setup_cache import SetupCache

    cache = SetupCache(tmp_path / "setup.json", "https://cloud")
    doc = {"devices": [{"deviceURL": "io://1/1#1", "states": [
        {"name": "io:ServiceAccessCodeState", "type": 9, "value": "s3cr3t-code"},
        {"name": "core:TemperatureState", "type": 2, "value": 20.5}]}]}
    cache.write(doc, 1_000.0)
    text = (tmp_path / "setup.json").read_text(encoding="utf-8")
    assert "s3cr3t-code" not in text
    got = cache.read(1_001.0)
    assert got is not None
    kept, fetched_at = got
    assert fetched_at == 1_000.0
    assert kept == {"devices": [{"deviceURL": "io://1/1#1", "states": [
        {"name": "io:ServiceAccessCodeState", "type": 9},
        {"name": "core:TemperatureState", "type": 2, "value": 20.5}]}]}
