"""pyoverkiz, Home Assistant's Overkiz client, reads the Overkiz simulator.

An independent client parses every answer into its own models: a setup, device or event that
leaves the documented shapes (overkiz-enduser-rest-api.txt, "GET Setup", "GET Devices",
"GET Device states", DeviceStateChangedEvent) fails here. Expected values are written by hand
from the simulated house (overkiz_house.py describes it) and from the recorded setups.
aiohttp keeps no cookie from a bare IP host, so the client talks to ``localhost``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from collector.simulators.overkiz import CLOUD, LOCAL, MovableClock, OverkizSimulator
from tests.needs import in_ci

try:  # a test dependency (the dev extra): its absence fails in CI
    import pyoverkiz  # noqa: F401
except ImportError:
    if in_ci():
        raise
    pytest.skip("pyoverkiz not installed (pip install -e '.[dev]')", allow_module_level=True)

from pyoverkiz.client import OverkizClient
from pyoverkiz.enums import DataType, EventName, GatewayType, UIClass, UIWidget
from pyoverkiz.enums.state import OverkizAttribute
from pyoverkiz.exceptions import (
    MaintenanceException,
    NoSuchResourceException,
    UnknownObjectException,
)
from pyoverkiz.models import OverkizServer

# 2024-06-10 14:13:20 UTC (16:13:20 in Paris)
START = 1718028800.0
DAY_MS = 86_400_000
INSTALLED_MS = 1672531200000  # 2023-01-01: the last update of a state that never changes
ENERGY, POWER = "core:ElectricEnergyConsumptionState", "core:ElectricPowerConsumptionState"
T = TypeVar("T")


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START)


@pytest.fixture
def sim(clock: MovableClock) -> Iterator[OverkizSimulator]:
    with OverkizSimulator(clock=clock, seed=3) as running:
        yield running


def server(sim: OverkizSimulator, local: bool = False) -> OverkizServer:
    # pyoverkiz joins the endpoint and the operation ("setup", "events/register") itself
    path = LOCAL if local else CLOUD
    return OverkizServer(
        name="simulator",
        endpoint=f"http://localhost:{sim.url.rsplit(':', 1)[1]}{path}/",
        manufacturer="Somfy",
        configuration_url=None,
    )


def run(sim: OverkizSimulator, body: Callable[[OverkizClient], Awaitable[T]],
        local: bool = False) -> T:
    async def main() -> T:
        if local:
            client = OverkizClient("", "", server(sim, local=True), verify_ssl=False,
                                   token=sim.token)
        else:
            client = OverkizClient(sim.username, sim.password, server(sim))
        async with client:
            assert await client.login()
            return await body(client)

    return asyncio.run(main())


def no_unknown_values(caplog: pytest.LogCaptureFixture) -> None:
    """pyoverkiz logs a warning for every enum value it does not know (widgets, classes ...)."""
    unknown = [r.getMessage() for r in caplog.records if "Unsupported value" in r.getMessage()]
    assert unknown == []


# ---- the cloud API ---------------------------------------------------------------------------


def test_pyoverkiz_reads_the_whole_setup(
    sim: OverkizSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    setup = run(sim, lambda client: client.get_setup())
    assert setup.location is not None
    location = setup.location
    assert (location.city, location.country, location.postal_code) == ("Lyon", "France", "69003")
    assert location.timezone == "Europe/Paris"
    assert (location.twilight_mode, location.twilight_angle, location.twilight_city) == (
        2, "CIVIL", "lyon")
    assert (location.summer_solstice_dusk_minutes, location.winter_solstice_dusk_minutes) == (
        1290, 990)
    assert (location.twilight_offset_enabled, location.dawn_offset, location.dusk_offset) == (
        False, 0, 0)
    assert location.creation_time == INSTALLED_MS
    [gateway] = setup.gateways
    assert gateway.gateway_id == "1003-4711-0815"
    assert gateway.type == GatewayType.TAHOMA_SWITCH
    assert gateway.connectivity.status == "OK"
    assert setup.root_place is not None
    assert setup.root_place.label == "Home"
    floors = {p.label: [room.label for room in p.sub_places] for p in setup.root_place.sub_places}
    assert floors == {"Ground floor": ["Living room", "Kitchen"], "First floor": ["Bedroom"]}
    assert setup.zones is not None and [z.label for z in setup.zones] == ["Heating"]
    assert [item.device_url for item in setup.zones[0].items or []] == [
        "io://1003-4711-0815/1001#1", "io://1003-4711-0815/1002#1"]
    assert setup.features is not None and setup.features[0].name == "tahoma-premium"

    devices = {d.device_url: d for d in setup.devices}
    assert len(devices) == 14
    assert all(d.widget != UIWidget.UNKNOWN and d.ui_class != UIClass.UNKNOWN
               for d in devices.values())
    meter = devices["io://1003-4711-0815/2001#1"]
    assert meter.attributes[OverkizAttribute.CORE_MEASURED_VALUE_TYPE].value == (
        "core:ElectricalEnergyInWh")
    own = OverkizAttribute.CORE_ELECTRIC_POWER_CONSUMPTION_STATE_MEASURED_VALUE_TYPE
    assert meter.attributes[own].value == "core:ElectricalPowerInW"
    assert meter.attributes[f"{ENERGY}MeasuredValueType"].value == "core:ElectricalEnergyInKWh"
    air = devices["io://1003-4711-0815/3001#1"]
    assert air.controllable_name == "io:TemperatureIOSystemSensor"
    assert OverkizAttribute.CORE_MEASURED_VALUE_TYPE not in air.attributes
    heater = devices["io://1003-4711-0815/1001#1"]
    assert heater.states["core:ComfortRoomTemperatureState"].value_as_float == 20.0
    assert heater.states["core:TargetTemperatureState"].value_as_float == 20.0  # 16:13 Paris
    assert heater.states["core:OperatingModeState"].value_as_str == "internal"
    derogation = heater.states["core:DerogationStartDateTimeState"]
    assert derogation.type == DataType.DATE
    assert isinstance(derogation.value, int) and derogation.value % 86_400_000 == 0
    types = {s.name: s.type for s in heater.states}
    assert types["io:DiagnosticDataState"] == DataType.BLOB
    assert types["io:ServiceAccessCodeState"] == DataType.PASSWORD
    dead = devices["io://1003-4711-0815/3002#1"]
    assert dead.available is False
    assert dead.states["core:StatusState"].value_as_str == "unavailable"
    assert devices["rts://1003-4711-0815/16712345"].place_oid in {
        room.oid for floor in setup.root_place.sub_places for room in floor.sub_places}
    no_unknown_values(caplog)


def test_every_documented_location_field_is_there(sim: OverkizSimulator) -> None:
    # "GET Location" and the location of "GET Setup", and countryCode (real setups send it)
    documented = {
        "creationTime", "lastUpdateTime", "city", "country", "postalCode", "addressLine1",
        "addressLine2", "timezone", "longitude", "latitude", "twilightMode", "twilightAngle",
        "twilightCity", "summerSolsticeDuskMinutes", "winterSolsticeDuskMinutes",
        "twilightOffsetEnabled", "dawnOffset", "duskOffset", "tariffSettings", "countryCode",
    }

    async def both(client: OverkizClient) -> tuple[Any, Any]:
        setup = await client._OverkizClient__get("setup")  # type: ignore[attr-defined]
        alone = await client._OverkizClient__get("setup/location")  # type: ignore[attr-defined]
        return setup, alone

    setup, alone = run(sim, both)
    assert set(setup["location"]) == documented
    assert alone == setup["location"]
    assert set(setup) == {
        "creationTime", "lastUpdateTime", "id", "location", "gateways", "devices", "zones",
        "resellerDelegationType", "disconnectionConfiguration", "oid", "rootPlace", "features"}


def test_events_arrive_typed_after_the_listener_is_registered(
    sim: OverkizSimulator, clock: MovableClock
) -> None:
    async def listen(client: OverkizClient) -> list[Any]:
        assert client.event_listener_id  # login registered it
        clock.advance(300)
        return await client.fetch_events()

    events = run(sim, listen)
    assert events and {e.name for e in events} == {EventName.DEVICE_STATE_CHANGED}
    for event in events:
        assert event.timestamp is not None and event.timestamp % 60_000 == 0
        assert START * 1000 < event.timestamp <= (START + 301) * 1000
    meter = [e for e in events if e.device_url == "io://1003-4711-0815/2001#1"]
    assert meter
    for event in meter:
        values = {s.name: s.value for s in event.device_states}
        if ENERGY in values:  # kWh since the meter's start at 4815 kWh, 90 days ago
            assert isinstance(values[ENERGY], float) and 4815 < values[ENERGY] < 12_400
    # the dead sensor says nothing
    assert not [e for e in events if e.device_url == "io://1003-4711-0815/3002#1"]


def test_devices_and_device_states_with_their_last_update(sim: OverkizSimulator) -> None:
    dead_url = "io://1003-4711-0815/3002#1"

    async def read(client: OverkizClient) -> tuple[Any, Any, Any, Any]:
        devices = await client.get_devices()
        states = await client.get_state("io://1003-4711-0815/3001#1")
        raw = await client._OverkizClient__get(  # type: ignore[attr-defined]
            "setup/devices/io%3A%2F%2F1003-4711-0815%2F3002%231/states")
        heater = await client._OverkizClient__get(  # type: ignore[attr-defined]
            "setup/devices/io%3A%2F%2F1003-4711-0815%2F1001%231/states")
        return devices, states, raw, heater

    devices, states, dead, heater = run(sim, read)
    assert len(devices) == 14
    assert next(d for d in devices if d.device_url == dead_url).available is False
    by_name = {s.name: s for s in states}
    assert by_name["core:BatteryLevelState"].value_as_int == 87
    assert 15.0 < (by_name["core:TemperatureState"].value_as_float or 0) < 25.0
    # the dead sensor: its last report three days before the start, on the minute (2024-06-07
    # 14:13:00 UTC); an hour later the server marked it unavailable
    times = {s["name"]: s["lastUpdateTime"] for s in dead}
    three_days_ago = 1717769580000
    assert times == {
        "core:TemperatureState": three_days_ago,
        "core:BatteryLevelState": three_days_ago,
        "core:StatusState": three_days_ago + 3_600_000,
        "core:SensorDefectState": three_days_ago + 3_600_000,
    }
    steady = {s["name"]: s["lastUpdateTime"] for s in heater}
    assert steady["core:ComfortRoomTemperatureState"] == INSTALLED_MS
    assert steady["core:DerogationStartDateTimeState"] == INSTALLED_MS
    # comfort since 06:00 Paris (04:00 UTC) on 2024-06-10
    assert steady["core:TargetTemperatureState"] == 1717992000000


def test_history_pyoverkiz_offers_and_operations_taken_away(sim: OverkizSimulator) -> None:
    async def history(client: OverkizClient) -> list[Any]:
        return await client.get_execution_history()

    assert run(sim, history) == []
    sim.disable("GET /history/executions")
    with pytest.raises(NoSuchResourceException):
        run(sim, history)


def test_the_maintenance_page_is_recognised(sim: OverkizSimulator) -> None:
    sim.fail_next("GET /setup", kind="maintenance")
    with pytest.raises(MaintenanceException):
        run(sim, lambda client: client.get_setup())
    assert run(sim, lambda client: client.get_setup()).location is not None
    assert sim.violation_count == 0  # the failed call did not use up the day's /setup


# ---- the local API ---------------------------------------------------------------------------


def test_local_api_with_a_token(
    sim: OverkizSimulator, clock: MovableClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)

    async def local(client: OverkizClient) -> tuple[Any, Any, Any, Any]:
        setup = await client.get_setup()
        version = await client.get_api_version()
        clock.advance(120)
        events = await client.fetch_events()
        states = await client.get_state("io://1003-4711-0815/2001#1")
        return setup, version, events, states

    setup, version, events, states = run(sim, local, local=True)
    assert version == "2024.6.4"
    assert setup.location is None and setup.root_place is None
    assert len(setup.devices) == 14
    for device in setup.devices:  # no unit attribute at all
        assert not [a for a in device.attributes if "MeasuredValueType" in a.name]
    assert {s.name: s.type for s in states}[ENERGY] == DataType.FLOAT
    assert events and all(e.timestamp is None for e in events)
    typed = [s.value for e in events for s in e.device_states if s.type == DataType.FLOAT]
    assert typed and all(isinstance(v, float) for v in typed)
    no_unknown_values(caplog)
    sim.disable("GET /setup/devices")
    with pytest.raises(UnknownObjectException):
        run(sim, lambda client: client.get_devices(), local=True)


# ---- recorded setups ---------------------------------------------------------------------------

RECORDED = {  # file: (devices, served on the local API, a device and its label)
    "setup_cozytouch_4.json": (33, False),
    "setup_tahoma_climate.json": (19, False),
    "setup_tahoma_be.json": (15, False),
    "setup_local_with_climate.json": (33, True),
}


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_pyoverkiz_reads_every_recorded_setup_served(
    name: str, shared_dir: Path, clock: MovableClock
) -> None:
    count, local = RECORDED[name]
    path = shared_dir / "fixtures" / "overkiz" / "setup" / name
    with OverkizSimulator(clock=clock, setup_file=path) as sim:
        assert sim.apis == (local,)
        setup = run(sim, lambda client: client.get_setup(), local=local)
        assert len(setup.devices) == count
        assert (setup.location is None) == local
        clock.advance(60)
        assert run(sim, lambda client: client.fetch_events(), local=local) == []
